import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisProcess } from '../support/redis-server.js';
import { completion, json } from '../support/fake-provider.js';
import { startHarness, system, user, type Harness } from '../support/harness.js';

// Profiles, facts, scratchpad and lifecycle run against every backend: each suite gets its own
// SQLite file or Redis database.
const BACKENDS = ['memory', 'sqlite', 'redis'] as const;
type Backend = (typeof BACKENDS)[number];
let redis: RedisProcess;
let nextDatabase = 0;
const dir = mkdtempSync(join(tmpdir(), 'mnemo-state-'));
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});
function storeFor(backend: Backend): { url: string } {
  nextDatabase++;
  if (backend === 'sqlite') return { url: `sqlite://${join(dir, `state-${nextDatabase}.db`)}` };
  if (backend === 'redis') return { url: `${redis.url}/${nextDatabase}` };
  return { url: 'memory://' };
}

describe.each(BACKENDS)('user profiles (%s store)', (backend) => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      store: storeFor(backend),
      memory: { facts: { extractors: [{ name: 'email', pattern: '([\\w.+-]+@[\\w-]+\\.[\\w.]+)', scope: 'user', roles: ['user'] }] } },
    });
  });
  afterAll(() => harness.close());

  it('stores, patches, reads and deletes a profile', async () => {
    const put = await harness.admin('/mnemo/users/ada/profile', {
      method: 'PUT',
      json: { text: 'Prefers short answers.', attributes: { language: 'en', tier: 'gold' } },
    });
    expect(put.status).toBe(200);
    const patched = await (
      await harness.admin('/mnemo/users/ada/profile', { method: 'PATCH', json: { attributes: { tier: null, city: 'Lyon' } } })
    ).json();
    expect(patched).toMatchObject({ user: 'ada', text: 'Prefers short answers.', attributes: { language: 'en', city: 'Lyon' } });
    expect(patched.attributes.tier).toBeUndefined();
    expect((await (await harness.admin('/mnemo/users/ada/profile')).json()).attributes.city).toBe('Lyon');
  });

  it('injects the profile into every session of the user, and collects user-scope facts into it', async () => {
    await harness.chat('profile-1', { messages: [user('Mail me at ada@example.com please')] }, { 'x-user-id': 'ada' });
    expect(harness.provider.lastChat.body.messages[0].content).toContain('About the user:\nPrefers short answers.');
    // A different session of the same user (user named in the body this time) sees the fact learned in the first.
    await harness.chat('profile-2', { user: 'ada', messages: [user('What is my email?')] });
    const memory = harness.provider.lastChat.body.messages[0].content;
    expect(memory).toContain('email: ada@example.com');
    expect(memory).toContain('city: Lyon');
    const profile = await (await harness.admin('/mnemo/users/ada/profile')).json();
    expect(profile.facts).toEqual([expect.objectContaining({ name: 'email', value: 'ada@example.com' })]);
  });

  it('validates input and answers 404 for unknown users', async () => {
    expect((await harness.admin('/mnemo/users/nobody/profile')).status).toBe(404);
    const bad = await harness.admin('/mnemo/users/ada/profile', { method: 'PUT', json: { attributes: { tier: 3 } } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.param).toBe('attributes.tier');
    const badJson = await harness.admin('/mnemo/users/ada/profile', {
      method: 'PUT',
      body: '{"text":',
      headers: { 'content-type': 'application/json' },
    });
    expect(badJson.status).toBe(400);
    expect((await harness.admin('/mnemo/users/bad%20id/profile')).status).toBe(400);
  });

  it('erases a user: profile and, on request, all their sessions', async () => {
    const deleted = await (await harness.admin('/mnemo/users/ada?sessions=true', { method: 'DELETE' })).json();
    expect(deleted).toMatchObject({ profile_deleted: true, sessions_deleted: 2 });
    expect((await harness.admin('/mnemo/users/ada/profile')).status).toBe(404);
    expect((await harness.admin('/mnemo/sessions/profile-1')).status).toBe(404);
    expect((await harness.admin('/mnemo/users/ada', { method: 'DELETE' })).status).toBe(404);
  });
});

describe.each(BACKENDS)('context facts, captured tool results and the scratchpad (%s store)', (backend) => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ store: storeFor(backend), memory: { rules: [{ kind: 'stub_tool_results', older_than_turns: 2 }] } });
    await harness.chat('ctx-1', { messages: [user('hello')] });
  });
  afterAll(() => harness.close());

  it('adds, lists, deduplicates and deletes facts', async () => {
    const added = await harness.admin('/mnemo/sessions/ctx-1/facts', {
      method: 'POST',
      json: [
        { text: 'Return policy: 30 days, unused items only.', source: 'kb:returns', metadata: { doc: 12 } },
        { text: 'Shipping to Canada takes 7-10 business days.', source: 'kb:shipping', ttl_seconds: 3600 },
      ],
    });
    expect(added.status).toBe(201);
    const [returns] = (await added.json()).data;
    expect(returns).toMatchObject({ object: 'mnemo.fact', source: 'kb:returns', metadata: { doc: 12 }, expires_at: null });
    await harness.admin('/mnemo/sessions/ctx-1/facts', {
      method: 'POST',
      json: { text: 'Return policy: 30 days,   unused items only.', source: 'kb:returns' },
    });
    const listed = (await (await harness.admin('/mnemo/sessions/ctx-1/facts')).json()).data;
    expect(listed).toHaveLength(2);
    const shipping = listed.find((fact: { source: string }) => fact.source === 'kb:shipping');
    expect(shipping.expires_at).toBeGreaterThan(Date.now());
    expect((await harness.admin(`/mnemo/sessions/ctx-1/facts/${shipping.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await harness.admin(`/mnemo/sessions/ctx-1/facts/${shipping.id}`, { method: 'DELETE' })).status).toBe(404);
    expect((await harness.admin('/mnemo/sessions/ctx-1/facts', { method: 'POST', json: { text: '' } })).status).toBe(400);
    expect((await harness.admin('/mnemo/sessions/nope/facts')).status).toBe(404);
  });

  it('sends facts relevant to the new message, and not irrelevant ones', async () => {
    await harness.chat('ctx-1', { messages: [user('Can I return the jacket I bought?')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).toContain('Return policy: 30 days');
    await harness.chat('ctx-1', { messages: [user('Tell me a joke')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('Return policy');
  });

  it('keeps a tool result from turn 3 and sends it at turn 30 when relevant, not when irrelevant', async () => {
    const call = { id: 'call_77', type: 'function', function: { name: 'lookup_order', arguments: '{"order_id":"7890"}' } };
    await harness.chat('tools-1', { messages: [user('hi')] });
    await harness.chat('tools-1', { messages: [user('ok')] });
    harness.provider.next(json(completion({ content: null, tool_calls: [call] })));
    await harness.chat('tools-1', { messages: [user('Where is order 7890?')] });
    await harness.chat('tools-1', {
      messages: [{ role: 'tool', tool_call_id: 'call_77', content: '{"status":"held at customs","carrier":"DHL","eta":"2026-12-03"}' }],
    });
    for (let turn = 4; turn < 29; turn++) await harness.chat('tools-1', { messages: [user(`small talk number ${turn}`)] });
    const window = JSON.stringify(harness.provider.lastChat.body.messages);
    expect(window).toContain('[result of lookup_order({\\"order_id\\":\\"7890\\"}) omitted by mnemo]');

    await harness.chat('tools-1', { messages: [user('Which carrier has my order 7890 and when does it arrive?')] });
    const relevant = harness.provider.lastChat.body.messages.find((message: { content: string }) =>
      message.content?.startsWith?.('[mnemo context]'),
    );
    expect(relevant.content).toContain(
      'lookup_order({"order_id":"7890"}) → {"status":"held at customs","carrier":"DHL","eta":"2026-12-03"}',
    );
    await harness.chat('tools-1', { messages: [user('What is the capital of France?')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('held at customs');
  });

  it('stores scratchpad values and injects only the flagged ones', async () => {
    const put = await harness.admin('/mnemo/sessions/ctx-1/scratch/intent', {
      method: 'PUT',
      json: { value: { intent: 'return', step: 2 }, inject: true },
    });
    expect(put.status).toBe(200);
    await harness.admin('/mnemo/sessions/ctx-1/scratch/internal', { method: 'PUT', json: { value: 'do not show' } });
    expect((await (await harness.admin('/mnemo/sessions/ctx-1/scratch/intent')).json()).value).toEqual({ intent: 'return', step: 2 });
    await harness.chat('ctx-1', { messages: [user('next step?')] });
    const sent = JSON.stringify(harness.provider.lastChat.body.messages);
    expect(sent).toContain('intent: {\\"intent\\":\\"return\\",\\"step\\":2}');
    expect(sent).not.toContain('do not show');
    expect((await harness.admin('/mnemo/sessions/ctx-1/scratch/intent', { method: 'DELETE' })).status).toBe(200);
    expect((await harness.admin('/mnemo/sessions/ctx-1/scratch/intent')).status).toBe(404);
    expect((await harness.admin('/mnemo/sessions/ctx-1/scratch/x', { method: 'PUT', json: { inject: 'yes' } })).status).toBe(400);
  });
});

describe.each(BACKENDS)('session lifecycle (%s store)', (backend) => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      store: storeFor(backend),
      memory: { summary: { trigger_tokens: 200 }, window: { min_tokens: 80, step_tokens: 80, cache_prefix_tokens: 0 } },
    });
  });
  afterAll(() => harness.close());

  it('lists sessions newest first, filtered by user, paginated', async () => {
    for (const [id, who] of [
      ['list-a', 'u1'],
      ['list-b', 'u2'],
      ['list-c', 'u1'],
    ]) {
      await harness.chat(id!, { messages: [user(`hi from ${id}`)] }, { 'x-user-id': who! });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const all = await (await harness.admin('/mnemo/sessions?limit=2')).json();
    expect(all.data.map((session: { id: string }) => session.id)).toEqual(['list-c', 'list-b']);
    expect(all.has_more).toBe(true);
    const next = await (await harness.admin(`/mnemo/sessions?limit=2&after=${all.next_after}`)).json();
    expect(next.data.map((session: { id: string }) => session.id)).toEqual(['list-a']);
    const mine = await (await harness.admin('/mnemo/sessions?user=u1')).json();
    expect(mine.data.map((session: { id: string }) => session.id)).toEqual(['list-c', 'list-a']);
  });

  it('exports, deletes and imports a session back exactly', async () => {
    for (let turn = 0; turn < 12; turn++) {
      await (
        await harness.chat('trip-1', {
          messages: [system('s'), user(`Turn ${turn}: parcel ${1000 + turn} is somewhere between Lyon and Paris.`)],
        })
      ).text();
    }
    await harness.mnemo.folds.drain();
    await harness.admin('/mnemo/sessions/trip-1/facts', { method: 'POST', json: { text: 'Customer is a gold member.' } });
    await harness.admin('/mnemo/sessions/trip-1/scratch/step', { method: 'PUT', json: { value: 3, inject: true } });
    const original = await (await harness.admin('/mnemo/sessions/trip-1/export')).json();
    expect(original.memory.summary.text).toBeTruthy();

    expect((await harness.admin('/mnemo/sessions/trip-1', { method: 'DELETE' })).status).toBe(200);
    expect((await harness.admin('/mnemo/sessions/trip-1/export')).status).toBe(404);
    const imported = await harness.admin('/mnemo/sessions/trip-1/import', { method: 'POST', json: original });
    expect(imported.status).toBe(201);
    expect((await harness.admin('/mnemo/sessions/trip-1/import', { method: 'POST', json: original })).status).toBe(409);
    const again = await (await harness.admin('/mnemo/sessions/trip-1/export')).json();
    expect(again).toEqual(original);

    // And the imported session carries on: summary, facts and recall work as before.
    await harness.chat('trip-1', { messages: [system('s'), user('Where was parcel 1001, and am I a gold member?')] });
    const sent = JSON.stringify(harness.provider.lastChat.body.messages);
    expect(sent).toContain('Summary of earlier turns');
    expect(sent).toContain('Customer is a gold member.');
    expect((await harness.admin('/mnemo/sessions/x/import', { method: 'POST', json: { object: 'nope' } })).status).toBe(400);
  });

  it('expires idle sessions after the TTL, on the next request and by the sweeper', async () => {
    let clock = Date.UTC(2026, 10, 24);
    const idle = await startHarness({ store: storeFor(backend), session: { retention_ms: 60_000 } }, undefined, { now: () => clock });
    const say = (id: string, content: string) => idle.chat(id, { messages: [user(content)] });
    try {
      await say('idle-1', 'remember me');
      await say('idle-2', 'me too');
      clock += 61_000;
      const response = await say('idle-1', 'still there?');
      expect(response.headers.get('x-mnemo-memory')).toBe('miss');
      expect(await idle.mnemo.sweeper.sweep()).toBe(1); // idle-2, never touched again
      const metrics = await (await fetch(`${idle.mnemo.url}/metrics`)).text();
      expect(metrics).toContain('mnemo_sessions_expired_total{trigger="request"} 1');
      expect(metrics).toContain('mnemo_sessions_expired_total{trigger="sweep"} 1');
    } finally {
      await idle.close();
    }
  });

  it('forgets the tombstones of erased sessions after session.tombstone_ttl_ms, retention or not', async () => {
    let clock = Date.UTC(2026, 11, 7);
    const erasing = await startHarness({ store: storeFor(backend), session: { tombstone_ttl_ms: 3_600_000 } }, undefined, {
      now: () => clock,
    });
    const tombstones = async () => {
      const keys: string[] = [];
      for await (const key of erasing.mnemo.store.listRecords('erased:')) keys.push(key);
      return keys.length;
    };
    const createAndErase = async (id: string) => {
      await erasing.chat(id, { messages: [user(`hello from ${id}`)] });
      expect((await erasing.admin(`/mnemo/sessions/${id}`, { method: 'DELETE' })).status).toBe(200);
    };
    try {
      await createAndErase('gone-1');
      await createAndErase('gone-2');
      clock += 30 * 60_000;
      await createAndErase('gone-3');
      await erasing.mnemo.sweeper.sweep();
      expect(await tombstones()).toBe(3);
      clock += 31 * 60_000;
      await erasing.mnemo.sweeper.sweep();
      // The first two erases are over an hour old; the third still guards its session.
      expect(await tombstones()).toBe(1);
      expect(await (await fetch(`${erasing.mnemo.url}/metrics`)).text()).toContain('mnemo_tombstones_swept_total 2');
      // Listing tombstones scans the store: it happens a seventh of their lifetime apart, not every sweep.
      clock += 27 * 60_000; // the third is 58 minutes old: swept at, kept
      await erasing.mnemo.sweeper.sweep();
      clock += 4 * 60_000; // 62 minutes old, but only 4 since the last listing
      await erasing.mnemo.sweeper.sweep();
      expect(await tombstones()).toBe(1);
      clock += 5 * 60_000;
      await erasing.mnemo.sweeper.sweep();
      expect(await tombstones()).toBe(0);
    } finally {
      await erasing.close();
    }
  });
});

describe('privacy: redaction before storage', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      privacy: {
        redact: [
          { name: 'email', pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', replacement: '[email]' },
          { name: 'card', pattern: '\\b\\d(?:[ -]?\\d){12,15}\\b', replacement: '[card]' },
        ],
      },
    });
  });
  afterAll(() => harness.close());

  it('stores redacted text, while a full-history client resending the original still matches', async () => {
    const first = user('My card is 4111 1111 1111 1111 and my mail is ada@example.com');
    const reply = (await (await harness.chat('pii-1', { messages: [first] })).json()).choices[0].message;
    // The provider saw the original on this turn; the store keeps the redacted text.
    const session = await (await harness.admin('/mnemo/sessions/pii-1')).json();
    expect(session.messages[0].content).toBe('My card is [card] and my mail is [email]');
    await harness.chat('pii-1', { messages: [first, reply, user('thanks')] });
    const stored = await (await harness.admin('/mnemo/sessions/pii-1')).json();
    expect(stored.message_count).toBe(4);
    expect(JSON.stringify(stored)).not.toContain('4111');
  });
});
