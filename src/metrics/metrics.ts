import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

// Buckets from the OpenTelemetry GenAI semantic conventions (gen_ai.client.*).
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const OPERATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
// mnemo's own overhead and store calls live in the sub-millisecond to tens-of-ms range.
const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export type StreamEnd = 'complete' | 'client_abort' | 'upstream_error';

export interface TurnRecord {
  model: string;
  responseModel?: string;
  provider: string;
  stream: boolean;
  baselineTokens: number;
  sentTokens: number;
  providerPromptTokens?: number;
  cachedTokens?: number;
  completionTokens?: number;
  upstreamSeconds: number;
  firstChunkSeconds?: number;
  costSavedUsd: number;
  costPromptUsd: number;
  costCompletionUsd: number;
  factsExtracted: number;
  recalled: number;
}

/**
 * Every metric mnemo exports, on its own registry. Labels are bounded: model,
 * provider, route, outcome — never a session or user id.
 */
/** Distinct model names kept as label values; the rest are `other`. */
const MAX_MODEL_LABELS = 100;

/** The active-sessions map is swept when it reaches this size, and then whenever it doubles. */
const ACTIVE_SWEEP_MIN = 4_096;

export class Metrics {
  readonly registry = new Registry();
  private readonly activeSessions = new Map<string, number>();
  private activeSweepAt = ACTIVE_SWEEP_MIN;
  private readonly activeWindowMs: number;

  readonly baselineTokens = this.counter('mnemo_prompt_tokens_baseline_total', 'Prompt tokens a full-history prompt would have cost.', [
    'model',
    'provider',
  ]);
  readonly sentTokens = this.counter('mnemo_prompt_tokens_sent_total', 'Prompt tokens mnemo actually sent.', ['model', 'provider']);
  readonly savedTokens = this.counter('mnemo_prompt_tokens_saved_total', 'Baseline minus sent prompt tokens.', ['model', 'provider']);
  readonly sideTokens = this.counter(
    'mnemo_side_tokens_total',
    'Tokens spent on memory upkeep (summaries, fact extraction, embeddings). Net savings = saved - side.',
    ['model', 'provider', 'purpose', 'token_type'],
  );
  readonly providerPromptTokens = this.counter('mnemo_provider_prompt_tokens_total', 'Prompt tokens the provider reported.', [
    'model',
    'provider',
  ]);
  readonly cachedTokens = this.counter('mnemo_provider_cached_tokens_total', 'Cached prompt tokens the provider reported.', [
    'model',
    'provider',
  ]);
  readonly completionTokens = this.counter('mnemo_completion_tokens_total', 'Completion tokens the provider reported.', [
    'model',
    'provider',
  ]);
  readonly costSaved = this.counter(
    'mnemo_cost_saved_usd_total',
    'Estimated USD not spent on prompt tokens (baseline minus sent, at the input price).',
    ['model', 'provider'],
  );
  readonly costSpent = this.counter('mnemo_cost_spent_usd_total', 'Estimated USD spent, by kind: prompt, completion, side.', [
    'model',
    'provider',
    'kind',
  ]);

  readonly tokenUsage = this.histogram(
    'gen_ai_client_token_usage',
    'Tokens used per operation (OpenTelemetry gen_ai.client.token.usage).',
    ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model', 'gen_ai_response_model', 'gen_ai_token_type'],
    TOKEN_BUCKETS,
  );
  readonly operationDuration = this.histogram(
    'gen_ai_client_operation_duration_seconds',
    'Duration of provider operations (OpenTelemetry gen_ai.client.operation.duration).',
    ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model', 'error_type'],
    OPERATION_BUCKETS,
  );
  readonly timeToFirstChunk = this.histogram(
    'gen_ai_client_operation_time_to_first_chunk_seconds',
    'Time from the request to the first streamed chunk from the provider.',
    ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model'],
    OPERATION_BUCKETS,
  );

  readonly requests = this.counter('mnemo_http_requests_total', 'HTTP requests by route, status class and stream flag.', [
    'route',
    'status_class',
    'stream',
  ]);
  readonly requestDuration = this.histogram(
    'mnemo_request_duration_seconds',
    'End-to-end request latency.',
    ['route', 'stream'],
    OPERATION_BUCKETS,
  );
  readonly upstreamDuration = this.histogram(
    'mnemo_upstream_duration_seconds',
    'Time spent waiting on the provider.',
    ['provider', 'stream'],
    OPERATION_BUCKETS,
  );
  readonly overhead = this.histogram(
    'mnemo_overhead_seconds',
    "mnemo's own time: end-to-end minus upstream.",
    ['route', 'stream'],
    FAST_BUCKETS,
  );
  readonly inFlight = new Gauge({ name: 'mnemo_requests_in_flight', help: 'Requests being served now.', registers: [this.registry] });
  readonly streamEnds = this.counter('mnemo_stream_terminations_total', 'How streamed responses ended.', ['reason']);
  readonly sessionsExpired = this.counter('mnemo_sessions_expired_total', 'Sessions erased after idling past session.retention_ms.', [
    'trigger',
  ]);
  readonly tombstonesSwept = this.counter(
    'mnemo_tombstones_swept_total',
    'Tombstones of erased sessions deleted after session.tombstone_ttl_ms.',
    [],
  );
  readonly memoryDegraded = this.counter('mnemo_memory_degraded_total', 'Turns answered without memory because the store failed.', [
    'reason',
  ]);

  readonly storeDuration = this.histogram('mnemo_store_operation_duration_seconds', 'Store call latency.', ['op', 'backend'], FAST_BUCKETS);
  readonly storeErrors = this.counter('mnemo_store_errors_total', 'Store calls that failed or timed out.', ['op', 'backend']);
  readonly tierMoves = this.counter(
    'mnemo_tier_moves_total',
    'Sessions moved between tiers: to_cold after idling past store.hot_ttl_ms, to_hot on their next request. outcome=raced: a turn or another instance got there first; nothing changed.',
    ['direction', 'outcome'],
  );
  readonly tierPassFailures = this.counter(
    'mnemo_tier_pass_failures_total',
    'Demotion passes that stopped on a store error (retried next interval).',
    [],
  );
  readonly commitConflicts = this.counter('mnemo_commit_conflicts_total', 'Compare-and-set commits retried after a concurrent write.', [
    'backend',
  ]);

  readonly folds = this.counter('mnemo_folds_total', 'Summary folds by outcome: folded, failed, abandoned.', ['outcome']);
  readonly foldDuration = this.histogram('mnemo_fold_duration_seconds', 'Duration of summary folds.', ['outcome'], OPERATION_BUCKETS);
  readonly foldedMessages = this.counter('mnemo_folded_messages_total', 'Messages folded into summaries.', []);
  readonly indexRuns = this.counter('mnemo_index_runs_total', 'Background runs adding committed messages to the recall index.', [
    'outcome',
  ]);
  readonly indexedMessages = this.counter('mnemo_indexed_messages_total', 'Messages added to the recall index.', []);
  readonly factsExtracted = this.counter('mnemo_facts_extracted_total', 'Facts extracted from turns.', []);
  readonly outboxWrites = this.counter(
    'mnemo_outbox_writes_total',
    'Turns the provider answered whose commit failed, written to the local outbox to be replayed.',
    [],
  );
  readonly outboxReplays = this.counter(
    'mnemo_outbox_replays_total',
    'Outbox replays: landed (committed, or found already committed), erased (the session was deleted since), failed (store still down).',
    ['outcome'],
  );
  readonly turnsLost = this.counter(
    'mnemo_turns_lost_total',
    'Turns the provider answered that were neither committed nor written to the outbox (no outbox configured, or it failed).',
    [],
  );
  readonly repliesNotStored = this.counter(
    'mnemo_replies_not_stored_total',
    'Provider replies delivered to the client but not stored: too_large (over upstream.max_capture_bytes), unparseable, encoding.',
    ['reason'],
  );
  readonly recallHits = this.counter('mnemo_recall_hits_total', 'Archived messages recalled into prompts.', []);

  private readonly modelLabels = new Set<string>();
  private readonly knownModel: (model: string) => boolean;

  constructor(options: { activeWindowMs?: number; now?: () => number; knownModel?: (model: string) => boolean } = {}) {
    this.knownModel = options.knownModel ?? (() => true);
    const windowMs = (this.activeWindowMs = options.activeWindowMs ?? 15 * 60_000);
    const now = options.now ?? Date.now;
    const sweep = (at: number) => this.sweepActive(at);
    new Gauge({
      name: 'mnemo_active_sessions',
      help: `Sessions with a request in the last ${windowMs / 60_000} minutes (this instance).`,
      registers: [this.registry],
      collect() {
        this.set(sweep(now()));
      },
    });
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges *_total, which promtool rejects; their per-type
    // siblings (nodejs_active_handles{type}, …) carry the same information.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
  }

  /** Exports the chunk cache's lookups and size, read when /metrics is scraped (nothing added to a turn). */
  watchChunkCache(cache: { hits: number; misses: number; bytes: number }): void {
    const counted = { hit: 0, miss: 0 };
    new Counter({
      name: 'mnemo_chunk_cache_lookups_total',
      help: 'Sealed transcript chunks looked up in the in-process cache, by outcome (a miss reads the store).',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        this.inc({ outcome: 'hit' }, cache.hits - counted.hit);
        this.inc({ outcome: 'miss' }, cache.misses - counted.miss);
        counted.hit = cache.hits;
        counted.miss = cache.misses;
      },
    });
    new Gauge({
      name: 'mnemo_chunk_cache_bytes',
      help: 'Estimated size of the decoded chunks the cache holds (bounded by store.chunk_cache).',
      registers: [this.registry],
      collect() {
        this.set(cache.bytes);
      },
    });
  }

  /** Outbox depth and the age of its oldest entry, read at scrape time. */
  watchOutbox(outbox: { depth(): { depth: number; oldestAt: number | undefined } }, now: () => number): void {
    new Gauge({
      name: 'mnemo_outbox_depth',
      help: 'Turns waiting in the local outbox for the store.',
      registers: [this.registry],
      collect() {
        this.set(outbox.depth().depth);
      },
    });
    new Gauge({
      name: 'mnemo_outbox_oldest_age_seconds',
      help: 'Age of the oldest turn waiting in the outbox (0 when empty).',
      registers: [this.registry],
      collect() {
        const { oldestAt } = outbox.depth();
        this.set(oldestAt === undefined ? 0 : Math.max(0, (now() - oldestAt) / 1000));
      },
    });
  }

  /** Marks a session active (keyed by a hash, never the raw id). */
  seen(sessionHash: string, at: number): void {
    this.activeSessions.set(sessionHash, at);
    // Swept on a scrape, and here too: never scraped (metrics off, no Prometheus yet), the map kept
    // every session this instance had ever seen. Swept when it doubles, so the cost per call stays flat.
    if (this.activeSessions.size >= this.activeSweepAt) this.sweepActive(at);
  }

  /** Sessions the active-sessions gauge holds now, active or not yet swept. */
  get trackedSessions(): number {
    return this.activeSessions.size;
  }

  /** Forgets sessions idle past the window; resolves with how many are active. */
  private sweepActive(now: number): number {
    const cutoff = now - this.activeWindowMs;
    for (const [key, seen] of this.activeSessions) if (seen < cutoff) this.activeSessions.delete(key);
    this.activeSweepAt = Math.max(ACTIVE_SWEEP_MIN, 2 * this.activeSessions.size);
    return this.activeSessions.size;
  }

  /**
   * A model name as a label value. Names come from clients and providers, so values are bounded:
   * a model the config knows (a price or a context window) keeps its name until MAX_MODEL_LABELS
   * names are in use; anything else is `other`. 2,000 invented names once grew /metrics to 60 MB.
   */
  modelLabel(model: string): string {
    if (this.modelLabels.has(model)) return model;
    if (this.modelLabels.size >= MAX_MODEL_LABELS || model.length > 64 || !this.knownModel(model)) return 'other';
    this.modelLabels.add(model);
    return model;
  }

  turn(input: TurnRecord): void {
    const record = {
      ...input,
      model: this.modelLabel(input.model),
      responseModel: input.responseModel && this.modelLabel(input.responseModel),
    };
    const labels = { model: record.model, provider: record.provider };
    this.baselineTokens.inc(labels, record.baselineTokens);
    this.sentTokens.inc(labels, record.sentTokens);
    this.savedTokens.inc(labels, Math.max(0, record.baselineTokens - record.sentTokens));
    this.providerPromptTokens.inc(labels, record.providerPromptTokens ?? 0);
    this.cachedTokens.inc(labels, record.cachedTokens ?? 0);
    this.completionTokens.inc(labels, record.completionTokens ?? 0);
    this.costSaved.inc(labels, record.costSavedUsd);
    this.costSpent.inc({ ...labels, kind: 'prompt' }, record.costPromptUsd);
    this.costSpent.inc({ ...labels, kind: 'completion' }, record.costCompletionUsd);
    this.factsExtracted.inc(record.factsExtracted);
    this.recallHits.inc(record.recalled);
    const genai = { gen_ai_operation_name: 'chat', gen_ai_provider_name: record.provider, gen_ai_request_model: record.model };
    const responseModel = record.responseModel ?? record.model;
    if (record.providerPromptTokens !== undefined) {
      this.tokenUsage.observe({ ...genai, gen_ai_response_model: responseModel, gen_ai_token_type: 'input' }, record.providerPromptTokens);
    }
    if (record.completionTokens !== undefined) {
      this.tokenUsage.observe({ ...genai, gen_ai_response_model: responseModel, gen_ai_token_type: 'output' }, record.completionTokens);
    }
    this.operationDuration.observe({ ...genai, error_type: '' }, record.upstreamSeconds);
    if (record.firstChunkSeconds !== undefined) this.timeToFirstChunk.observe(genai, record.firstChunkSeconds);
  }

  side(record: {
    model: string;
    provider: string;
    purpose: 'summary' | 'embedding';
    input: number;
    output: number;
    costUsd: number;
  }): void {
    const labels = { model: this.modelLabel(record.model), provider: record.provider, purpose: record.purpose };
    this.sideTokens.inc({ ...labels, token_type: 'input' }, record.input);
    this.sideTokens.inc({ ...labels, token_type: 'output' }, record.output);
    this.costSpent.inc({ model: labels.model, provider: record.provider, kind: 'side' }, record.costUsd);
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram<L extends string>(name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }
}

const providerNames = new Map<string, string>();

/**
 * OpenTelemetry's gen_ai.provider.name for well-known hosts; otherwise the
 * upstream's host. Upstream URLs come from config, so the memo stays small.
 */
export function providerName(upstreamUrl: string): string {
  let name = providerNames.get(upstreamUrl);
  if (name === undefined) {
    const host = new URL(upstreamUrl).hostname;
    name = host === 'api.openai.com' ? 'openai' : host.endsWith('.openai.azure.com') ? 'azure.ai.openai' : host;
    providerNames.set(upstreamUrl, name);
  }
  return name;
}
