import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, user, type Harness } from '../support/harness.js';

/**
 * A corpus of malformed and abusive requests, on both memory APIs. Every one gets a clear
 * OpenAI-shaped error with the right status, reaches no provider, and leaves the stored
 * session as it was.
 */
interface Case {
  name: string;
  path?: 'chat/completions' | 'responses';
  body: string | Uint8Array;
  headers?: Record<string, string>;
  status: number;
  code?: string;
}

const chat = (fields: Record<string, unknown>) => JSON.stringify({ model: 'gpt-4o-mini', messages: [user('x')], ...fields });
const responses = (fields: Record<string, unknown>) => JSON.stringify({ model: 'gpt-4o-mini', input: 'x', ...fields });
const withMessage = (message: unknown) => JSON.stringify({ model: 'gpt-4o-mini', messages: [message] });
const withItem = (item: unknown) => JSON.stringify({ model: 'gpt-4o-mini', input: [item] });

const bodies: Case[] = [
  ...[
    '',
    ' ',
    '{',
    '{"model":',
    'null',
    'true',
    '42',
    '"text"',
    '[]',
    '[{"role":"user"}]',
    '{"model":"m",}',
    "{'model':'m'}",
    'NaN',
    '\u0000',
  ].map((body) => ({ name: `body ${JSON.stringify(body)}`, body, status: 400 })),
  ...[undefined, null, 0, '', [], {}, ['gpt-4o'], true].map((model) => ({
    name: `model ${JSON.stringify(model)}`,
    body: JSON.stringify({ model, messages: [user('x')] }),
    status: 400,
    code: 'invalid_model',
  })),
  ...[undefined, null, 'hi', 42, {}, [], { 0: user('x') }].map((messages) => ({
    name: `messages ${JSON.stringify(messages)}`,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    status: 400,
  })),
  ...[null, 'hello', 7, [], true].map((message) => ({
    name: `message ${JSON.stringify(message)}`,
    body: withMessage(message),
    status: 400,
  })),
  ...[undefined, 'wizard', 'USER', '', 3, null, ['user']].map((role) => ({
    name: `role ${JSON.stringify(role)}`,
    body: withMessage({ role, content: 'x' }),
    status: 400,
    code: 'invalid_role',
  })),
  ...[5, true, { text: 'x' }].map((content) => ({
    name: `content ${JSON.stringify(content)}`,
    body: withMessage({ role: 'user', content }),
    status: 400,
    code: 'invalid_content',
  })),
  ...['call', 5, { id: 'x' }].map((tool_calls) => ({
    name: `tool_calls ${JSON.stringify(tool_calls)}`,
    body: withMessage({ role: 'assistant', content: null, tool_calls }),
    status: 400,
    code: 'invalid_tool_calls',
  })),
  ...[undefined, 5, null].map((tool_call_id) => ({
    name: `tool message with tool_call_id ${JSON.stringify(tool_call_id)}`,
    body: withMessage({ role: 'tool', content: 'x', tool_call_id }),
    status: 400,
  })),
  ...['yes', 1, null, {}].map((stream) => ({
    name: `stream ${JSON.stringify(stream)}`,
    body: chat({ stream }),
    status: 400,
    code: 'invalid_stream',
  })),
  {
    name: '10,001 messages',
    body: JSON.stringify({ model: 'm', messages: Array.from({ length: 10_001 }, () => user('x')) }),
    status: 400,
    code: 'too_many_messages',
  },
  {
    name: 'JSON 65 levels deep',
    body: chat({ metadata: JSON.parse(`${'['.repeat(65)}${']'.repeat(65)}`) }),
    status: 400,
    code: 'json_too_deep',
  },
  {
    name: 'JSON 100,000 levels deep',
    body: `{"model":"m","messages":[],"x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
    status: 400,
    code: 'json_too_deep',
  },
  { name: 'body over server.body_limit', body: chat({ padding: 'x'.repeat(1100 * 1024) }), status: 413, code: 'payload_too_large' },
];

const headers: Case[] = [
  ...['bad id', 'a/b', 'x'.repeat(129), 'ü', 'a\tb', '<script>'].map((id) => ({
    name: `session id ${JSON.stringify(id.slice(0, 20))}`,
    body: chat({}),
    headers: { 'x-session-id': encodeURIComponent(id) === id ? id : id.replace(/[^\x21-\x7e]/g, '%') },
    status: 400,
    code: 'invalid_session_id',
  })),
  ...['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'text/html'].map((type) => ({
    name: `content type ${type}`,
    body: chat({}),
    headers: { 'content-type': type },
    status: 415,
  })),
  ...['zstd', 'compress', 'gzip, br'].map((encoding) => ({
    name: `content encoding ${encoding}`,
    body: chat({}),
    headers: { 'content-encoding': encoding },
    status: 415,
  })),
  {
    name: 'a gzip body that does not decode',
    body: new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]),
    headers: { 'content-encoding': 'gzip' },
    status: 400,
  },
  {
    name: 'a gzip bomb past body_limit',
    body: gzipSync(chat({ padding: 'x'.repeat(2_000_000) })),
    headers: { 'content-encoding': 'gzip' },
    status: 413,
  },
  ...['', 'x'.repeat(256), 'tab\there'].map((key) => ({
    name: `Idempotency-Key ${JSON.stringify(key.slice(0, 12))}`,
    body: chat({}),
    headers: { 'idempotency-key': key },
    status: 400,
    code: 'invalid_idempotency_key',
  })),
  ...['bad user', 'x'.repeat(200)].map((id) => ({
    name: `user header ${JSON.stringify(id.slice(0, 12))}`,
    body: chat({}),
    headers: { 'x-user-id': id },
    status: 400,
  })),
  ...([{}, { authorization: 'Bearer ' }, { authorization: 'Basic' }, { 'x-api-key': '' }] as Array<Record<string, string>>).map(
    (credentials) => ({
      name: `no credential (${JSON.stringify(credentials)})`,
      body: chat({}),
      headers: { authorization: '', ...credentials },
      status: 401,
      code: 'missing_credentials',
    }),
  ),
];

const responsesCases: Case[] = [
  ...[undefined, null, 42, {}, true].map((input) => ({
    name: `Responses input ${JSON.stringify(input)}`,
    path: 'responses' as const,
    body: responses({ input }),
    status: 400,
    code: 'invalid_input',
  })),
  { name: 'Responses without model', path: 'responses', body: JSON.stringify({ input: 'x' }), status: 400, code: 'invalid_model' },
  { name: 'Responses stream "yes"', path: 'responses', body: responses({ stream: 'yes' }), status: 400, code: 'invalid_stream' },
  ...[null, 'text', 5].map((item) => ({
    name: `Responses item ${JSON.stringify(item)}`,
    path: 'responses' as const,
    body: withItem(item),
    status: 400,
  })),
  ...['item_reference', 'web_search_call', 'computer_call', 'image_generation_call', 'nope'].map((type) => ({
    name: `Responses item type ${type}`,
    path: 'responses' as const,
    body: withItem({ type, id: 'x' }),
    status: 400,
    code: 'unsupported_input_item',
  })),
  ...['wizard', 'tool', undefined].map((role) => ({
    name: `Responses message role ${JSON.stringify(role)}`,
    path: 'responses' as const,
    body: withItem({ type: 'message', role, content: 'x' }),
    status: 400,
    code: 'invalid_role',
  })),
  ...[5, { text: 'x' }, [{ type: 'audio' }], [null]].map((content) => ({
    name: `Responses content ${JSON.stringify(content)}`,
    path: 'responses' as const,
    body: withItem({ role: 'user', content }),
    status: 400,
    code: 'invalid_content',
  })),
  ...[
    { type: 'function_call' },
    { type: 'function_call', call_id: 'c', name: 'f' },
    { type: 'function_call', call_id: 1, name: 'f', arguments: '{}' },
  ].map((item) => ({ name: `Responses ${JSON.stringify(item)}`, path: 'responses' as const, body: withItem(item), status: 400 })),
  {
    name: 'Responses function_call_output without call_id',
    path: 'responses',
    body: withItem({ type: 'function_call_output', output: 'x' }),
    status: 400,
  },
  {
    name: 'Responses 10,001 items',
    path: 'responses',
    body: JSON.stringify({ model: 'm', input: Array.from({ length: 10_001 }, () => user('x')) }),
    status: 400,
  },
];

describe('a corpus of malformed requests', () => {
  let harness: Harness;
  const corpus = [...bodies, ...headers, ...responsesCases];

  beforeAll(async () => {
    harness = await startHarness({ server: { body_limit: 1024 * 1024 } });
    await harness.chat('victim', { messages: [user('remember me')] });
    harness.provider.reset();
  });
  afterAll(() => harness.close());

  it('holds at least 100 cases', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(100);
  });

  it.each(corpus)('$name → $status', async ({ path = 'chat/completions', body, headers: extra = {}, status, code }) => {
    const response = await fetch(`${harness.baseURL}/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', 'x-session-id': 'victim', ...extra },
      body: body as BodyInit,
    });
    expect(response.status).toBe(status);
    const payload = await response.json();
    expect(Object.keys(payload.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(payload.error.message.length).toBeGreaterThan(10);
    if (code) expect(payload.error.code).toBe(code);
  });

  it('reached no provider and left the stored session as it was', async () => {
    expect(harness.provider.calls).toEqual([]);
    const session = await (await harness.admin('/mnemo/sessions/victim')).json();
    expect(session.messages.map((message: { content: string }) => message.content)).toEqual(['remember me', 'Reply to: remember me']);
    expect(session.version).toBe(1);
  });
});
