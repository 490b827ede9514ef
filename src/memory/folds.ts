import type { Logger } from 'pino';
import type { MemoryConfig } from '../config/schema.js';
import type { SessionMeta, SessionStore } from '../store/types.js';
import type { Tokenizer } from '../tokenizer.js';
import { mergeFacts } from './facts.js';
import type { StoredMessage } from './messages.js';
import { commonTerms, indexArchived } from './recall.js';

import type { SessionMemory, Summary } from './state.js';
import type { Summarizer } from './summarizer.js';
import { packSegment, type Embedder } from './embeddings.js';
import { indexedText } from './recall.js';

export interface FoldDeps {
  store: SessionStore;
  tokenizer: Tokenizer;
  summarizer: Summarizer;
  embedder: Embedder;
  logger: Logger;
  now: () => number;
  memory: () => MemoryConfig;
  /** Observers (metrics): called once per finished fold attempt. */
  onFold?: (event: FoldEvent) => void;
}

export interface FoldEvent {
  outcome: 'folded' | 'failed' | 'abandoned';
  durationMs: number;
  foldedMessages: number;
  /** Summarizer tokens. */
  usage: { input: number; output: number };
  /** Tokens sent to /v1/embeddings for recall. */
  embeddingTokens: number;
  model: string;
}

/** Credentials of the request that triggered a fold, held in memory only for that fold. */
export type FoldCredentials = Record<string, string | string[]>;

// Only a chat request's own provider credentials: never mnemo's admin token (admin calls build theirs, see preview).
const CREDENTIAL_HEADERS = ['authorization', 'api-key', 'x-api-key', 'x-goog-api-key', 'openai-organization', 'openai-project'];

export function foldCredentials(headers: Record<string, string | string[] | undefined>): FoldCredentials {
  const out: FoldCredentials = {};
  for (const name of CREDENTIAL_HEADERS) {
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * Runs summary folds in the background, after responses: at most one per
 * session at a time in this process, retried with exponential backoff after a
 * failure, committed with compare-and-set so turns that arrive meanwhile are
 * kept. A failed or abandoned fold changes nothing the prompt reads.
 */
export class FoldScheduler {
  private readonly running = new Map<string, Promise<void>>();
  private readonly backoff = new Map<string, { failures: number; retryAt: number }>();
  private readonly controller = new AbortController();

  constructor(private readonly deps: FoldDeps) {}

  /** Starts a fold when the unsummarized part of the session is over the trigger. Never waits for it. */
  maybeSchedule(sessionKey: string, meta: SessionMeta, credentials: FoldCredentials): void {
    const config = this.deps.memory();
    if (!config.enabled || !config.summary.enabled || this.controller.signal.aborted) return;
    if (unsummarizedTokens(meta.memory) <= config.summary.trigger_tokens) return;
    if (this.running.has(sessionKey)) return;
    const pause = this.backoff.get(sessionKey);
    if (pause && pause.retryAt > this.deps.now()) return;
    const run = this.fold(sessionKey, credentials).finally(() => this.running.delete(sessionKey));
    this.running.set(sessionKey, run);
  }

  /** Resolves when every fold in flight has finished; aborts them after `timeoutMs`. */
  async drain(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    const all = Promise.allSettled([...this.running.values()]);
    if (!Number.isFinite(timeoutMs)) {
      await all;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.controller.abort(new Error('shutting down'));
        resolve();
      }, timeoutMs);
    });
    await Promise.race([all, late]);
    clearTimeout(timer);
    await all;
  }

  /** Stops scheduling and abandons folds in flight (their results are never committed). */
  stop(): void {
    this.controller.abort(new Error('shutting down'));
  }

  private async fold(sessionKey: string, credentials: FoldCredentials): Promise<void> {
    const config = this.deps.memory();
    const started = performance.now();
    const event = (outcome: FoldEvent['outcome'], foldedMessages = 0, usage = { input: 0, output: 0 }, embeddingTokens = 0) =>
      this.deps.onFold?.({
        outcome,
        durationMs: performance.now() - started,
        foldedMessages,
        usage,
        embeddingTokens,
        model: config.summary.model,
      });
    try {
      const plan = await this.plan(sessionKey, config);
      if (!plan) return;
      const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(config.summary.timeout_ms)]);
      const result = await this.deps.summarizer.summarize(
        {
          previous: plan.meta.memory.summary?.text,
          turns: plan.turns,
          model: config.summary.model,
          prompt: config.summary.prompt,
          maxTokens: config.summary.max_tokens,
          withFacts: config.facts.llm,
        },
        { headers: credentials, signal },
      );
      if (signal.aborted) throw signal.reason;
      const archived = plan.turns.map((stored, offset) => ({ stored, index: plan.from + offset }));
      const stats = config.recall.enabled
        ? await indexArchived(this.deps.store, sessionKey, archived)
        : { docs: 0, length: 0, frequencies: [] };
      const segment =
        config.recall.enabled && config.recall.method === 'embeddings'
          ? await this.embedArchived(sessionKey, archived, credentials, signal)
          : undefined;
      const last = plan.turns[plan.turns.length - 1]!;
      const summary: Summary = {
        text: result.text,
        tokens: this.deps.tokenizer.count(result.text, config.summary.model),
        upTo: plan.to,
        foldedTokens: (plan.meta.memory.summary?.foldedTokens ?? 0) + plan.turns.reduce((total, stored) => total + stored.tokens, 0),
        lastId: last.id,
        at: this.deps.now(),
      };
      const llmFacts = result.facts.map((fact) => ({
        ...fact,
        scope: 'session' as const,
        source: last.id,
        index: plan.to - 1,
        at: last.at,
      }));
      const committed = await this.commit(sessionKey, plan, (memory) => ({
        ...memory,
        summary,
        facts: mergeFacts(memory.facts, llmFacts),
        recall: {
          docs: memory.recall.docs + stats.docs,
          length: memory.recall.length + stats.length,
          segments: segment ? [...(memory.recall.segments ?? []), segment.name] : memory.recall.segments,
          common: commonTerms(memory.recall.common, stats.frequencies, memory.recall.docs + stats.docs),
        },
        usage: {
          ...memory.usage,
          sideInputTokens: memory.usage.sideInputTokens + result.usage.input + (segment?.inputTokens ?? 0),
          sideOutputTokens: memory.usage.sideOutputTokens + result.usage.output,
        },
      }));
      this.backoff.delete(sessionKey);
      event(committed ? 'folded' : 'abandoned', committed ? plan.turns.length : 0, result.usage, segment?.inputTokens ?? 0);
    } catch (error) {
      const previous = this.backoff.get(sessionKey)?.failures ?? 0;
      const delay = Math.min(config.summary.retry_base_ms * 2 ** previous, config.summary.retry_max_ms);
      this.backoff.set(sessionKey, { failures: previous + 1, retryAt: this.deps.now() + delay });
      this.deps.logger.warn({ err: error, retryInMs: delay }, 'summary fold failed; nothing changed');
      event('failed');
    }
  }

  /** Embeds the archived messages into one side record; its name joins the head only if the fold commits. */
  private async embedArchived(
    sessionKey: string,
    archived: Array<{ stored: StoredMessage; index: number }>,
    credentials: FoldCredentials,
    signal: AbortSignal,
  ): Promise<{ name: string; inputTokens: number }> {
    const options = this.deps.memory().recall.embeddings;
    const result = await this.deps.embedder.embed(
      archived.map(({ stored }) => indexedText(stored).slice(0, 8_000) || ' '),
      options,
      { headers: credentials, signal },
    );
    const name = `e:${archived[0]!.index}`;
    await this.deps.store.writeAux(sessionKey, [
      {
        name,
        value: packSegment(
          archived.map(({ index }) => index),
          result.vectors,
        ),
      },
    ]);
    return { name, inputTokens: result.inputTokens };
  }

  /**
   * Which messages to fold: from the current summary's end up to the point that
   * leaves `window.keep_tokens` of recent turns, moved back to a user message so
   * the window starts a turn and no tool call is parted from its results.
   */
  private async plan(sessionKey: string, config: MemoryConfig) {
    const meta = await this.deps.store.getMeta(sessionKey);
    if (!meta || unsummarizedTokens(meta.memory) <= config.summary.trigger_tokens) return undefined;
    const from = meta.memory.summary?.upTo ?? 0;
    const pending = await this.deps.store.readMessages(sessionKey, meta, from, meta.count);
    let to = pending.length;
    let kept = 0;
    while (to > 0 && kept < config.window.keep_tokens) kept += pending[--to]!.tokens;
    while (to > 0 && pending[to]?.message.role !== 'user') to--;
    if (to <= 0) return undefined;
    return { meta, from, to: from + to, turns: pending.slice(0, to) as StoredMessage[] };
  }

  /** Compare-and-set of the new memory; re-applied on top of turns that arrived meanwhile. */
  private async commit(
    sessionKey: string,
    plan: { meta: SessionMeta; from: number; to: number; turns: StoredMessage[] },
    update: (memory: SessionMemory) => SessionMemory,
  ): Promise<boolean> {
    let meta: SessionMeta | undefined = plan.meta;
    for (let attempt = 0; attempt < 8 && meta; attempt++) {
      if (this.controller.signal.aborted) return false;
      if ((meta.memory.summary?.upTo ?? 0) !== plan.from || meta.count < plan.to) return false;
      const [last] = await this.deps.store.readMessages(sessionKey, meta, plan.to - 1, plan.to);
      if (last?.id !== plan.turns[plan.turns.length - 1]!.id) return false; // forked below the fold point
      const result = await this.deps.store.commit(sessionKey, meta.version, { keep: meta.count, append: [], memory: update(meta.memory) });
      if (result.ok) return true;
      meta = await this.deps.store.getMeta(sessionKey);
    }
    return false;
  }
}

export function unsummarizedTokens(memory: SessionMemory): number {
  return memory.tokens - (memory.summary?.foldedTokens ?? 0);
}
