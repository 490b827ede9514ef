import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildStore, createStore, createStores } from '../../src/store/factory.js';
import { startPostgres, type PostgresProcess } from '../support/postgres-server.js';
import { startRedis, type RedisProcess } from '../support/redis-server.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { movableContract } from './movable-contract.js';
import { storeContract } from './store-contract.js';

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

// One cluster for both suites (it takes seconds to form); the second suite's teardown stops it.
let cluster: Promise<RedisCluster> | undefined;
const sharedCluster = () => (cluster ??= startRedisCluster());
storeContract('redis cluster', async () => createStore({ url: (await sharedCluster()).url, timeoutMs: 5_000 }));
movableContract(
  'redis cluster',
  async () => {
    const store = buildStore((await sharedCluster()).url);
    await store.ping();
    return store;
  },
  async () => (await sharedCluster()).stop(),
);

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
