import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { existsSync } from 'node:fs';
import { ConfigHolder } from './config/holder.js';
import { DEFAULT_CONFIG_PATH } from './config/load.js';
import type { Config } from './config/schema.js';
import { FoldScheduler, type FoldEvent, type IndexEvent } from './memory/folds.js';
import { configureBlockCache } from './memory/lexical-index.js';
import { OutboxReplayer } from './memory/outbox-replay.js';
import { Outbox } from './store/outbox.js';
import { UpstreamSummarizer, type Summarizer } from './memory/summarizer.js';
import { UpstreamEmbedder, type Embedder } from './memory/embeddings.js';
import { Metrics, providerName } from './metrics/metrics.js';
import { callCost, priceFor } from './metrics/pricing.js';
import { globMatch } from './upstream/routing.js';
import { InstrumentedStore } from './store/instrumented-store.js';
import { IdleSweeper } from './memory/expiry.js';
import { createLogger } from './logger.js';
import { createRequestHandler } from './server.js';
import { createStores, redactUrl, type StoreOptions } from './store/factory.js';
import { TierMover } from './store/tier-mover.js';
import type { SessionStore } from './store/types.js';
import type { MoveEvent } from './store/tiered-store.js';
import { TiktokenTokenizer, type Tokenizer } from './tokenizer.js';
import { createUndiciClient, type UpstreamClient } from './upstream/client.js';

export interface MnemoOptions {
  config: Config;
  /** Where the config came from, so SIGHUP / file changes can reload it. */
  configSource?: { path?: string; env?: Record<string, string | undefined> };
  logger?: Logger;
  /** Injected in tests; defaults to the store named by config.store.url. */
  store?: SessionStore;
  upstream?: UpstreamClient;
  tokenizer?: Tokenizer;
  summarizer?: Summarizer;
  embedder?: Embedder;
  now?: () => number;
  onFold?: (event: FoldEvent) => void;
}

export interface RunningMnemo {
  url: string;
  server: Server;
  store: SessionStore;
  logger: Logger;
  config: ConfigHolder;
  folds: FoldScheduler;
  /** The local outbox of turns waiting for the store, when store.outbox is set. */
  outbox?: { box: Outbox; replayer: OutboxReplayer };
  metrics: Metrics;
  sweeper: IdleSweeper;
  /** Moves idle sessions to the cold tier; present when store.cold_url is set. */
  mover?: TierMover;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes the store. */
  close(graceMs?: number): Promise<void>;
}

/** Builds the dependencies, checks the store answers, and listens. */
export async function startMnemo(options: MnemoOptions): Promise<RunningMnemo> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.log);
  const metrics = new Metrics({
    activeWindowMs: config.metrics.active_session_window_ms,
    now: options.now,
    // A model the config prices or sizes is a real one; client-invented names are `other`.
    knownModel: (model) => {
      const current = holder.current();
      return (
        priceFor(model, current.pricing) !== undefined ||
        Object.keys(current.memory.budget.context_windows).some((glob) => globMatch(glob, model))
      );
    },
  });
  const holder = new ConfigHolder(config, options.configSource, logger);
  configureBlockCache(config.store.index_cache);
  const created = options.store ? { store: options.store } : await createStores(storeOptions(config, holder, metrics, options.now));
  const store = new InstrumentedStore(created.store, metrics);
  if (created.chunkCache) metrics.watchChunkCache(created.chunkCache);
  const ownUpstream = options.upstream
    ? undefined
    : createUndiciClient({ timeoutMs: config.upstream.timeout_ms, idleTimeoutMs: config.upstream.idle_timeout_ms });
  const upstream = options.upstream ?? ownUpstream!;
  const tokenizer = options.tokenizer ?? preloadedTokenizer();
  const now = options.now ?? Date.now;
  const embedder = options.embedder ?? new UpstreamEmbedder(upstream, () => holder.current().upstream.url);
  const folds = new FoldScheduler({
    embedder,
    store,
    tokenizer,
    summarizer: options.summarizer ?? new UpstreamSummarizer(upstream, () => holder.current().upstream.url),
    logger,
    now,
    memory: () => holder.current().memory,
    onFold: (event) => {
      recordFold(metrics, holder.current(), event);
      options.onFold?.(event);
    },
    onIndex: (event) => recordIndex(metrics, holder.current(), event),
  });
  const sweeper = new IdleSweeper(
    {
      store,
      logger,
      now,
      onExpired: () => metrics.sessionsExpired.inc({ trigger: 'sweep' }),
      onTombstonesSwept: (count) => metrics.tombstonesSwept.inc(count),
    },
    () => ({
      retentionMs: holder.current().session.retention_ms,
      tombstoneTtlMs: holder.current().session.tombstone_ttl_ms,
      intervalMs: config.session.sweep_interval_ms,
    }),
  );
  // Always: erasing through the admin API leaves tombstones too, retention or not.
  sweeper.start();
  const box = config.store.outbox === null ? undefined : new Outbox(config.store.outbox);
  const outbox = box && {
    box,
    replayer: new OutboxReplayer({ outbox: box, store, tokenizer, logger, metrics, config: holder.current, now }),
  };
  if (outbox) {
    metrics.watchOutbox(box!, now);
    // Turns left by an earlier run go first; then the store is retried on an interval.
    outbox.replayer.start(config.store.outbox_interval_ms);
    void outbox.replayer.drain();
  }
  const mover = created.tiers && new TierMover(created.tiers, logger, metrics);
  mover?.start(config.store.tier_interval_ms);
  let accepting = true;
  const handler = createRequestHandler(
    {
      config: holder.current,
      store,
      tokenizer,
      upstream,
      logger,
      now,
      folds,
      outbox,
      embedder,
      metrics,
      onExpired: () => metrics.sessionsExpired.inc({ trigger: 'request' }),
    },
    { accepting: () => accepting },
  );
  const server = createServer(handler).listen(config.server.port, config.server.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  logger.info({ url, store: redactUrl(config.store.url), upstream: redactUrl(config.upstream.url) }, 'mnemo listening');

  const configPath = options.configSource && (options.configSource.path ?? options.configSource.env?.MNEMO_CONFIG ?? DEFAULT_CONFIG_PATH);
  if (config.server.watch_config && configPath && existsSync(configPath)) holder.watchFile(configPath);

  const close = async (graceMs = config.server.shutdown_grace_ms) => {
    accepting = false;
    const deadline = Date.now() + graceMs;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    // Folds get what is left of the grace period; past it they are abandoned, uncommitted.
    await folds.drain(Math.max(0, deadline - Date.now()));
    if (outbox) {
      // One last try to hand waiting turns to the store; what cannot land stays on disk for the next start.
      await outbox.replayer.stop();
      if (box!.depth().depth > 0) await Promise.race([outbox.replayer.drain(), sleep(Math.max(0, deadline - Date.now()))]);
      await outbox.replayer.stop();
      box!.close();
    }
    await sweeper.stop();
    await mover?.stop();
    holder.close();
    await ownUpstream?.close();
    await store.close();
  };
  return { url, server, store, logger, config: holder, folds, outbox, metrics, sweeper, mover, close };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function storeOptions(config: Config, holder: ConfigHolder, metrics: Metrics, now?: () => number): StoreOptions {
  const { store } = config;
  const cold = store.cold_url
    ? {
        url: store.cold_url,
        hotTtlMs: () => holder.current().store.hot_ttl_ms,
        onMove: (event: MoveEvent) => metrics.tierMoves.inc({ ...event }),
      }
    : undefined;
  return { url: store.url, timeoutMs: store.timeout_ms, chunkCacheBytes: store.chunk_cache, now, cold };
}

/** Summary folds as metrics: outcome, duration, folded messages, and their side tokens and cost. */
function recordFold(metrics: Metrics, config: Config, event: FoldEvent): void {
  metrics.folds.inc({ outcome: event.outcome });
  metrics.foldDuration.observe({ outcome: event.outcome }, event.durationMs / 1000);
  metrics.foldedMessages.inc(event.foldedMessages);
  const provider = providerName(config.upstream.url);
  const summaryCost = callCost(priceFor(event.model, config.pricing), { input: event.usage.input, output: event.usage.output });
  metrics.side({ model: event.model, provider, purpose: 'summary', ...event.usage, costUsd: summaryCost.prompt + summaryCost.completion });
  recordEmbeddings(metrics, config, event.embeddingTokens);
}

function recordIndex(metrics: Metrics, config: Config, event: IndexEvent): void {
  metrics.indexRuns.inc({ outcome: event.outcome });
  metrics.indexedMessages.inc(event.indexedMessages);
  recordEmbeddings(metrics, config, event.embeddingTokens);
}

/** Embedding calls are side spend like summaries: counted in tokens and money. */
function recordEmbeddings(metrics: Metrics, config: Config, tokens: number): void {
  if (tokens <= 0) return;
  const model = config.memory.recall.embeddings.model;
  const cost = callCost(priceFor(model, config.pricing), { input: tokens, output: 0 });
  metrics.side({
    model,
    provider: providerName(config.upstream.url),
    purpose: 'embedding',
    input: tokens,
    output: 0,
    costUsd: cost.prompt,
  });
}

/** The first turn would otherwise pay ~350 ms loading o200k_base (gpt-4o, gpt-5, o-series and unknown models). */
function preloadedTokenizer(): TiktokenTokenizer {
  const tokenizer = new TiktokenTokenizer();
  tokenizer.preload('gpt-4o');
  return tokenizer;
}
