import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, system, user, type Harness } from '../support/harness.js';

describe('/mnemo/sessions admin routes', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
    await harness.chat('admin-1', { messages: [system('sys'), user('My order #7890 is stuck, can you help?')] });
  });
  afterAll(() => harness.close());

  it('returns the stored session with token counts and timestamps', async () => {
    const response = await harness.admin(`/mnemo/sessions/admin-1`);
    expect(response.status).toBe(200);
    const session = await response.json();
    expect(session).toMatchObject({ object: 'mnemo.session', id: 'admin-1', version: 1, message_count: 2 });
    expect(session.messages[0]).toMatchObject({
      index: 0,
      role: 'user',
      content: 'My order #7890 is stuck, can you help?',
      tokens: expect.any(Number),
      at: expect.any(Number),
    });
    expect(session.messages[0].tokens).toBeGreaterThan(3);
    expect(session.messages[1]).toMatchObject({ index: 1, role: 'assistant' });
  });

  it('previews the exact upstream prompt without calling the provider or changing state', async () => {
    const callsBefore = harness.provider.calls.length;
    const response = await harness.admin(`/mnemo/sessions/admin-1/preview`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [system('sys'), user("What's the estimated delivery date?")] }),
    });
    expect(response.status).toBe(200);
    const preview = await response.json();
    expect(preview.messages).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'My order #7890 is stuck, can you help?' },
      { role: 'assistant', content: 'Reply to: My order #7890 is stuck, can you help?' },
      { role: 'user', content: "What's the estimated delivery date?" },
    ]);
    expect(preview.breakdown.map((entry: { block: string }) => entry.block)).toEqual(['instructions', 'history', 'history', 'new']);
    const perMessage = preview.breakdown.reduce((sum: number, entry: { tokens: number }) => sum + entry.tokens, 0);
    expect(preview.tokens.sent).toBe(perMessage + preview.tokens.reply_priming);
    expect(Object.values(preview.tokens.by_block).reduce((a: number, b: any) => a + b, 0)).toBe(perMessage);
    expect(harness.provider.calls.length).toBe(callsBefore);
    expect((await (await harness.admin(`/mnemo/sessions/admin-1`)).json()).version).toBe(1);
  });

  it('previews with the same validation as chat', async () => {
    const response = await harness.admin(`/mnemo/sessions/admin-1/preview`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"m"}',
    });
    expect(response.status).toBe(400);
    expect((await response.json()).error.param).toBe('messages');
  });

  it('answers 404 with an error object for unknown sessions and routes', async () => {
    const missing = await harness.admin(`/mnemo/sessions/nobody`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe('session_not_found');
    const route = await harness.admin(`/mnemo/nothing-here`);
    expect(route.status).toBe(404);
    expect((await route.json()).error.code).toBe('unknown_route');
  });

  it('deletes a session; the next turn starts fresh', async () => {
    await harness.chat('admin-2', { messages: [user('forget me')] });
    const deleted = await harness.admin(`/mnemo/sessions/admin-2`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect((await harness.admin(`/mnemo/sessions/admin-2`)).status).toBe(404);
    expect((await harness.admin(`/mnemo/sessions/admin-2`, { method: 'DELETE' })).status).toBe(404);
    const next = await harness.chat('admin-2', { messages: [user('hello again')] });
    expect(next.headers.get('x-mnemo-memory')).toBe('miss');
    expect(harness.provider.lastChat.body.messages).toEqual([user('hello again')]);
  });
});

describe('admin routes with a token configured', () => {
  let harness: Harness;
  const token = 'admin-token-0123456789';
  beforeAll(async () => {
    harness = await startHarness({ server: { admin_token: token } });
  });
  afterAll(() => harness.close());

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer wrong-token-0123456789' }],
  ])('answers 401 to %s', async (_name, headers) => {
    const response = await harness.admin(`/mnemo/sessions/x`, { headers });
    expect(response.status).toBe(401);
    expect((await response.json()).error.type).toBe('authentication_error');
  });

  it('serves the right token', async () => {
    const response = await harness.admin(`/mnemo/sessions/x`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(404);
  });
});

describe('strict admin input', () => {
  let harness: Harness;
  let exported: any;
  beforeAll(async () => {
    harness = await startHarness();
    await harness.chat('strict-1', { messages: [user('My order #7890 is stuck')] });
    exported = await (await harness.admin('/mnemo/sessions/strict-1/export')).json();
  });
  afterAll(() => harness.close());

  it.each([
    ['a fact of null', (document: any) => ({ ...document, memory: { ...document.memory, facts: { a: null } } })],
    ['a negative token count', (document: any) => ({ ...document, messages: [{ ...document.messages[0], tokens: -5 }] })],
    [
      'negative usage',
      (document: any) => ({ ...document, memory: { ...document.memory, usage: { ...document.memory.usage, requests: -1 } } }),
    ],
    [
      'a summary past the messages',
      (document: any) => ({
        ...document,
        memory: { ...document.memory, summary: { text: 's', tokens: 1, upTo: 99, foldedTokens: 1, lastId: 'x', at: 0 } },
      }),
    ],
    ['a message without a role', (document: any) => ({ ...document, messages: [{ ...document.messages[0], message: { content: 'x' } }] })],
  ])('refuses an import with %s, and the session still works', async (_name, edit) => {
    const response = await harness.admin('/mnemo/sessions/strict-2/import', { method: 'POST', json: edit(exported) });
    expect(response.status).toBe(400);
    expect((await harness.admin('/mnemo/sessions/strict-2')).status).toBe(404);
  });

  it('treats scratch keys as own properties only', async () => {
    for (const name of ['valueOf', 'toString', 'constructor', 'hasOwnProperty']) {
      expect((await harness.admin(`/mnemo/sessions/strict-1/scratch/${name}`)).status).toBe(404);
      expect((await harness.admin(`/mnemo/sessions/strict-1/scratch/${name}`, { method: 'DELETE' })).status).toBe(404);
    }
  });

  it('answers an Idempotency-Key reused with another body with 422', async () => {
    const send = (content: string) => harness.chat('strict-1', { messages: [user(content)] }, { 'idempotency-key': 'key-1' });
    expect((await send('first')).status).toBe(200);
    expect((await send('first')).headers.get('x-mnemo-idempotent-replay')).toBe('true');
    const reused = await send('something else');
    expect(reused.status).toBe(422);
    expect((await reused.json()).error.code).toBe('idempotency_key_reused');
  });
});
