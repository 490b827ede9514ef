import type { MemoryConfig } from '../config/schema.js';
import type { Tokenizer } from '../tokenizer.js';
import type { Logger } from 'pino';
import type { SessionStore } from '../store/types.js';
import { dot, unpackSegment, type Embedder, type EmbeddingSegment } from './embeddings.js';
import { assemble, type AssembledPrompt, type Indexed } from './assemble.js';
import { budgetFor, completionReserve, contextWindow } from './budget.js';
import { contentText, type ChatMessage } from './messages.js';
import { emptyMemory } from './state.js';
import { relevantFacts } from './context.js';
import { renderProfile } from './profile.js';
import { searchArchive } from './recall.js';
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
  const recalled = await recall(deps, sessionKey, state, config, credentials);
  const budget = budgetFor(body.model, config.budget);
  return assemble({
    ...base(state, countMessage, countText),
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

async function recall(
  deps: PromptDeps,
  sessionKey: string,
  state: TurnState,
  config: MemoryConfig,
  credentials: Record<string, string | string[]>,
): Promise<Indexed[]> {
  const archivedUpTo = state.summary?.upTo ?? 0;
  const meta = state.meta;
  if (!config.recall.enabled || archivedUpTo === 0 || !meta) return [];
  const query = queryText(state);
  if (query.trim() === '') return [];
  let indices: number[] | undefined;
  if (config.recall.method === 'embeddings' && (meta.memory.recall.segments?.length ?? 0) > 0) {
    try {
      indices = await searchEmbeddings(deps, sessionKey, meta.memory.recall.segments!, query, config, credentials, archivedUpTo);
    } catch (error) {
      // Semantic recall is an upgrade, not a dependency: fall back to the lexical index.
      deps.logger.warn({ err: error }, 'embedding recall failed; using bm25');
    }
  }
  indices ??= (
    await searchArchive(deps.store, sessionKey, meta, query, { topK: config.recall.top_k, minScore: config.recall.min_score, archivedUpTo })
  ).map((hit) => hit.index);
  const sorted = indices.sort((a, b) => a - b);
  const found = await deps.store.readMessagesAt(sessionKey, meta, sorted);
  return sorted.flatMap((index, position) => (found[position] ? [{ index, stored: found[position] }] : []));
}

async function searchEmbeddings(
  deps: PromptDeps,
  sessionKey: string,
  segments: string[],
  query: string,
  config: MemoryConfig,
  credentials: Record<string, string | string[]>,
  archivedUpTo: number,
): Promise<number[]> {
  const options = config.recall.embeddings;
  const [embedded, records] = await Promise.all([
    deps.embedder.embed([query], options, { headers: credentials, signal: AbortSignal.timeout(options.timeout_ms) }),
    deps.store.readAux<EmbeddingSegment>(sessionKey, segments),
  ]);
  const target = embedded.vectors[0]!;
  const scored: Array<{ index: number; score: number }> = [];
  for (const record of records) {
    if (!record) continue;
    for (const { index, vector } of unpackSegment(record)) {
      if (index >= archivedUpTo) continue;
      const score = dot(target, vector);
      if (score >= options.min_similarity) scored.push({ index, score });
    }
  }
  return scored
    .sort((a, b) => b.score - a.score)
    .slice(0, config.recall.top_k)
    .map((hit) => hit.index);
}

/** What the new messages ask about: the text recall and fact selection match against. */
function queryText(state: TurnState): string {
  return state.fresh
    .filter((stored) => stored.message.role === 'user' || stored.message.role === 'tool')
    .map((stored) => contentText(stored.message.content))
    .join(' ');
}
