import { createHash } from 'node:crypto';
import KeyvRedis, { createCluster } from '@keyv/redis';
import {
  ChunkedKeyvStore,
  type SharedStoreOptions,
  type AtomicCommit,
  type AtomicEvict,
  type AtomicRestore,
} from './chunked-keyv-store.js';
import { NAMESPACE, StoreConfigError, envelope, keyvOver, redactUrl } from './keyv.js';

/**
 * Redis and Redis Cluster. Every multi-key step is one Lua script, so several
 * mnemo processes can share the store; all keys of a session carry its hash
 * tag, so each script stays in one slot (Cluster-safe).
 */
export function redisStore(url: string, shared: SharedStoreOptions = {}): ChunkedKeyvStore {
  const adapter = redisAdapter(url);
  const run = (script: string, keys: string[], args: string[]) => evalScript(adapter, script, keys, args);
  return new ChunkedKeyvStore(keyvOver(adapter, { prefixed: false }), {
    backend: 'redis',
    networked: true,
    ...shared,
    disconnect: (force) => adapter.disconnect(force),
    scan: (prefix) => scanRedis(adapter, prefix),
    atomicCommit: (commit) => atomicCommit(run, commit),
    atomicRestore: (restore) => atomicRestore(run, restore),
    atomicEvict: (evict) => atomicEvict(run, evict),
  });
}

type Run = (script: string, keys: string[], args: string[]) => Promise<boolean>;

const PREFIX = `${NAMESPACE}::`;

// The version of a stored head (0 when there is none). mnemo writes the version as the head's first
// field, so it is read off the front of the JSON; decoding the whole head (its open tail of up to
// 32 messages) cost ~80 µs of Redis CPU per commit. Any other layout still decodes.
const HEAD_VERSION = `
local function head_version(current)
  if not current then return 0 end
  local version = string.match(current, '^{"value":{"v":(%d+)[,}]')
  if version then return tonumber(version) end
  return cjson.decode(current).value.v
end`;

// Compare-and-set of a whole commit: the head's version is checked and every chunk write, garbage
// delete and the head write happen together or not at all.
const COMMIT_SCRIPT = `${HEAD_VERSION}
local version = head_version(redis.call('GET', KEYS[1]))
if version ~= tonumber(ARGV[1]) then return 0 end
local writes = tonumber(ARGV[2])
for i = 1, writes do redis.call('SET', KEYS[i + 1], ARGV[i + 3]) end
for i = writes + 2, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SET', KEYS[1], ARGV[3])
return 1`;

function atomicCommit(run: Run, commit: Parameters<AtomicCommit>[0]): Promise<boolean> {
  return run(
    COMMIT_SCRIPT,
    [commit.headKey, ...commit.writes.map((write) => write.key), ...commit.deletes],
    [
      String(commit.expectedVersion),
      String(commit.writes.length),
      envelope(commit.head),
      ...commit.writes.map((write) => envelope(write.value)),
    ],
  );
}

// A session copied in from another tier: refused if this tier already holds a newer version.
const RESTORE_SCRIPT = `${HEAD_VERSION}
local current = redis.call('GET', KEYS[1])
if current and head_version(current) > tonumber(ARGV[1]) then return 0 end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1]) end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

function atomicRestore(run: Run, restore: Parameters<AtomicRestore>[0]): Promise<boolean> {
  return run(
    RESTORE_SCRIPT,
    [restore.headKey, ...restore.records.map((record) => record.key)],
    [String(restore.version), envelope(restore.head), ...restore.records.map((record) => envelope(record.value))],
  );
}

// A session moved out: deleted only if no turn committed since it was copied.
const EVICT_SCRIPT = `${HEAD_VERSION}
local current = redis.call('GET', KEYS[1])
if not current or head_version(current) ~= tonumber(ARGV[1]) then return 0 end
local touched = cjson.decode(current).value.t
if (touched or -1) ~= tonumber(ARGV[2]) then return 0 end
for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end
return 1`;

function atomicEvict(run: Run, evict: Parameters<AtomicEvict>[0]): Promise<boolean> {
  return run(EVICT_SCRIPT, [evict.headKey, ...evict.keys], [String(evict.version), String(evict.touched)]);
}

const digests = new Map<string, string>();

/**
 * Runs a script by its SHA1 (EVALSHA), so a commit does not send the script's
 * text each time; a server that has not seen it yet (first use, a restart, a
 * cluster node) answers NOSCRIPT, and EVAL both runs and caches it there.
 */
async function evalScript(adapter: KeyvRedis<unknown>, script: string, keys: string[], args: string[]): Promise<boolean> {
  type Options = { keys: string[]; arguments: string[] };
  // getClient connects on first use (and is a no-op afterwards), like every Keyv call.
  const client = (await adapter.getClient()) as unknown as {
    eval(script: string, options: Options): Promise<unknown>;
    evalSha(sha: string, options: Options): Promise<unknown>;
  };
  const options = { keys: keys.map((key) => PREFIX + key), arguments: args };
  let digest = digests.get(script);
  if (!digest) {
    digest = createHash('sha1').update(script).digest('hex');
    digests.set(script, digest);
  }
  try {
    return Number(await client.evalSha(digest, options)) === 1;
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
  }
  return Number(await client.eval(script, options)) === 1;
}

/** SCAN on every master (one node, or each shard of a cluster). */
async function* scanRedis(adapter: KeyvRedis<unknown>, prefix: string): AsyncIterable<string> {
  const pattern = `${PREFIX}${prefix}`.replace(/[*?[\]\\]/g, (char) => `\\${char}`) + '*';
  type Scanner = { scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string | string[]> };
  for (const node of (await adapter.getMasterNodes()) as unknown as Scanner[]) {
    for await (const batch of node.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
      for (const key of Array.isArray(batch) ? batch : [batch]) yield key.slice(PREFIX.length);
    }
  }
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
  if (rootNodes.length === 0) throw new StoreConfigError(`${redactUrl(url)} names no cluster nodes: redis+cluster://host1:port,host2:port`);
  return new KeyvRedis(createCluster({ rootNodes }) as never, options);
}
