import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import KeyvRedis, { createCluster } from '@keyv/redis';
import { ChunkedKeyvStore, type AtomicCommit } from './chunked-keyv-store.js';
import { TimedStore } from './timed-store.js';
import type { SessionStore } from './types.js';

export class StoreConfigError extends Error {
  override name = 'StoreConfigError';
}

export interface StoreOptions {
  url: string;
  timeoutMs: number;
  now?: () => number;
}

/** Picks the backend from the URL scheme and checks it answers before mnemo starts serving. */
export async function createStore(options: StoreOptions): Promise<SessionStore> {
  const store = new TimedStore(buildStore(options), options.timeoutMs);
  try {
    await store.ping();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw new StoreConfigError(`MNEMO_STORE=${redactUrl(options.url)} is unreachable: ${(error as Error).message}`);
  }
  return store;
}

function buildStore({ url, now }: StoreOptions): SessionStore {
  const scheme = url.slice(0, Math.max(0, url.indexOf('://')));
  switch (scheme) {
    case 'memory': {
      const map = new Map<string, unknown>();
      return new ChunkedKeyvStore(keyv(map as unknown as KeyvStoreAdapter), {
        backend: 'memory',
        now,
        scan: (prefix) => scanMap(map, prefix),
      });
    }
    case 'sqlite': {
      const adapter = sqliteAdapter(url);
      return new ChunkedKeyvStore(keyv(adapter), { backend: 'sqlite', now, scan: (prefix) => scanSqlite(adapter, prefix) });
    }
    case 'redis+cluster':
    case 'rediss+cluster':
    case 'redis':
    case 'rediss': {
      const adapter = redisAdapter(url);
      return new ChunkedKeyvStore(keyv(adapter, { prefixed: false }), {
        backend: 'redis',
        now,
        disconnect: (force) => adapter.disconnect(force),
        scan: (prefix) => scanRedis(adapter, prefix),
        atomicCommit: (commit) => redisAtomicCommit(adapter, commit),
      });
    }
    default:
      throw new StoreConfigError(
        `MNEMO_STORE=${redactUrl(url)} is not supported: use sqlite://./path.db, sqlite:///absolute/path.db, redis://host:port, redis+cluster://host1:port,host2:port or memory://`,
      );
  }
}

const NAMESPACE = 'mnemo';

function keyv(store: KeyvStoreAdapter, options: { prefixed?: boolean } = {}): Keyv {
  // throwOnErrors: a failing backend must surface as an error, never as an empty session
  // that the next commit would then overwrite. The Redis adapter prefixes keys itself
  // ("mnemo::…"), so Keyv's own prefix is turned off there.
  // Plain JSON.parse/stringify: mnemo stores only JSON values, and Keyv's default
  // (a reviver that restores Buffers) cost ~11% of CPU per turn in a profile.
  return new Keyv({
    store,
    namespace: NAMESPACE,
    throwOnErrors: true,
    useKeyPrefix: options.prefixed ?? true,
    serialize: (data) => JSON.stringify(data),
    deserialize: (data) => (typeof data === 'string' ? JSON.parse(data) : data),
  });
}

async function* scanMap(map: Map<string, unknown>, prefix: string): AsyncIterable<string> {
  const full = `${NAMESPACE}:${prefix}`;
  for (const key of [...map.keys()]) if (key.startsWith(full)) yield key.slice(NAMESPACE.length + 1);
}

async function* scanSqlite(adapter: KeyvSqlite, prefix: string): AsyncIterable<string> {
  const pattern = `${NAMESPACE}:${prefix}`.replace(/[\\%_]/g, (char) => `\\${char}`) + '%';
  const rows = (await adapter.query(`SELECT key FROM keyv WHERE key LIKE ? ESCAPE '\\'`, pattern)) as Array<{ key: string }>;
  for (const row of rows) yield row.key.slice(NAMESPACE.length + 1);
}

// Compare-and-set of a whole commit in one step: the head's version is checked and every chunk
// write, garbage delete and the head write happen together or not at all. All keys share the
// session's hash tag, so the script stays in one slot (Redis Cluster-safe).
const COMMIT_SCRIPT = `
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = cjson.decode(current).value.v end
if version ~= tonumber(ARGV[1]) then return 0 end
local writes = tonumber(ARGV[2])
for i = 1, writes do redis.call('SET', KEYS[i + 1], ARGV[i + 3]) end
for i = writes + 2, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SET', KEYS[1], ARGV[3])
return 1`;

async function redisAtomicCommit(adapter: KeyvRedis<unknown>, commit: Parameters<AtomicCommit>[0]): Promise<boolean> {
  const prefix = `${NAMESPACE}::`;
  // Values in the same envelope Keyv writes ({"value": …}), so reads through Keyv see them unchanged.
  const envelope = (value: unknown) => JSON.stringify({ value });
  const client = adapter.client as unknown as { eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown> };
  const result = await client.eval(COMMIT_SCRIPT, {
    keys: [commit.headKey, ...commit.writes.map((write) => write.key), ...commit.deletes].map((key) => prefix + key),
    arguments: [
      String(commit.expectedVersion),
      String(commit.writes.length),
      envelope(commit.head),
      ...commit.writes.map((write) => envelope(write.value)),
    ],
  });
  return Number(result) === 1;
}

/** SCAN on every master (one node, or each shard of a cluster). */
async function* scanRedis(adapter: KeyvRedis<unknown>, prefix: string): AsyncIterable<string> {
  const full = `${NAMESPACE}::${prefix}`;
  const pattern = full.replace(/[*?[\]\\]/g, (char) => `\\${char}`) + '*';
  type Scanner = { scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string | string[]> };
  for (const node of (await adapter.getMasterNodes()) as unknown as Scanner[]) {
    for await (const batch of node.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
      for (const key of Array.isArray(batch) ? batch : [batch]) yield key.slice(NAMESPACE.length + 2);
    }
  }
}

function sqliteAdapter(url: string): KeyvSqlite {
  const path = url.replace(/^sqlite:\/\//, '');
  if (path === '') throw new StoreConfigError('MNEMO_STORE=sqlite:// needs a file path, e.g. sqlite://./data/mnemo.db');
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const adapter = new KeyvSqlite({ uri: url, busyTimeout: 5_000 });
  // WAL lets readers proceed during a write; synchronous=NORMAL syncs at checkpoints rather than on
  // every commit — a committed turn survives a mnemo crash, and only a power loss can drop the
  // last few (SQLite's documented trade-off for WAL mode).
  void adapter
    .query('PRAGMA journal_mode=WAL')
    .then(() => adapter.query('PRAGMA synchronous=NORMAL'))
    .catch(() => undefined);
  return adapter;
}

function redisAdapter(url: string): KeyvRedis<unknown> {
  const options = { throwOnConnectError: true, throwOnErrors: true, connectionTimeout: 2_000 };
  const cluster = /^(rediss?)\+cluster:\/\/(.*)$/.exec(url);
  if (!cluster) return new KeyvRedis(url, options);
  // redis+cluster://[user:pass@]host1:port,host2:port,… — any reachable nodes; the client discovers the rest.
  const [, scheme, rest] = cluster;
  const auth = /^([^@/]*@)?(.*)$/.exec(rest!)!;
  const rootNodes = auth[2]!
    .split(',')
    .filter(Boolean)
    .map((node) => ({ url: `${scheme}://${auth[1] ?? ''}${node.replace(/\/.*$/, '')}` }));
  if (rootNodes.length === 0)
    throw new StoreConfigError(`MNEMO_STORE=${redactUrl(url)} names no cluster nodes: redis+cluster://host1:port,host2:port`);
  return new KeyvRedis(createCluster({ rootNodes }) as never, options);
}

/** Hides a password in a connection URL before it reaches a log line or an error. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):([^@/]*)@/, '//$1:***@');
}
