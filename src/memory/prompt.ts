import type { MemoryConfig } from '../config/schema.js';
import type { Tokenizer } from '../tokenizer.js';
import type { SessionStore } from '../store/types.js';
import { assemble, type AssembledPrompt, type Indexed } from './assemble.js';
import { completionReserve, contextWindow } from './budget.js';
import { contentText, type ChatMessage } from './messages.js';
import { emptyMemory } from './state.js';
import { searchArchive } from './recall.js';
import type { TurnState } from './transcript.js';

export interface PromptRequest {
  model: string;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
}

/** Recall (when there is an archive) and assembly under the budget: the lean prompt for this request. */
export async function buildPrompt(
  deps: { store: SessionStore; tokenizer: Tokenizer },
  sessionKey: string,
  state: TurnState,
  body: PromptRequest,
  config: MemoryConfig,
): Promise<AssembledPrompt> {
  const countMessage = (message: ChatMessage) => deps.tokenizer.countMessage(message, body.model);
  const countText = (text: string) => deps.tokenizer.count(text, body.model);
  if (!config.enabled) {
    // Memory off: the whole kept history, as issue #2 forwarded it.
    return assemble({ ...base(state, countMessage, countText), memory: emptyMemory(), recalled: [], config: unbounded(config) });
  }
  const recalled = await recall(deps.store, sessionKey, state, config);
  return assemble({
    ...base(state, countMessage, countText),
    memory: { ...(state.meta?.memory ?? emptyMemory()), summary: state.summary },
    recalled,
    contextWindow: contextWindow(body.model, config.budget),
    completionReserve: completionReserve(body, config.budget),
    config,
  });
}

function base(state: TurnState, countMessage: (message: ChatMessage) => number, countText: (text: string) => number) {
  return {
    instructions: state.instructions,
    fresh: state.fresh,
    window: state.window,
    storedTokens: state.storedTokens,
    contextWindow: Number.POSITIVE_INFINITY,
    completionReserve: 0,
    countMessage,
    countText,
  };
}

function unbounded(config: MemoryConfig): MemoryConfig {
  return {
    ...config,
    rules: [],
    budget: { ...config.budget, prompt_tokens: Number.POSITIVE_INFINITY },
    window: { ...config.window, max_turns: Number.POSITIVE_INFINITY },
  };
}

async function recall(store: SessionStore, sessionKey: string, state: TurnState, config: MemoryConfig): Promise<Indexed[]> {
  const archivedUpTo = state.summary?.upTo ?? 0;
  if (!config.recall.enabled || archivedUpTo === 0 || !state.meta) return [];
  const query = state.fresh
    .filter((stored) => stored.message.role === 'user' || stored.message.role === 'tool')
    .map((stored) => contentText(stored.message.content))
    .join(' ');
  const hits = await searchArchive(store, sessionKey, state.meta, query, {
    topK: config.recall.top_k,
    minScore: config.recall.min_score,
    archivedUpTo,
  });
  if (hits.length === 0) return [];
  const out: Indexed[] = [];
  for (const index of hits.map((hit) => hit.index).sort((a, b) => a - b)) {
    const [stored] = await store.readMessages(sessionKey, state.meta, index, index + 1);
    if (stored) out.push({ index, stored });
  }
  return out;
}
