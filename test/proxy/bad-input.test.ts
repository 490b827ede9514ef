import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, user, type Harness } from '../support/harness.js';

type Case = { name: string; body: string | Uint8Array; headers?: Record<string, string>; status: number; code?: string; param?: string };

describe('bad input gets an OpenAI-shaped error and leaves stored state alone', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ server: { body_limit: 64 * 1024 } });
    await harness.chat('victim', { messages: [user('remember me')] });
  });
  afterAll(() => harness.close());

  const send = (body: string | Uint8Array, headers: Record<string, string>) =>
    fetch(`${harness.mnemo.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', 'x-session-id': 'victim', ...headers },
      body: body as BodyInit,
    });

  // A well-formed body, for the cases where only a header is wrong.
  const valid = JSON.stringify({ model: 'm', messages: [user('x')] });
  const cases: Case[] = [
    { name: 'malformed JSON', body: '{"model": "gpt-4o-mini", "messages": [', status: 400, code: 'invalid_json' },
    { name: 'empty body', body: '', status: 400, code: 'empty_body' },
    { name: 'a JSON array body', body: '[1,2]', status: 400, code: 'invalid_body' },
    { name: 'messages missing', body: JSON.stringify({ model: 'gpt-4o-mini' }), status: 400, param: 'messages' },
    { name: 'messages not an array', body: JSON.stringify({ model: 'gpt-4o-mini', messages: 'hi' }), status: 400, param: 'messages' },
    { name: 'messages empty', body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }), status: 400, param: 'messages' },
    {
      name: 'a message that is not an object',
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [42] }),
      status: 400,
      param: 'messages[0]',
    },
    {
      name: 'an unknown role',
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'wizard', content: 'x' }] }),
      status: 400,
      param: 'messages[0].role',
    },
    {
      name: 'content of the wrong type',
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 5 }] }),
      status: 400,
      param: 'messages[0].content',
    },
    {
      name: 'a tool message without tool_call_id',
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'tool', content: 'x' }] }),
      status: 400,
      param: 'messages[0].tool_call_id',
    },
    { name: 'model missing', body: JSON.stringify({ messages: [user('x')] }), status: 400, param: 'model' },
    {
      name: 'stream not a boolean',
      body: JSON.stringify({ model: 'm', stream: 'yes', messages: [user('x')] }),
      status: 400,
      param: 'stream',
    },
    {
      name: 'a body over the limit',
      body: JSON.stringify({ model: 'm', messages: [user('x'.repeat(70 * 1024))] }),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'a non-JSON content type',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a session id with spaces',
      body: valid,
      headers: { 'x-session-id': 'has space' },
      status: 400,
      code: 'invalid_session_id',
    },
    {
      name: 'a session id over 128 characters',
      body: valid,
      headers: { 'x-session-id': 'a'.repeat(129) },
      status: 400,
      code: 'invalid_session_id',
    },
    {
      name: 'a session id with a slash',
      body: valid,
      headers: { 'x-session-id': '../etc' },
      status: 400,
      code: 'invalid_session_id',
    },
    { name: 'invalid UTF-8', body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), status: 400, code: 'invalid_json' },
    {
      name: 'an unknown content encoding',
      body: valid,
      headers: { 'content-encoding': 'compress' },
      status: 415,
      code: 'unsupported_encoding',
    },
    {
      name: 'a gzip body that is not gzip',
      body: valid,
      headers: { 'content-encoding': 'gzip' },
      status: 400,
      code: 'invalid_encoding',
    },
    {
      // 200 KB of text compresses to a few hundred bytes: the limit applies to what it expands to.
      name: 'a small gzip body that expands past the limit',
      body: gzipSync(JSON.stringify({ model: 'm', messages: [user('x'.repeat(200 * 1024))] })),
      headers: { 'content-encoding': 'gzip' },
      status: 413,
      code: 'payload_too_large',
    },
  ];

  it.each(cases)('$name → $status', async ({ body, headers = {}, status, code, param }) => {
    const response = await send(body, headers);
    expect(response.status).toBe(status);
    const payload = await response.json();
    expect(Object.keys(payload.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(payload.error.message).toEqual(expect.any(String));
    if (code) expect(payload.error.code).toBe(code);
    if (param) expect(payload.error.param).toBe(param);
  });

  it('accepts a gzip-compressed body and forwards it decoded', async () => {
    const response = await send(gzipSync(JSON.stringify({ model: 'gpt-4o-mini', messages: [user('compressed question')] })), {
      'content-encoding': 'gzip',
      'x-session-id': 'gzip',
    });
    expect(response.status).toBe(200);
    const call = harness.provider.lastChat;
    expect(call.headers['content-encoding']).toBeUndefined();
    expect(call.body.messages.at(-1)).toEqual(user('compressed question'));
  });

  it('rejects oversized headers at the HTTP layer without crashing', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${harness.mnemo.url}/v1/chat/completions`);
      const request = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'x-huge': 'y'.repeat(64 * 1024) } },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.on('error', reject);
      request.end('{}');
    });
    expect(status).toBe(431);
    expect((await fetch(`${harness.mnemo.url}/healthz`)).status).toBe(200);
  });

  it('survives a client that hangs up halfway through its body', async () => {
    const url = new URL(`${harness.mnemo.url}/v1/chat/completions`);
    const request = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1000', 'x-session-id': 'victim' },
    });
    request.on('error', () => {});
    request.write('{"model": "m", "messages": [');
    await new Promise((resolve) => setTimeout(resolve, 50));
    request.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await fetch(`${harness.mnemo.url}/healthz`)).status).toBe(200);
  });

  it('stores unicode exactly, emoji and right-to-left text included', async () => {
    const text = 'Bestellung #7890 🚚 — طلب — 注文';
    await harness.chat('unicode', { messages: [user(text)] });
    const session = await (await harness.admin(`/mnemo/sessions/unicode`)).json();
    expect(session.messages[0].content).toBe(text);
  });

  it('still holds the victim session intact after all of the above', async () => {
    const session = await (await harness.admin(`/mnemo/sessions/victim`)).json();
    expect(session.messages.map((message: { content: string }) => message.content)).toEqual(['remember me', 'Reply to: remember me']);
    expect(session.version).toBe(1);
  });
});
