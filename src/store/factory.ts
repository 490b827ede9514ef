import { ChunkCache, DEFAULT_CHUNK_CACHE_BYTES } from './chunk-cache.js';
import { MemoryBackend } from './memory-backend.js';
import { ChunkedKeyvStore, type SharedStoreOptions } from './chunked-keyv-store.js';
import { StoreConfigError, redactUrl } from './keyv.js';
import { redisStore } from './redis-backend.js';
import { postgresStore, sqliteStore } from './sql-backend.js';
import { TieredStore, type MoveEvent } from './tiered-store.js';
import { TimedStore } from './timed-store.js';
import type { SessionStore } from './types.js';

export { StoreConfigError, redactUrl };

export interface StoreOptions {
  url: string;
  timeoutMs: number;
  now?: () => number;
  /** Bytes of decoded sealed chunks kept in process (store.chunk_cache); 0 turns the cache off. */
  chunkCacheBytes?: number;
  /** A durable cold tier: sessions idle past `hotTtlMs` move there and come back on their next request. */
  cold?: { url: string; hotTtlMs: () => number; onMove?: (event: MoveEvent) => void };
}

export interface CreatedStore {
  store: SessionStore;
  /** Present when a cold tier is configured: the mover runs its demotion passes. */
  tiers?: TieredStore;
  /** Present unless store.chunk_cache is 0: its figures go to /metrics. */
  chunkCache?: ChunkCache;
}

/** Picks the backend from the URL scheme and checks it answers before mnemo starts serving. */
export async function createStore(options: StoreOptions): Promise<SessionStore> {
  return (await createStores(options)).store;
}

export async function createStores(options: StoreOptions): Promise<CreatedStore> {
  const cacheBytes = options.chunkCacheBytes ?? DEFAULT_CHUNK_CACHE_BYTES;
  const shared: SharedStoreOptions = { now: options.now, chunkCache: cacheBytes > 0 ? new ChunkCache(cacheBytes) : undefined };
  const hot = await connected('MNEMO_STORE', options.url, options.timeoutMs, shared);
  const { chunkCache } = shared;
  if (!options.cold) return { store: new TimedStore(hot, deadline(hot, options.timeoutMs)), chunkCache };
  const { cold: coldOptions } = options;
  const cold = await connected('MNEMO_COLD_STORE', coldOptions.url, options.timeoutMs, shared).catch(async (error) => {
    await hot.close().catch(() => undefined);
    throw error;
  });
  const tiers = new TieredStore({ hot, cold, now: options.now, hotTtlMs: coldOptions.hotTtlMs, onMove: coldOptions.onMove });
  return { store: new TimedStore(tiers, deadline(tiers, options.timeoutMs)), tiers, chunkCache };
}

/** store.timeout_ms for a store that waits on a network; none for one whose calls return before a timer could fire. */
function deadline(store: SessionStore, timeoutMs: number): number | undefined {
  return store.networked ? timeoutMs : undefined;
}

/** The backend for `url`, answering; a failure names the setting (`variable`) it came from. */
async function connected(variable: string, url: string, timeoutMs: number, shared: SharedStoreOptions): Promise<ChunkedKeyvStore> {
  let store: ChunkedKeyvStore;
  try {
    store = buildStore(url, shared);
  } catch (error) {
    if (error instanceof StoreConfigError) throw new StoreConfigError(`${variable}=${error.message}`);
    throw error;
  }
  try {
    await new TimedStore(store, timeoutMs).ping();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw new StoreConfigError(`${variable}=${redactUrl(url)} is unreachable: ${(error as Error).message}`);
  }
  return store;
}

/** The backend named by `url`, not yet checked; createStore is the way in for everything but tests of the backends themselves. */
export function buildStore(url: string, shared: SharedStoreOptions = {}): ChunkedKeyvStore {
  const scheme = url.slice(0, Math.max(0, url.indexOf('://')));
  switch (scheme) {
    case 'memory':
      return memoryStore(shared);
    case 'sqlite':
      return sqliteStore(url, shared);
    case 'postgres':
    case 'postgresql':
      return postgresStore(url, shared);
    case 'redis+cluster':
    case 'rediss+cluster':
    case 'redis':
    case 'rediss':
      return redisStore(url, shared);
    default:
      throw new StoreConfigError(
        `${redactUrl(url)} is not supported: use sqlite://./path.db, sqlite:///absolute/path.db, redis://host:port, redis+cluster://host1:port,host2:port, postgres://user@host/db or memory://`,
      );
  }
}

/** In-process only (tests, trials, a single instance that may forget on restart): values kept as they are, no JSON. */
function memoryStore(shared: SharedStoreOptions): ChunkedKeyvStore {
  const backend = new MemoryBackend();
  return new ChunkedKeyvStore(backend, {
    backend: 'memory',
    networked: false,
    ...shared,
    scan: async function* (prefix) {
      yield* backend.keys(prefix);
    },
  });
}
