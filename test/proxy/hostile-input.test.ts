import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ADMIN_TOKEN, assistant, startHarness, user, type Harness } from '../support/harness.js';

/**
 * Runs `work` while /healthz is asked every 50 ms, and returns the slowest answer:
 * work that blocks the event loop shows up as a slow health check, for every tenant.
 */
async function slowestHealthCheck(harness: Harness, work: () => Promise<unknown>): Promise<number> {
  let done = false;
  let slowest = 0;
  let checks = 0;
  const probe = (async () => {
    while (!done) {
      const started = performance.now();
      await fetch(`${harness.mnemo.url}/healthz`);
      slowest = Math.max(slowest, performance.now() - started);
      checks++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  await work();
  done = true;
  await probe;
  expect(checks).toBeGreaterThan(0);
  return slowest;
}

describe('work per request is bounded and linear', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      server: { max_messages: 20_000 },
      memory: {
        facts: {
          extractors: [
            { name: 'order_id', pattern: 'order\\s*(?:number|no\\.?|id)?\\s*[#:]?\\s*(\\d{3,})' },
            { name: 'email', pattern: '([\\w.+-]+@[\\w-]+\\.[\\w.]+)', roles: ['user'] },
          ],
        },
      } as never,
    });
  });
  afterAll(() => harness.close());

  it.each([
    ['200,000 × "a" in one message, with an invalid key', 'a'.repeat(200_000)],
    ['a run that made the order_id pattern cubic', `order${' '.repeat(4_000)}!`],
    ['60 KB of "a" through the email pattern', 'a'.repeat(60_000)],
    ['100,000 × "!"', '!'.repeat(100_000)],
  ])('%s does not stall other tenants', async (_name, content) => {
    const slowest = await slowestHealthCheck(harness, async () => {
      const response = await harness.chat('stall', { messages: [user(content)] }, { authorization: 'Bearer not-a-real-key' });
      expect(response.status).toBe(200);
    });
    expect(slowest).toBeLessThan(1_000);
  });

  it('takes a resent 20,000-message history without stalling (reconcile is linear: see its spec)', async () => {
    // Repeated turns make every overlap length a near match: trying each one was quadratic.
    const repeated = (pairs: number) => Array.from({ length: pairs }, () => [user('same question'), assistant('same answer')]).flat();
    expect((await harness.chat('long', { messages: [user('start'), ...repeated(9_999)] })).status).toBe(200);
    const slowest = await slowestHealthCheck(harness, async () => {
      const response = await harness.chat('long', { messages: [...repeated(9_998), user('different'), assistant('x'), user('again')] });
      expect(response.status).toBe(200);
    });
    expect(slowest).toBeLessThan(1_000);
  });

  it('answers more messages than server.max_messages with 400', async () => {
    const response = await harness.chat('many', { messages: Array.from({ length: 20_001 }, () => user('x')) });
    expect(response.status).toBe(400);
    expect((await response.json()).error).toMatchObject({ code: 'too_many_messages', param: 'messages', type: 'invalid_request_error' });
  });

  it('answers JSON nested deeper than server.max_json_depth with 400, on chat and admin routes', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const chat = await fetch(`${harness.mnemo.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', 'x-session-id': 'deep' },
      body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":${deep}}`,
    });
    expect(chat.status).toBe(400);
    expect((await chat.json()).error.code).toBe('json_too_deep');
    const scratch = await harness.admin('/mnemo/sessions/deep/scratch/note', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: `{"value":${deep}}`,
    });
    expect(scratch.status).toBe(400);
    expect((await scratch.json()).error.code).toBe('json_too_deep');
  });
});

describe('patterns run on a linear-time engine', () => {
  it('rejects, at config load, a pattern only a backtracking engine can run', () => {
    const load = (pattern: string) => () => parseConfig({ memory: { facts: { extractors: [{ name: 'x', pattern }] } } });
    expect(load('(a)\\1')).toThrow(/backreferences and lookahead/);
    expect(load('order(?= id)')).toThrow(/backreferences and lookahead/);
    expect(load('order\\s*(\\d+)')).not.toThrow();
  });
});

describe('credentials and tenants', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());
  afterEach(() => harness.provider.reset());

  const pin = (headers: Record<string, string>) =>
    harness.chat('shared-id', { messages: [user('My PIN is 4242')] }, { authorization: '', ...headers });
  const ask = (headers: Record<string, string>) =>
    harness.chat('shared-id', { messages: [user('What is my PIN?')] }, { authorization: '', ...headers });

  it.each([
    ['x-api-key', { 'x-api-key': 'anthropic-key-a' }, { 'x-api-key': 'anthropic-key-b' }],
    ['x-goog-api-key', { 'x-goog-api-key': 'google-key-a' }, { 'x-goog-api-key': 'google-key-b' }],
    ['HTTP Basic', { authorization: `Basic ${btoa('alice:secret')}` }, { authorization: `Basic ${btoa('bob:secret')}` }],
  ])('names a tenant by %s: caller B never sees caller A’s session', async (_form, a, b) => {
    expect((await pin(a)).status).toBe(200);
    const response = await ask(b);
    expect(response.headers.get('x-mnemo-memory')).toBe('miss');
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('4242');
    await ask(a);
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).toContain('4242');
  });

  it('refuses a session request without a recognised credential with 401, and calls no provider', async () => {
    for (const headers of [{}, { authorization: 'Bearer ' }, { authorization: 'Bearer   ' }] as Array<Record<string, string>>) {
      const response = await ask(headers);
      expect(response.status).toBe(401);
      expect((await response.json()).error).toMatchObject({ type: 'authentication_error', code: 'missing_credentials' });
    }
    expect(harness.provider.calls).toHaveLength(0);
  });

  it('serves keyless callers in single-tenant mode (tenancy.mode: none)', async () => {
    const single = await startHarness({ tenancy: { mode: 'none' } });
    try {
      expect((await single.chat('s', { messages: [user('My PIN is 4242')] }, { authorization: '' })).status).toBe(200);
      await single.chat('s', { messages: [user('What is my PIN?')] }, { authorization: '' });
      expect(JSON.stringify(single.provider.lastChat.body.messages)).toContain('4242');
    } finally {
      await single.close();
    }
  });
});

describe('the admin token never travels upstream', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      memory: {
        recall: { method: 'embeddings' },
        summary: { trigger_tokens: 50 },
        window: { min_tokens: 20, step_tokens: 20, cache_prefix_tokens: 0 },
      },
    } as never);
  });
  afterAll(() => harness.close());

  it('preview with embedding recall sends the tenant key, not the admin bearer', async () => {
    for (let turn = 0; turn < 6; turn++)
      await harness.chat('p', { messages: [user(`Order ${turn} shipped to Lyon, please note ${turn}`)] });
    await new Promise((resolve) => setTimeout(resolve, 300)); // let a fold embed the archive
    harness.provider.reset();
    const response = await harness.admin('/mnemo/sessions/p/preview', {
      method: 'POST',
      json: { model: 'gpt-4o-mini', messages: [user('where did order 3 ship?')] },
    });
    expect(response.status).toBe(200);
    const upstream = harness.provider.calls;
    expect(upstream.length).toBeGreaterThan(0);
    for (const call of upstream) {
      expect(JSON.stringify(call.headers)).not.toContain(ADMIN_TOKEN);
      expect(call.headers.authorization).toBe('Bearer sk-test');
    }
  });
});
