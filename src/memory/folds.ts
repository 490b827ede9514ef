import type { Logger } from 'pino';
import { GenerationalCache } from '../generational-cache.js';
import type { MemoryConfig } from '../config/schema.js';
import type { SessionMeta, SessionStore } from '../store/types.js';
import type { Tokenizer } from '../tokenizer.js';
import type { Indexed } from './assemble.js';
import { packSegment, type Embedder } from './embeddings.js';
import { mergeFacts } from './facts.js';
import type { StoredMessage } from './messages.js';
import { docOf, KEYS_POSITION, passagesOf } from './passages.js';
import {
  addToIndex,
  currentStats,
  indexGeneration,
  isQuestion,
  LANDING_DEADLINE_MS,
  statsRecordName,
  type IndexStats,
  type IndexUpdate,
} from './lexical-index.js';
import type { SessionMemory, Summary } from './state.js';
import type { Summarizer } from './summarizer.js';
import { windowMinTokens, windowStart } from './window.js';
import { yieldToRequests } from './yield.js';

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
  /** Observers (metrics): called once per index run that did something. */
  onIndex?: (event: IndexEvent) => void;
}

export interface FoldEvent {
  outcome: 'folded' | 'failed' | 'abandoned';
  durationMs: number;
  foldedMessages: number;
  /** Summarizer tokens. */
  usage: { input: number; output: number };
  /** Tokens sent to /v1/embeddings (index runs report theirs separately). */
  embeddingTokens: number;
  model: string;
}

export interface IndexEvent {
  outcome: 'indexed';
  indexedMessages: number;
  embeddingTokens: number;
}

/** Credentials of the request that triggered the work, held in memory only for it. */
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

/** A session's background job: its index run (when due), then a fold if one is due. */
interface Job {
  credentials: FoldCredentials;
  index: boolean;
}

/** Messages indexed per run at most: a long backlog (an import, a new index generation) is worked off in bounded steps. */
const INDEX_BATCH = 256;

/**
 * A session's background work, after responses: first the recall index
 * catches up with every committed message (BM25 at once, embeddings in
 * batches), then, when the turns before the window are over the trigger, a
 * summary fold. At most one job per session at a time in this process,
 * retried with exponential backoff after a failure, committed with
 * compare-and-set so turns that arrive meanwhile are kept. A failed or
 * abandoned job changes nothing the prompt reads.
 */
export class FoldScheduler {
  private readonly running = new Map<string, Promise<void>>();
  /** Sessions that committed while their job ran: what to run next, with the latest credentials. */
  private readonly again = new Map<string, Job>();
  /**
   * Transcript tokens each session had when this process last brought its index up to date.
   * Bounded: forgetting a session only means its next job reads the stats record once more.
   */
  private readonly indexedTokens = new GenerationalCache<string, number>(10_000);
  private readonly backoff = new Map<string, { failures: number; retryAt: number }>();
  private readonly controller = new AbortController();

  constructor(private readonly deps: FoldDeps) {}

  /** Starts the session's background job when its index lags or a fold is due. Never waits for it. */
  maybeSchedule(sessionKey: string, meta: SessionMeta, credentials: FoldCredentials): void {
    const config = this.deps.memory();
    if (!config.enabled || this.controller.signal.aborted) return;
    // A fold's job does not bring the index along unless the index is due too: the fold's
    // pre-check passes on most turns of a long session, and indexing on each of them was a run of
    // a turn or two every turn.
    const index = this.indexDue(sessionKey, meta, config);
    if (!index && !foldMayBeDue(meta, config)) return;
    const pause = this.backoff.get(sessionKey);
    if (pause && pause.retryAt > this.deps.now()) return;
    if (this.running.has(sessionKey)) {
      // The job in flight may already be past what this turn added: run once more after it.
      this.again.set(sessionKey, { credentials, index: index || (this.again.get(sessionKey)?.index ?? false) });
      return;
    }
    this.start(sessionKey, { credentials, index });
  }

  /**
   * Whether the index should catch up now: once the transcript has passed a step boundary
   * (a multiple of window.step_tokens) since this process last brought it up to date. The verbatim
   * window's start only ever sits on such a boundary at least min_tokens before the transcript's
   * end (window.ts), so a message leaves the window only after the transcript has grown min_tokens
   * past the boundary that it sits before — and by then the run that boundary set off has indexed
   * it, even for the session's next request if it arrives while that run is going (unless that
   * request's new message alone is min_tokens long). Messages newer than that need no
   * index yet: the window shows them. So a session gets one run a step, a step's turns at a time
   * (a run writes one block, and fewer, larger blocks mean fewer merges and fewer lookups per
   * search). Runs every few turns (at half the window floor) cost more per message, and interleaved
   * with more requests (bench: streaming time to first byte). Sessions this process has not indexed
   * yet are checked by the job itself (their progress is in the stats record).
   */
  private indexDue(sessionKey: string, meta: SessionMeta, config: MemoryConfig): boolean {
    if (!config.recall.enabled) return false;
    const indexed = this.indexedTokens.get(sessionKey);
    if (indexed === undefined || meta.memory.tokens < indexed) return true;
    const step = config.window.step_tokens;
    return Math.floor(meta.memory.tokens / step) > Math.floor(indexed / step);
  }

  private start(sessionKey: string, job: Job): void {
    const run = this.work(sessionKey, job).finally(() => {
      this.running.delete(sessionKey);
      const next = this.again.get(sessionKey);
      this.again.delete(sessionKey);
      if (next && !this.controller.signal.aborted && !this.backoff.has(sessionKey)) this.start(sessionKey, next);
    });
    this.running.set(sessionKey, run);
  }

  /** Resolves when every job in flight has finished; aborts them after `timeoutMs`. */
  async drain(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (!Number.isFinite(timeoutMs)) {
      // Jobs finishing start their follow-ups: wait until none is left.
      while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
      return;
    }
    const all = Promise.allSettled([...this.running.values()]);
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

  /** Stops scheduling and abandons jobs in flight (their results are never committed). */
  stop(): void {
    this.controller.abort(new Error('shutting down'));
  }

  private async work(sessionKey: string, { credentials, index }: Job): Promise<void> {
    const config = this.deps.memory();
    try {
      await yieldToRequests();
      if (config.recall.enabled && index) await this.index(sessionKey, credentials);
      await yieldToRequests();
      if (config.summary.enabled) await this.fold(sessionKey, credentials);
      this.backoff.delete(sessionKey);
    } catch (error) {
      const previous = this.backoff.get(sessionKey)?.failures ?? 0;
      const delay = Math.min(config.summary.retry_base_ms * 2 ** previous, config.summary.retry_max_ms);
      this.backoff.set(sessionKey, { failures: previous + 1, retryAt: this.deps.now() + delay });
      this.deps.logger.warn({ err: error, retryInMs: delay }, 'background memory work failed; nothing changed');
    }
  }

  /**
   * Indexes committed messages past `indexedUpTo` (and embeds them once a
   * batch waits). Postings are written with the stats record that counts them,
   * in one write, so a search never trusts a posting list the stats do not cover. The
   * head is never written: a turn committing meanwhile is not disturbed. A run
   * racing one on another instance writes the stats it read plus its own blocks:
   * whichever lands last, the stats name blocks covering each indexed message
   * once (the other run's blocks stay unnamed until the session is erased).
   */
  private async index(sessionKey: string, credentials: FoldCredentials): Promise<void> {
    const config = this.deps.memory();
    for (let round = 0; round < 64 && !this.controller.signal.aborted; round++) {
      const meta = await this.deps.store.getMeta(sessionKey);
      if (!meta) return;
      const generation = indexGeneration(meta.memory.recall);
      const stats = await this.readStats(sessionKey, generation);
      const readAt = this.deps.now();
      const embedding = embeddingsDue(stats, meta.count, config);
      if (stats.indexedUpTo >= meta.count && !embedding) return this.noteIndexed(sessionKey, meta);
      const from = embedding ? Math.min(stats.indexedUpTo, stats.embeddedUpTo) : stats.indexedUpTo;
      const to = Math.min(meta.count, from + INDEX_BATCH);
      const messages = (await this.deps.store.readMessages(sessionKey, meta, from, to)).map((stored, offset) => ({
        stored,
        index: from + offset,
      }));
      const unindexed = messages.filter(({ index }) => index >= stats.indexedUpTo);
      await yieldToRequests();
      const added = await addToIndex(
        this.deps.store,
        sessionKey,
        generation,
        stats,
        unindexed.flatMap(({ stored, index }) => passagesOf(stored, index)),
        readAt,
      );
      let next: IndexStats = { ...added.stats, indexedUpTo: Math.max(stats.indexedUpTo, to) };
      let embeddingTokens = 0;
      let embeddingError: unknown;
      if (embedding) {
        try {
          const segment = await this.embed(
            sessionKey,
            generation,
            messages.filter(({ index }) => index >= stats.embeddedUpTo),
            credentials,
          );
          embeddingTokens = segment?.inputTokens ?? 0;
          next = { ...next, embeddedUpTo: to, segments: segment ? [...next.segments, segment.name] : next.segments };
        } catch (error) {
          // The lexical index still lands; the vectors wait for the backoff and the next run.
          embeddingError = error;
        }
      }
      if (!(await this.land(sessionKey, meta, generation, { ...added, stats: next }))) return;
      this.deps.onIndex?.({ outcome: 'indexed', indexedMessages: unindexed.length, embeddingTokens });
      if (embeddingError) throw embeddingError;
      // Caught up with the head it read. Turns committed since scheduled this job again if they
      // need indexing (maybeSchedule): another round here only read the head and stats once more.
      if (next.indexedUpTo >= meta.count && !embeddingsDue(next, meta.count, config)) return this.noteIndexed(sessionKey, meta);
    }
  }

  private noteIndexed(sessionKey: string, meta: SessionMeta): void {
    this.indexedTokens.set(sessionKey, meta.memory.tokens);
  }

  /** One side record of packed vectors for the passages of `messages`; undefined when they have no text. */
  private async embed(
    sessionKey: string,
    generation: number,
    messages: Indexed[],
    credentials: FoldCredentials,
  ): Promise<{ name: string; inputTokens: number } | undefined> {
    // Questions get no vector, and are left to the lexical index: in embedding space a question
    // sits nearest other questions (an earlier "what did she paint?" outranks the reply that says
    // what), and the reply's neighbour brings the question along. (Embedding each passage with the
    // one before it, so a reply carries what it answers, measured no better on LoCoMo at twice the
    // embedding tokens.)
    const passages = messages.flatMap(({ stored, index }) => passagesOf(stored, index)).filter((passage) => !isQuestion(passage.text));
    if (passages.length === 0) return undefined;
    const options = this.deps.memory().recall.embeddings;
    const result = await this.deps.embedder.embed(
      passages.map((passage) => passage.text.slice(0, 8_000)),
      options,
      { headers: credentials, signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(60_000)]) },
    );
    const name = `e${generation}:${passages[0]!.doc}`;
    const segment = packSegment(
      passages.map((passage) => passage.doc),
      result.vectors,
    );
    await this.deps.store.writeAux(sessionKey, [{ name, value: segment }]);
    return { name, inputTokens: result.inputTokens };
  }

  private async fold(sessionKey: string, credentials: FoldCredentials): Promise<void> {
    const config = this.deps.memory();
    const started = performance.now();
    const event = (outcome: FoldEvent['outcome'], foldedMessages = 0, usage = { input: 0, output: 0 }) =>
      this.deps.onFold?.({
        outcome,
        durationMs: performance.now() - started,
        foldedMessages,
        usage,
        embeddingTokens: 0,
        model: config.summary.model,
      });
    const plan = await this.plan(sessionKey, config);
    if (!plan) return;
    try {
      const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(config.summary.timeout_ms)]);
      const result = await this.deps.summarizer.summarize(
        {
          previous: plan.meta.memory.summary?.text,
          turns: plan.turns,
          model: config.summary.model,
          prompt: config.summary.prompt,
          maxTokens: config.summary.max_tokens,
          withFacts: config.facts.llm,
          withKeys: config.recall.enabled && config.recall.llm_keys,
        },
        { headers: credentials, signal },
      );
      if (signal.aborted) throw signal.reason;
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
      const committed = await this.commitMemory(
        sessionKey,
        plan.meta,
        async (memory, meta) => {
          if ((memory.summary?.upTo ?? 0) !== plan.from || meta.count < plan.to) return false;
          const [stillThere] = await this.deps.store.readMessages(sessionKey, meta, plan.to - 1, plan.to);
          return stillThere?.id === last.id; // else forked below the fold point
        },
        (memory) => ({
          ...memory,
          summary,
          facts: mergeFacts(memory.facts, llmFacts),
          usage: {
            ...memory.usage,
            sideInputTokens: memory.usage.sideInputTokens + result.usage.input,
            sideOutputTokens: memory.usage.sideOutputTokens + result.usage.output,
          },
        }),
      );
      if (committed && result.keys.length > 0) await this.indexKeys(sessionKey, plan, result.keys);
      event(committed ? 'folded' : 'abandoned', committed ? plan.turns.length : 0, result.usage);
    } catch (error) {
      event('failed');
      throw error;
    }
  }

  /**
   * Indexes the keys the summarizer wrote for folded turns, each as the turn's keys passage (see
   * KEYS_POSITION), written with the stats that count them in one write, as an index run does.
   * Runs after this job's index run, so the stats it adds to are the current ones.
   */
  private async indexKeys(sessionKey: string, plan: { meta: SessionMeta; from: number }, keys: Array<{ turn: number; text: string }>) {
    const meta = await this.deps.store.getMeta(sessionKey);
    if (!meta || meta.createdAt !== plan.meta.createdAt) return;
    const generation = indexGeneration(meta.memory.recall);
    const stats = await this.readStats(sessionKey, generation);
    const passages = keys.map(({ turn, text }) => ({ doc: docOf(plan.from + turn, KEYS_POSITION), text }));
    await this.land(
      sessionKey,
      meta,
      generation,
      await addToIndex(this.deps.store, sessionKey, generation, stats, passages, this.deps.now()),
    );
  }

  private async readStats(sessionKey: string, generation: number): Promise<IndexStats> {
    const [stored] = await this.deps.store.readAux<IndexStats>(sessionKey, [statsRecordName(generation)]);
    return currentStats(stored);
  }

  /**
   * Writes an index update's blocks and the stats that list them in one write (atomic on every
   * backend; the stats last, for a backend that applies it in order), then deletes the blocks it
   * lets go — unless the session was erased (or erased and started anew) meanwhile: its blocks
   * would be orphans, never to be read.
   */
  private async land(sessionKey: string, meta: SessionMeta, generation: number, update: IndexUpdate): Promise<boolean> {
    // Too late: the blocks its stats name may have been merged away and deleted meanwhile. The next run redoes it.
    if (this.deps.now() - update.readAt > LANDING_DEADLINE_MS) return false;
    const still = await this.deps.store.getMeta(sessionKey);
    if (!still || still.createdAt !== meta.createdAt) return false;
    await this.deps.store.writeAux(sessionKey, [...update.writes, { name: statsRecordName(generation), value: update.stats }]);
    if (update.expired.length > 0) await this.deps.store.deleteAux(sessionKey, update.expired);
    return true;
  }

  /**
   * Which messages to fold: from the current summary's end up to where the
   * verbatim window starts (see window.ts), once those are over the trigger.
   */
  private async plan(sessionKey: string, config: MemoryConfig) {
    const meta = await this.deps.store.getMeta(sessionKey);
    if (!meta || !foldMayBeDue(meta, config)) return undefined;
    const from = meta.memory.summary?.upTo ?? 0;
    const pending = await this.deps.store.readMessages(sessionKey, meta, from, meta.count);
    const tail = pending.map((stored, offset) => ({ stored, index: from + offset }));
    const to = Math.min(windowStart(tail, meta.memory.tokens, config.window, meta.memory.summary?.tokens ?? 0), meta.count);
    const turns = pending.slice(0, Math.max(0, to - from));
    if (turns.reduce((total, stored) => total + stored.tokens, 0) <= config.summary.trigger_tokens) return undefined;
    return { meta, from, to, turns: turns as StoredMessage[] };
  }

  /** Compare-and-set of new memory, re-applied on top of turns that arrive meanwhile while `stillValid` holds. */
  private async commitMemory(
    sessionKey: string,
    first: SessionMeta,
    stillValid: (memory: SessionMemory, meta: SessionMeta) => boolean | Promise<boolean>,
    update: (memory: SessionMemory) => SessionMemory,
  ): Promise<boolean> {
    let meta: SessionMeta | undefined = first;
    for (let attempt = 0; attempt < 8 && meta; attempt++) {
      if (this.controller.signal.aborted || !(await stillValid(meta.memory, meta))) return false;
      const result = await this.deps.store.commit(sessionKey, meta.version, { keep: meta.count, append: [], memory: update(meta.memory) });
      if (result.ok) return true;
      meta = await this.deps.store.getMeta(sessionKey);
    }
    return false;
  }
}

function usesEmbeddings(config: MemoryConfig): boolean {
  return config.recall.method !== 'bm25';
}

function embeddingsDue(stats: IndexStats, count: number, config: MemoryConfig): boolean {
  return usesEmbeddings(config) && count - stats.embeddedUpTo >= config.recall.embeddings.batch_messages;
}

/** Cheap pre-check from the head alone: the unsummarized part is over the trigger (the window is part of it). */
function foldMayBeDue(meta: SessionMeta, config: MemoryConfig): boolean {
  return (
    config.summary.enabled &&
    unsummarizedTokens(meta.memory) > config.summary.trigger_tokens + windowMinTokens(config.window, meta.memory.summary?.tokens ?? 0)
  );
}

export function unsummarizedTokens(memory: SessionMemory): number {
  return memory.tokens - (memory.summary?.foldedTokens ?? 0);
}
