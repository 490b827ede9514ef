import type { MemoryConfig } from '../config/schema.js';
import type { Tokenizer } from '../tokenizer.js';
import type { Logger } from 'pino';
import type { SessionStore } from '../store/types.js';
import type { Embedder } from './embeddings.js';
import { assemble, type AssembledPrompt } from './assemble.js';
import { budgetFor, completionReserve, contextWindow } from './budget.js';
import { contentText, type ChatMessage } from './messages.js';
import { emptyMemory } from './state.js';
import { relevantFacts } from './context.js';
import { renderProfile } from './profile.js';
import { recallPassages } from './recall.js';
import { windowStart } from './window.js';
import type { TurnState } from './transcript.js';

export interface PromptRequest {
  model: string;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
}

/** Recall (when there is an archive) and assembly under the budget: the lean prompt for this request. */
export interface PromptDeps {
  store: SessionStore;
  tokenizer: Tokenizer;
  now: () => number;
  embedder: Embedder;
  logger: Logger;
}

export async function buildPrompt(
  deps: PromptDeps,
  sessionKey: string,
  state: TurnState,
  body: PromptRequest,
  config: MemoryConfig,
  credentials: Record<string, string | string[]> = {},
): Promise<AssembledPrompt> {
  const countMessage = (message: ChatMessage) => deps.tokenizer.countMessage(message, body.model);
  const countText = (text: string) => deps.tokenizer.count(text, body.model);
  if (!config.enabled) {
    // Memory off: the whole kept history, as issue #2 forwarded it.
    return assemble({ ...base(state, countMessage, countText), memory: emptyMemory(), recalled: [], config: unbounded(config) });
  }
  // The window starts where window.ts says; recall searches everything before it.
  const from = windowStart(state.window, state.storedTokens, config.window, state.summary?.tokens ?? 0);
  const window = state.window.filter((item) => item.index >= from);
  const recalled =
    state.meta && Number.isFinite(from)
      ? await recallPassages(deps, sessionKey, state.meta, queryText(state), config, from, credentials)
      : [];
  const budget = budgetFor(body.model, config.budget);
  return assemble({
    ...base(state, countMessage, countText),
    window,
    memory: { ...(state.meta?.memory ?? emptyMemory()), summary: state.summary },
    recalled,
    profile: renderProfile(state.profile),
    context: {
      facts: relevantFacts(state.contextFacts, queryText(state), deps.now())
        .slice(0, config.context.max_facts)
        .map((fact) => fact.text),
      scratch: Object.entries(state.scratch)
        .filter(([, entry]) => entry.inject)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, entry]) => `${key}: ${JSON.stringify(entry.value)}`),
    },
    contextWindow: contextWindow(body.model, budget),
    completionReserve: completionReserve(body, budget),
    config: { ...config, budget },
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

/** What the new messages ask about: the text recall and fact selection match against. */
function queryText(state: TurnState): string {
  return state.fresh
    .filter((stored) => stored.message.role === 'user' || stored.message.role === 'tool')
    .map((stored) => contentText(stored.message.content))
    .join(' ');
}
