import { brotliCompressSync, gzipSync } from 'node:zlib';
import { request, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunk, completion, sse, type Reply, type ReceivedCall } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';

/**
 * A corpus of hostile or broken provider behaviours. Whatever the provider sends, the client
 * gets the provider's bytes (or, when the provider breaks or stalls, a closed connection or a
 * 504 well within upstream.timeout_ms), and mnemo stores only replies it could read whole.
 */
type Outcome = 'stored' | 'not stored';
interface Mode {
  name: string;
  stream: boolean;
  reply: Reply;
  /** What the client must get: the provider's exact bytes, an error status, or a cut connection. */
  expect: { bytes: true } | { status: number } | { cut: true };
  stored: Outcome;
}

const text = (content: string) => Buffer.from(JSON.stringify(completion({ content })));
const write =
  (status: number, headers: Record<string, string>, ...parts: Array<string | Buffer>): Reply =>
  (_call: ReceivedCall, res: ServerResponse) => {
    res.writeHead(status, headers);
    for (const part of parts) res.write(part);
    res.end();
  };
const events = (...items: unknown[]) => sse(items);
const sseHeaders = { 'content-type': 'text/event-stream' };
const jsonHeaders = { 'content-type': 'application/json' };
const good = events(chunk({ role: 'assistant', content: '' }), chunk({ content: 'fine' }), chunk({}, 'stop'));
/** A POST whose raw response bytes are kept (no decompression), and whether the connection was cut before the end. */
function rawPost(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; received: Buffer; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (part: Buffer) => chunks.push(part));
      incoming.on('close', () => resolve({ status: incoming.statusCode ?? 0, received: Buffer.concat(chunks), cut: !incoming.complete }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const modes: Mode[] = [
  ...['null', '"a string"', '[]', '42', '{', '{"choices":[null]}', '{"choices":"x"}', '{"choices":[{"delta":null}]}'].map((data) => ({
    name: `SSE data: ${data}`,
    stream: true,
    reply: write(200, sseHeaders, good, `data: ${data}\n\n`, 'data: [DONE]\n\n'),
    expect: { bytes: true as const },
    stored: 'not stored' as Outcome,
  })),
  ...['"zz"', '5', '[null]', '{"id":1}'].map((calls) => ({
    name: `non-streamed tool_calls: ${calls}`,
    stream: false,
    reply: write(
      200,
      jsonHeaders,
      `{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":${calls}},"finish_reason":"tool_calls"}]}`,
    ),
    expect: { bytes: true as const },
    stored: (calls === '[null]' || calls === '{"id":1}' ? 'not stored' : 'not stored') as Outcome,
  })),
  {
    name: 'non-streamed 200 that is not JSON',
    stream: false,
    reply: write(200, jsonHeaders, '<html>oops</html>'),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'non-streamed 200 with an empty body',
    stream: false,
    reply: write(200, jsonHeaders),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'non-streamed choices: null',
    stream: false,
    reply: write(200, jsonHeaders, '{"choices":null}'),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'content after [DONE] (stored without it)',
    stream: true,
    reply: write(200, sseHeaders, good, 'data: [DONE]\n\n', events(chunk({ content: ' SMUGGLED' }))),
    expect: { bytes: true },
    stored: 'stored',
  },
  {
    name: 'gzip-encoded JSON',
    stream: false,
    reply: write(200, { ...jsonHeaders, 'content-encoding': 'gzip' }, gzipSync(text('fine'))),
    expect: { bytes: true },
    stored: 'stored',
  },
  {
    name: 'br-encoded JSON',
    stream: false,
    reply: write(200, { ...jsonHeaders, 'content-encoding': 'br' }, brotliCompressSync(text('fine'))),
    expect: { bytes: true },
    stored: 'stored',
  },
  {
    name: 'gzip-encoded SSE',
    stream: true,
    reply: write(200, { ...sseHeaders, 'content-encoding': 'gzip' }, gzipSync(`${good}data: [DONE]\n\n`)),
    expect: { bytes: true },
    stored: 'stored',
  },
  {
    name: 'corrupt gzip',
    stream: false,
    reply: write(200, { ...jsonHeaders, 'content-encoding': 'gzip' }, Buffer.from([0x1f, 0x8b, 8, 0, 9])),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'an unknown content-encoding',
    stream: false,
    reply: write(200, { ...jsonHeaders, 'content-encoding': 'zstd' }, text('fine')),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'a reply over max_capture_bytes',
    stream: false,
    reply: write(200, jsonHeaders, text('x'.repeat(70_000))),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'a stream over max_capture_bytes',
    stream: true,
    reply: write(
      200,
      sseHeaders,
      events(...Array.from({ length: 400 }, () => chunk({ content: 'y'.repeat(200) })), chunk({}, 'stop')),
      'data: [DONE]\n\n',
    ),
    expect: { bytes: true },
    stored: 'not stored',
  },
  { name: 'a stream without [DONE]', stream: true, reply: write(200, sseHeaders, good), expect: { bytes: true }, stored: 'not stored' },
  {
    name: 'a stream without finish_reason',
    stream: true,
    reply: write(200, sseHeaders, events(chunk({ content: 'half' })), 'data: [DONE]\n\n'),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'CRLF line endings',
    stream: true,
    reply: write(200, sseHeaders, `${good}data: [DONE]\n\n`.replace(/\n/g, '\r\n')),
    expect: { bytes: true },
    stored: 'stored',
  },
  {
    name: 'a 500 with an HTML body',
    stream: false,
    reply: write(500, { 'content-type': 'text/html' }, '<h1>down</h1>'),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'a 429 with retry-after',
    stream: true,
    reply: write(429, { ...jsonHeaders, 'retry-after': '3' }, '{"error":{"message":"slow down"}}'),
    expect: { bytes: true },
    stored: 'not stored',
  },
  {
    name: 'a stream broken midway',
    stream: true,
    reply: (_call, res) => {
      res.writeHead(200, sseHeaders);
      res.write(events(chunk({ content: 'half' })));
      setTimeout(() => res.socket?.destroy(), 20);
    },
    expect: { cut: true },
    stored: 'not stored',
  },
  {
    name: 'SSE keep-alive comments forever (total deadline)',
    stream: true,
    reply: async (_call, res) => {
      res.writeHead(200, sseHeaders);
      for (let beat = 0; beat < 40 && !res.destroyed; beat++) {
        res.write(': keep-alive\n\n');
        await sleep(50);
      }
      res.end();
    },
    expect: { cut: true },
    stored: 'not stored',
  },
  {
    name: 'a JSON body trickling a byte at a time (total deadline)',
    stream: false,
    reply: async (_call, res) => {
      res.writeHead(200, jsonHeaders);
      for (const byte of text('slow')) {
        if (res.destroyed) return;
        res.write(Buffer.from([byte]));
        await sleep(50);
      }
      res.end();
    },
    expect: { status: 504 },
    stored: 'not stored',
  },
  { name: 'no headers at all (total deadline)', stream: false, reply: () => undefined, expect: { status: 504 }, stored: 'not stored' },
  {
    name: 'a Responses stream that fails',
    stream: true,
    reply: write(
      200,
      sseHeaders,
      'event: response.failed\ndata: {"type":"response.failed","response":{"object":"response","status":"failed","output":[]}}\n\n',
    ),
    expect: { bytes: true },
    stored: 'not stored',
  },
];

describe('a corpus of hostile providers', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ upstream: { timeout_ms: 800, max_capture_bytes: 64 * 1024 } });
  });
  afterAll(() => harness.close());

  it('holds at least 25 modes', () => {
    expect(modes.length).toBeGreaterThanOrEqual(25);
  });

  it.each(modes.map((mode, index) => ({ ...mode, id: `hostile-${index}` })))(
    '$name',
    async ({ id, stream, reply, expect: outcome, stored }) => {
      const path = id === `hostile-${modes.length - 1}` ? 'responses' : 'chat/completions';
      let sent: Buffer | undefined;
      harness.provider.next(async (call, res) => {
        const chunks: Buffer[] = [];
        const original = res.write.bind(res);
        res.write = ((part: any, ...rest: any[]) => (chunks.push(Buffer.from(part)), original(part, ...rest))) as typeof res.write;
        const end = res.end.bind(res);
        res.end = ((part?: any, ...rest: any[]) => {
          if (part && typeof part !== 'function') chunks.push(Buffer.from(part));
          sent = Buffer.concat(chunks);
          return end(part, ...rest);
        }) as typeof res.end;
        await reply(call, res);
      });
      const started = performance.now();
      const body =
        path === 'responses'
          ? { model: 'gpt-4o-mini', input: 'hello', stream }
          : { model: 'gpt-4o-mini', messages: [user('hello')], stream };
      const { status, received, cut } = await rawPost(`${harness.baseURL}/${path}`, JSON.stringify(body), {
        authorization: 'Bearer sk-test',
        'x-session-id': id,
        'accept-encoding': 'gzip, br',
      });
      const response = { status };
      // Nothing hostile holds a client much past the 800 ms deadline.
      expect(performance.now() - started).toBeLessThan(5_000);
      if ('bytes' in outcome) {
        expect(cut).toBe(false);
        expect(received.equals(sent!)).toBe(true);
      } else if ('status' in outcome) {
        expect(response.status).toBe(outcome.status);
      } else {
        expect(cut).toBe(true);
      }
      const session = await harness.admin(`/mnemo/sessions/${id}`);
      if (stored === 'stored') {
        const messages = (await session.json()).messages;
        expect(messages.at(-1)).toMatchObject({ role: 'assistant', content: 'fine' });
      } else {
        expect(session.status).toBe(404);
      }
    },
  );

  it('ends the client connection at once when a provider breaks a pass-through stream', async () => {
    harness.provider.next((_call, res) => {
      res.writeHead(200, sseHeaders);
      res.write(events(chunk({ content: 'half' })));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const started = performance.now();
    const response = await fetch(`${harness.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [user('no session')], stream: true }),
    });
    await expect(response.arrayBuffer()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('counts replies it delivered but did not store', async () => {
    const metrics = await (await fetch(`${harness.mnemo.url}/metrics`)).text();
    for (const reason of ['too_large', 'unparseable', 'encoding'])
      expect(metrics).toMatch(new RegExp(`mnemo_replies_not_stored_total\\{reason="${reason}"\\} [1-9]`));
  });
});
