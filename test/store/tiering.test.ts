import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureBlockCache, DEFAULT_BLOCK_CACHE_BYTES } from '../../src/memory/lexical-index.js';
import { createStores } from '../../src/store/factory.js';
import type { MoveEvent, TieredStore } from '../../src/store/tiered-store.js';
import type { SessionStore } from '../../src/store/types.js';
import { startHarness, user, type Harness } from '../support/harness.js';
import { startPostgres, type PostgresProcess } from '../support/postgres-server.js';
import { startRedis, type RedisProcess } from '../support/redis-server.js';
import { message, storeContract } from './store-contract.js';

let redis: RedisProcess;
let postgres: PostgresProcess;

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
});
afterAll(async () => {
  await Promise.all([redis.stop(), postgres.stop()]);
});

/** Keys of a session in Redis (hot) and rows in PostgreSQL (cold), found by its id. */
function redisKeys(sessionId: string): string[] {
  const output = execFileSync('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', `*${sessionId}*`], { encoding: 'utf8' });
  return output.split('\n').filter(Boolean);
}
async function postgresRows(sessionId: string): Promise<number> {
  const client = new pg.Client(postgres.url);
  await client.connect();
  try {
    const result = await client.query('SELECT count(*)::int AS n FROM keyv WHERE key LIKE $1', [`%${sessionId}%`]);
    return result.rows[0].n as number;
  } finally {
    await client.end();
  }
}

storeContract(
  'redis hot + postgres cold',
  async () => (await createStores({ url: redis.url, timeoutMs: 5_000, cold: { url: postgres.url, hotTtlMs: () => 60_000 } })).store,
);

describe('hot/cold tiering through mnemo (Redis hot, PostgreSQL cold)', () => {
  let harness: Harness;
  let clock = Date.UTC(2026, 10, 24);

  beforeAll(async () => {
    harness = await startHarness(
      {
        store: { url: redis.url, cold_url: postgres.url, hot_ttl_ms: 60_000, tier_interval_ms: 3_600_000 },
        session: { retention_ms: 3_600_000 },
      },
      undefined,
      { now: () => clock },
    );
  });
  afterAll(async () => harness.close());

  // The clock here jumps hours in a step; in real time a turn's background job (20 ms after it)
  // is long done before a session can be idle past hot_ttl, so each turn's job is drained first.
  const chat = async (id: string, content: string) => {
    const response = await harness.chat(id, { messages: [user(content)] });
    await response.arrayBuffer();
    await harness.mnemo.folds.drain();
    return response;
  };
  const metric = async (name: string) =>
    (await (await fetch(`${harness.mnemo.url}/metrics`)).text()).split('\n').find((line) => line.startsWith(name));

  it('moves a session idle past hot_ttl to PostgreSQL and brings it back on its next request', async () => {
    expect((await chat('order-7890', 'My order #7890 is stuck, can you help?')).status).toBe(200);
    clock += 30_000;
    expect(await harness.mnemo.mover!.runOnce()).toBe(0); // not idle long enough yet
    clock += 31_000;
    expect(await harness.mnemo.mover!.runOnce()).toBe(1);
    expect(redisKeys('order-7890')).toEqual([]);
    expect(await postgresRows('order-7890')).toBeGreaterThan(0);

    // Listed while cold, by the admin API.
    const listed = await (await harness.admin('/mnemo/sessions')).json();
    expect(listed.data.map((session: { id: string }) => session.id)).toContain('order-7890');

    // The seed scenario's second turn, sent alone: the first turn comes back from PostgreSQL.
    const response = await chat('order-7890', "What's the estimated delivery date?");
    expect(response.status).toBe(200);
    const sent = JSON.stringify(harness.provider.lastChat.body.messages);
    expect(sent).toContain('#7890');
    expect(sent).toContain('estimated delivery date');
    expect(redisKeys('order-7890').length).toBeGreaterThan(0);
    expect(await postgresRows('order-7890')).toBe(0);

    expect(await metric('mnemo_tier_moves_total{direction="to_cold",outcome="moved"}')).toMatch(/ 1$/);
    expect(await metric('mnemo_tier_moves_total{direction="to_hot",outcome="moved"}')).toMatch(/ 1$/);
  });

  it("moves a session's recall index with it: an early detail is recalled from blocks that went to PostgreSQL and back", async () => {
    await chat('long', 'The spare key is hidden under the blue flowerpot by the kitchen door.');
    const topics = ['weather in spring', 'favourite books', 'music for running', 'coffee brewing', 'garden tools', 'board games'];
    for (let turn = 0; turn < 48; turn++)
      await chat('long', `Let us talk about ${topics[turn % topics.length]} for a while, turn ${turn}.`);
    clock += 61_000;
    await harness.mnemo.mover!.runOnce();
    expect(redisKeys('long')).toEqual([]);
    // Nothing kept in this process: the blocks are read from the store the session came back to.
    configureBlockCache(DEFAULT_BLOCK_CACHE_BYTES);
    await chat('long', 'Where is the spare key hidden?');
    const sent: Array<{ role: string; content: string }> = harness.provider.lastChat.body.messages;
    expect(sent.filter((entry) => entry.role === 'user' && entry.content.includes('blue flowerpot'))).toEqual([]);
    expect(sent.find((entry) => entry.content.startsWith('[mnemo recall]'))?.content).toContain('blue flowerpot');
  });

  it('keeps a session that a turn touched during the pass hot', async () => {
    await chat('busy', 'first');
    clock += 61_000;
    await chat('busy', 'second'); // active again before the pass runs
    await harness.mnemo.mover!.runOnce();
    expect(redisKeys('busy').length).toBeGreaterThan(0);
    expect(await postgresRows('busy')).toBe(0);
  });

  it('erases cold sessions past retention, from PostgreSQL too', async () => {
    await chat('forgotten', 'an old conversation');
    clock += 61_000;
    await harness.mnemo.mover!.runOnce();
    expect(await postgresRows('forgotten')).toBeGreaterThan(0);
    clock += 3_600_000;
    expect(await harness.mnemo.sweeper.sweep()).toBeGreaterThanOrEqual(1);
    expect(await postgresRows('forgotten')).toBe(0);
    expect(redisKeys('forgotten')).toEqual([]);
  });
});

describe('moves racing with turns', () => {
  let tiers: TieredStore;
  let store: SessionStore;
  const moves: MoveEvent[] = [];

  beforeAll(async () => {
    const created = await createStores({
      url: redis.url,
      timeoutMs: 5_000,
      cold: { url: postgres.url, hotTtlMs: () => 60_000, onMove: (event) => moves.push(event) },
    });
    store = created.store;
    tiers = created.tiers!;
  });
  afterAll(async () => store.close());

  it('loses no turn: 8 sessions take 25 turns each while a mover keeps demoting whatever idles 30 ms', async () => {
    const sessions = Array.from({ length: 8 }, (_, index) => `race:${index}-${Math.random().toString(36).slice(2)}`);
    for (const id of sessions) await store.commit(id, 0, { keep: 0, append: [message(`${id}#seed`)] });
    let writing = true;

    // With a 30 ms TTL (the schema's minimum is 1 s) a reader can miss a session in both tiers while
    // it moves; its commit at version 0 must then conflict rather than start a session that hides
    // the real one. The transcripts below show whether any turn went astray.
    async function turn(id: string, text: string) {
      for (;;) {
        const meta = await store.getMeta(id);
        const result = await store.commit(id, meta?.version ?? 0, { keep: meta?.count ?? 0, append: [message(text)] });
        if (result.ok) return;
      }
    }
    const writers = sessions.map(async (id) => {
      for (let index = 0; index < 25; index++) {
        await turn(id, `${id}#${index}`);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 60));
      }
    });
    const mover = (async () => {
      while (writing) {
        for (const id of sessions) await tiers.demote(id, Date.now() - 30);
      }
    })();
    await Promise.all(writers);
    writing = false;
    await mover;

    for (const id of sessions) {
      const meta = (await store.getMeta(id))!;
      const texts = (await store.readMessages(id, meta, 0, meta.count)).map((stored) => stored.message.content);
      expect(texts).toEqual([`${id}#seed`, ...Array.from({ length: 25 }, (_, index) => `${id}#${index}`)]);
    }
    // The race really happened: sessions went cold and came back many times.
    expect(moves.filter((move) => move.direction === 'to_cold' && move.outcome === 'moved').length).toBeGreaterThan(20);
    expect(moves.filter((move) => move.direction === 'to_hot' && move.outcome === 'moved').length).toBeGreaterThan(20);
  });
});

describe('creating a session', () => {
  it('refuses to create in the hot tier a session the cold tier holds', async () => {
    const created = await createStores({ url: redis.url, timeoutMs: 5_000, cold: { url: postgres.url, hotTtlMs: () => 60_000 } });
    const id = `shadow:${Math.random().toString(36).slice(2)}`;
    expect(created.store.networked).toBe(true); // a tier across a network gets store.timeout_ms
    try {
      await created.store.commit(id, 0, { keep: 0, append: [message('the real first turn')] });
      expect(await created.tiers!.demote(id, Date.now() + 1)).toBe(true);
      expect(await created.store.commit(id, 0, { keep: 0, append: [message('a shadow')] })).toEqual({ ok: false, reason: 'conflict' });
      const meta = (await created.store.getMeta(id))!;
      expect((await created.store.readMessages(id, meta, 0, meta.count)).map((stored) => stored.message.content)).toEqual([
        'the real first turn',
      ]);
    } finally {
      await created.store.close();
    }
  });
});

describe('when the cold tier goes away', () => {
  it('stays ready, and degrades (pass_through) only turns that need PostgreSQL', async () => {
    const ownPostgres = await startPostgres();
    let clock = Date.UTC(2026, 10, 24);
    const outage = await startHarness(
      {
        store: { url: redis.url, cold_url: ownPostgres.url, hot_ttl_ms: 60_000, on_store_error: 'pass_through', timeout_ms: 1_000 },
      },
      undefined,
      { now: () => clock },
    );
    const chat = (id: string, content: string) => outage.chat(id, { messages: [user(content)] });
    try {
      await chat('cold-outage', 'My order #7890 is stuck');
      await chat('warm-one', 'hello');
      clock += 61_000;
      await chat('warm-one', 'still here'); // keeps it hot
      expect(await outage.mnemo.mover!.runOnce()).toBe(1);
      await ownPostgres.stop();

      expect((await fetch(`${outage.mnemo.url}/readyz`)).status).toBe(200);
      const warm = await chat('warm-one', 'and again');
      expect(warm.status).toBe(200);
      expect(warm.headers.get('x-mnemo-memory')).not.toBe('degraded');
      const cold = await chat('cold-outage', "What's the estimated delivery date?");
      expect(cold.status).toBe(200);
      expect(cold.headers.get('x-mnemo-memory')).toBe('degraded');
    } finally {
      await outage.close();
      await ownPostgres.stop();
    }
  });
});
