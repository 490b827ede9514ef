import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { FakeProvider } from '../support/fake-provider.js';
import { ADMIN_TOKEN, startHarness, user, type Harness } from '../support/harness.js';
import { startRedis, type RedisProcess } from '../support/redis-server.js';

const run = promisify(execFile);

describe('tenant isolation', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());

  const chatAs = (key: string, content: string) => harness.chat('1', { messages: [user(content)] }, { authorization: `Bearer ${key}` });

  it('gives two customers with the same session id two separate sessions, through chat', async () => {
    await chatAs('sk-customer-a', 'My order #1111 is late');
    const other = await chatAs('sk-customer-b', 'What is my order number?');
    expect(other.headers.get('x-mnemo-memory')).toBe('miss');
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('1111');
    // Azure-style api-key headers are tenants too.
    await harness.chat('1', { messages: [user('hi')] }, { authorization: '', 'api-key': 'azure-key-c' });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('1111');
  });

  it('shows a different key an empty session through preview and the admin API', async () => {
    const preview = (tenantKey: string) =>
      harness.admin('/mnemo/sessions/1/preview', {
        method: 'POST',
        headers: { 'x-mnemo-tenant-key': tenantKey, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [user('and now?')] }),
      });
    const mine = await (await preview('sk-customer-a')).json();
    expect(mine.memory).toBe('hit');
    expect(JSON.stringify(mine.messages)).toContain('1111');
    const theirs = await (await preview('sk-customer-z')).json();
    expect(theirs.memory).toBe('miss');
    expect(theirs.messages).toEqual([user('and now?')]);
    expect((await harness.admin('/mnemo/sessions/1', { headers: { 'x-mnemo-tenant-key': 'sk-customer-z' } })).status).toBe(404);
    const listed = await (await harness.admin('/mnemo/sessions', { headers: { 'x-mnemo-tenant-key': 'sk-customer-z' } })).json();
    expect(listed.data).toEqual([]);
  });

  it('requires admin calls to name their tenant', async () => {
    const response = await fetch(`${harness.mnemo.url}/mnemo/sessions/1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(response.status).toBe(400);
    expect((await response.json()).error.code).toBe('missing_tenant');
  });

  it('never stores or logs a raw API key', async () => {
    const lines: string[] = [];
    const { pino } = await import('pino');
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const { parseConfig } = await import('../../src/config/load.js');
    const { startMnemo } = await import('../../src/main.js');
    const mnemo = await startMnemo({
      config: parseConfig({
        server: { host: '127.0.0.1', port: 0 },
        upstream: { url: harness.provider.url },
        store: { url: 'memory://', outbox: ':memory:' },
      }),
      logger,
    });
    try {
      await fetch(`${mnemo.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': 'secret-session', authorization: 'Bearer sk-live-SECRET' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [user('my secret message')] }),
      });
      const text = lines.join('');
      expect(text).toContain('"msg":"request"');
      expect(text).not.toContain('sk-live-SECRET');
      expect(text).not.toContain('secret-session');
      expect(text).not.toContain('my secret message');
    } finally {
      await mnemo.close(1_000);
    }
  });
});

describe('the admin API is closed by default', () => {
  it('answers 404 to everything when no admin token is configured', async () => {
    const provider = await new FakeProvider().start();
    const harness = await startHarness({ server: { admin_token: null } }, provider);
    try {
      const response = await fetch(`${harness.mnemo.url}/mnemo/sessions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(response.status).toBe(404);
      expect((await response.json()).error.code).toBe('unknown_route');
    } finally {
      await harness.close();
      await provider.stop();
    }
  });

  it('answers 413 to an admin body over the limit', async () => {
    const harness = await startHarness({ server: { body_limit: 1024 } });
    try {
      await harness.chat('big', { messages: [user('hi')] });
      const response = await harness.admin('/mnemo/sessions/big/facts', { method: 'POST', json: { text: 'x'.repeat(4096) } });
      expect(response.status).toBe(413);
      expect((await response.json()).error.code).toBe('payload_too_large');
    } finally {
      await harness.close();
    }
  });
});

/** Fills a session with every kind of state: turns past a fold, recall index, facts, scratch. */
async function fillSession(harness: Harness, id: string): Promise<void> {
  for (let turn = 0; turn < 12; turn++)
    await (await harness.chat(id, { messages: [user(`Turn ${turn}: parcel ${1000 + turn} left the depot in Lyon.`)] })).text();
  await harness.mnemo.folds.drain();
  await harness.admin(`/mnemo/sessions/${id}/facts`, { method: 'POST', json: { text: 'Gold member.' } });
  await harness.admin(`/mnemo/sessions/${id}/scratch/step`, { method: 'PUT', json: { value: 2, inject: true } });
  const session = await (await harness.admin(`/mnemo/sessions/${id}`)).json();
  expect(session.summary).not.toBeNull();
}

const memory = { summary: { trigger_tokens: 200 }, window: { min_tokens: 80, step_tokens: 80, cache_prefix_tokens: 0 } };

describe('deleting a session leaves no key behind', () => {
  let redis: RedisProcess;
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-erase-'));
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('in Redis (SCAN of the whole keyspace)', async () => {
    const harness = await startHarness({ store: { url: redis.url }, memory });
    try {
      await fillSession(harness, 'erase-1');
      await fillSession(harness, 'keep-1');
      const keys = async () => (await run('redis-cli', ['-p', String(redis.port), '--scan'])).stdout.split('\n').filter(Boolean);
      expect((await keys()).filter((key) => key.includes('erase-1')).length).toBeGreaterThan(5);
      expect((await harness.admin('/mnemo/sessions/erase-1', { method: 'DELETE' })).status).toBe(200);
      expect((await keys()).filter((key) => key.includes('erase-1'))).toEqual([]);
      expect((await keys()).filter((key) => key.includes('keep-1')).length).toBeGreaterThan(5);
    } finally {
      await harness.close();
    }
  });

  it('in SQLite (every row of the table)', async () => {
    const file = join(dir, 'erase.db');
    const harness = await startHarness({ store: { url: `sqlite://${file}` }, memory });
    const rows = () => {
      const database = new Database(file, { readonly: true });
      try {
        return (database.prepare('SELECT key FROM keyv').all() as Array<{ key: string }>).map((row) => row.key);
      } finally {
        database.close();
      }
    };
    try {
      await fillSession(harness, 'erase-2');
      expect(rows().filter((key) => key.includes('erase-2')).length).toBeGreaterThan(5);
      expect((await harness.admin('/mnemo/sessions/erase-2', { method: 'DELETE' })).status).toBe(200);
      expect(rows().filter((key) => key.includes('erase-2'))).toEqual([]);
    } finally {
      await harness.close();
    }
  });
});
