import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../src/memory/messages.js';
import { buildStore, createStore, createStores } from '../../src/store/factory.js';
import { startPostgres, type PostgresProcess } from '../support/postgres-server.js';
import { startRedis, type RedisProcess } from '../support/redis-server.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { movableContract } from './movable-contract.js';
import { message, storeContract } from './store-contract.js';

storeContract('memory', () => createStore({ url: 'memory://', timeoutMs: 2_000 }));
movableContract('memory', async () => buildStore('memory://'));

const sqliteDir = mkdtempSync(join(tmpdir(), 'mnemo-sqlite-'));
storeContract(
  'sqlite',
  () => createStore({ url: `sqlite://${join(sqliteDir, 'nested', 'contract.db')}`, timeoutMs: 5_000 }),
  async () => rmSync(sqliteDir, { recursive: true, force: true }),
);
movableContract('sqlite', async () => buildStore(`sqlite://${join(sqliteDir, 'tier.db')}`));

let redis: RedisProcess;
storeContract(
  'redis',
  async () => {
    redis = await startRedis();
    return createStore({ url: redis.url, timeoutMs: 2_000 });
  },
  async () => redis.stop(),
);

let movableRedis: RedisProcess;
movableContract(
  'redis',
  async () => {
    movableRedis = await startRedis();
    return buildStore(movableRedis.url);
  },
  async () => movableRedis.stop(),
);

let postgres: PostgresProcess;
storeContract(
  'postgres',
  async () => {
    postgres = await startPostgres();
    return createStore({ url: postgres.url, timeoutMs: 5_000 });
  },
  async () => postgres.stop(),
);

let movablePostgres: PostgresProcess;
movableContract(
  'postgres',
  async () => {
    movablePostgres = await startPostgres();
    return buildStore(movablePostgres.url);
  },
  async () => movablePostgres.stop(),
);

// One cluster for both suites (it takes seconds to form), stopped when the file is done, so a run
// filtered to one of the suites does not leave it running.
let cluster: Promise<RedisCluster> | undefined;
const sharedCluster = () => (cluster ??= startRedisCluster());
afterAll(async () => {
  if (cluster) await (await cluster).stop();
});
storeContract('redis cluster', async () => createStore({ url: (await sharedCluster()).url, timeoutMs: 5_000 }));
movableContract('redis cluster', async () => {
  const store = buildStore((await sharedCluster()).url);
  await store.ping();
  return store;
});

/** Two handles on one backend, as two mnemo instances have: each keeps its own chunk cache. */
describe.each(['sqlite', 'redis', 'postgres'] as const)('two handles on one %s store', (kind) => {
  let server: RedisProcess | PostgresProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-handles-'));
  const open = async () => {
    if (kind === 'sqlite') return createStore({ url: `sqlite://${join(dir, 'shared.db')}`, timeoutMs: 5_000 });
    server ??= await (kind === 'redis' ? startRedis() : startPostgres());
    return createStore({ url: server.url, timeoutMs: 5_000 });
  };
  const texts = (messages: Array<StoredMessage | undefined>) => messages.map((stored) => stored?.message.content);
  const append = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => message(`${prefix}${index}`));

  it("never serves one handle's cached chunks after the other deleted, recreated or forked the session", async () => {
    const [a, b] = [await open(), await open()];
    // Redis and PostgreSQL calls cross a network (deadline armed); SQLite's run in process.
    expect(a.networked).toBe(kind !== 'sqlite');
    try {
      await a.commit('t:shared', 0, { keep: 0, append: append('first', 80) });
      expect(texts(await a.readMessages('t:shared', (await a.getMeta('t:shared'))!, 0, 80))[70]).toBe('first70');
      expect(texts(await b.readMessages('t:shared', (await b.getMeta('t:shared'))!, 0, 80))[10]).toBe('first10');

      await b.delete('t:shared');
      await b.commit('t:shared', 0, { keep: 0, append: append('second', 80) });
      let meta = (await a.getMeta('t:shared'))!;
      expect(texts(await a.readMessages('t:shared', meta, 0, 80))).toEqual(texts(append('second', 80)));

      await b.commit('t:shared', 1, { keep: 40, append: append('fork', 30) });
      meta = (await a.getMeta('t:shared'))!;
      const read = texts(await a.readMessages('t:shared', meta, 0, meta.count));
      expect(read).toEqual([...texts(append('second', 40)), ...texts(append('fork', 30))]);
      expect(texts(await a.readMessagesAt('t:shared', meta, [39, 40, 69]))).toEqual(['second39', 'fork0', 'fork29']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('lets exactly one of two handles commit at a version: the other is told of the conflict, and nothing is lost', async () => {
    const [a, b] = [await open(), await open()];
    try {
      await a.commit('t:race', 0, { keep: 0, append: append('start', 1) });
      // Each round both handles commit at the version both read; the loser reloads and tries again.
      const landed: string[] = [];
      const writer = async (store: typeof a, name: string) => {
        for (let turn = 0; turn < 10;) {
          const meta = (await store.getMeta('t:race'))!;
          const result = await store.commit('t:race', meta.version, { keep: meta.count, append: [message(`${name}${turn}`)], base: meta });
          if (result.ok) landed.push(`${name}${turn++}`);
        }
      };
      await Promise.all([writer(a, 'a'), writer(b, 'b')]);
      const meta = (await b.getMeta('t:race'))!;
      expect(meta.version).toBe(21);
      expect(texts(await b.readMessages('t:race', meta, 0, meta.count))).toEqual(['start0', ...landed]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('freezes what it caches: a caller changing a read message fails instead of corrupting later reads', async () => {
    const store = await open();
    try {
      await store.commit('t:frozen', 0, { keep: 0, append: append('m', 40) });
      const [read] = await store.readMessages('t:frozen', (await store.getMeta('t:frozen'))!, 3, 4);
      expect(() => {
        (read!.message as { content: string }).content = 'changed';
      }).toThrow(TypeError);
    } finally {
      await store.close();
    }
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('store factory', () => {
  it('names the fix for an unsupported URL', async () => {
    await expect(createStore({ url: 'mysql://x', timeoutMs: 100 })).rejects.toThrow(
      /MNEMO_STORE=mysql:\/\/x is not supported: use sqlite:/,
    );
  });

  it('names the setting at fault: a bad cold tier says MNEMO_COLD_STORE', async () => {
    await expect(createStores({ url: 'memory://', timeoutMs: 100, cold: { url: 'mysql://x', hotTtlMs: () => 60_000 } })).rejects.toThrow(
      /^MNEMO_COLD_STORE=mysql:\/\/x is not supported/,
    );
  });

  it('fails at start, with the URL and the cause, when the SQLite file cannot be opened', async () => {
    await expect(createStore({ url: `sqlite://${sqliteDir}`, timeoutMs: 1_000 })).rejects.toThrow(
      /^MNEMO_STORE=sqlite:\/\/.* cannot be opened: unable to open database file/,
    );
  });

  it('fails at start, with the URL and the cause, when Redis is unreachable', async () => {
    await expect(createStore({ url: 'redis://user:secret@127.0.0.1:1', timeoutMs: 1_000 })).rejects.toThrow(
      /MNEMO_STORE=redis:\/\/user:\*\*\*@127\.0\.0\.1:1 is unreachable/,
    );
  });
});

describe('when the store goes away', () => {
  it('answers 503 store_unavailable in OpenAI shape, and /readyz turns 503', async () => {
    const { startHarness, user } = await import('../support/harness.js');
    const server = await startRedis();
    const harness = await startHarness({ store: { url: server.url, timeout_ms: 500 } });
    try {
      expect((await harness.chat('gone-1', { messages: [user('hello')] })).status).toBe(200);
      await server.stop();
      const response = await harness.chat('gone-1', { messages: [user('still there?')] });
      expect(response.status).toBe(503);
      expect((await response.json()).error).toMatchObject({ type: 'server_error', code: 'store_unavailable' });
      expect((await fetch(`${harness.mnemo.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${harness.mnemo.url}/healthz`)).status).toBe(200);
    } finally {
      await harness.close();
    }
  });

  it('answers 503 store_unavailable when an SQLite file starts failing (no deadline is armed there, errors still map)', async () => {
    const { startHarness, user } = await import('../support/harness.js');
    const dir = mkdtempSync(join(tmpdir(), 'mnemo-sqlite-broken-'));
    const file = join(dir, 'broken.db');
    const harness = await startHarness({ store: { url: `sqlite://${file}` } });
    try {
      expect((await harness.chat('broken-1', { messages: [user('hello')] })).status).toBe(200);
      const { default: Database } = await import('better-sqlite3');
      const other = new Database(file);
      other.exec('DROP TABLE keyv');
      other.close();
      const response = await harness.chat('broken-1', { messages: [user('still there?')] });
      expect(response.status).toBe(503);
      expect((await response.json()).error).toMatchObject({ type: 'server_error', code: 'store_unavailable' });
    } finally {
      await harness.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
