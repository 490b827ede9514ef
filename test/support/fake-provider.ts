import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chatRequestProblem, embeddingsRequestProblem, responsesRequestProblem } from './openai-rules.js';

/** What the fake provider saw: the request, so tests assert on what mnemo sent upstream. */
export interface ReceivedCall {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  raw: Buffer;
  body: any;
  /** Resolves when the client (mnemo) disconnected before the response finished. */
  aborted: Promise<void>;
}

export type Reply = (call: ReceivedCall, res: ServerResponse) => void | Promise<void>;

/**
 * A small OpenAI-compatible server on loopback: the only stand-in in the tests.
 * By default it answers chat completions with a reply that names the last user
 * message; `next(reply)` scripts the following response(s).
 */
export class FakeProvider {
  readonly calls: ReceivedCall[] = [];
  private readonly queue: Reply[] = [];
  /**
   * Strict by default: a request OpenAI would reject with 400 gets that 400 here (and is listed
   * in `rejected`), whatever reply a test scripted. Only tests of byte-for-byte pass-through of
   * arbitrary bodies turn it off.
   */
  strict = true;
  readonly rejected: Array<{ path: string; problem: string }> = [];
  /** Responses this provider issued (id → its input and output items), for previous_response_id. */
  readonly responses = new Map<string, any[]>();
  /** TCP connections accepted so far: shows whether a proxy reuses them. */
  connections = 0;
  /** How summary calls are answered; tests swap it for slow or failing summarizers. */
  summaryReply: Reply = (call, res) => defaultReply(call, res);
  private server?: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', () => this.connections++);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  next(...replies: Reply[]): this {
    this.queue.push(...replies);
    return this;
  }

  /** The last Responses API request. */
  get lastResponse(): ReceivedCall {
    const last = this.calls.filter((call) => pathOf(call).endsWith('/responses')).at(-1);
    if (!last) throw new Error('the fake provider received no responses request');
    return last;
  }

  /** The last chat completion that was not one of mnemo's summary calls. */
  get lastChat(): ReceivedCall {
    const chats = this.calls.filter((call) => pathOf(call).endsWith('/chat/completions') && !isSummaryCall(call));
    const last = chats[chats.length - 1];
    if (!last) throw new Error('the fake provider received no chat completion');
    return last;
  }

  reset(): void {
    this.calls.length = 0;
    this.queue.length = 0;
    this.summaryReply = (call, res) => defaultReply(call, res);
  }

  get summaryCalls(): ReceivedCall[] {
    return this.calls.filter(isSummaryCall);
  }

  /** Notes the id and items of the response written to `res`, so previous_response_id can name it later. */
  private rememberResponse(call: ReceivedCall, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    const write = res.write.bind(res);
    const end = res.end.bind(res);
    res.write = ((chunk: any, ...rest: any[]) => {
      if (chunk) chunks.push(Buffer.from(chunk));
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk: any, ...rest: any[]) => {
      if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
      const text = Buffer.concat(chunks).toString('utf8');
      const input = Array.isArray(call.body?.input) ? call.body.input : [];
      for (const response of issuedResponses(text)) {
        this.responses.set(response.id, [...(this.responses.get(call.body?.previous_response_id) ?? []), ...input, ...response.output]);
      }
      return end(chunk, ...rest);
    }) as typeof res.end;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    let body: any;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    const aborted = new Promise<void>((resolve) => res.on('close', () => !res.writableFinished && resolve()));
    const call: ReceivedCall = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, body, aborted };
    this.calls.push(call);
    const problem = this.strict && req.method === 'POST' ? requestProblem(call, this.responses) : undefined;
    if (problem) {
      this.rejected.push({ path: call.path, problem });
      return json({ error: { message: problem, type: 'invalid_request_error', param: 'messages', code: null } }, 400)(call, res);
    }
    // Scripted replies are for the conversation; summary calls go to `summaryReply`.
    const reply = isSummaryCall(call) ? this.summaryReply : (this.queue.shift() ?? defaultReply);
    if (pathOf(call).endsWith('/responses')) this.rememberResponse(call, res);
    await reply(call, res);
  }
}

function requestProblem(call: ReceivedCall, responses: Map<string, any[]>): string | undefined {
  const path = pathOf(call);
  if (path.endsWith('/responses')) return responsesRequestProblem(call.body, responses);
  if (path.endsWith('/chat/completions')) return chatRequestProblem(call.body, { modelInPath: path.includes('/deployments/') });
  if (path.endsWith('/embeddings')) return embeddingsRequestProblem(call.body);
  return undefined;
}

function lastUserText(body: any): string {
  const users = (body?.messages ?? []).filter((message: any) => message.role === 'user');
  const content = users[users.length - 1]?.content;
  return typeof content === 'string' ? content : JSON.stringify(content ?? '');
}

function pathOf(call: ReceivedCall): string {
  return call.path.split('?')[0]!;
}

/** True for mnemo's own summary calls (they carry the summarizer prompt). */
export function isSummaryCall(call: ReceivedCall): boolean {
  const first = call.body?.messages?.[0]?.content;
  return typeof first === 'string' && first.startsWith('You maintain the running memory');
}

/**
 * A deterministic stand-in for an LLM summary: the previous summary plus every
 * line of the new turns that carries a number or a capitalised name, cut to fit.
 */
export function fakeSummary(call: ReceivedCall): string {
  const input: string = call.body.messages[1].content;
  const [previousPart, turnsPart = ''] = input.split('\n\nNew turns:\n');
  const previous = previousPart!.replace('Existing summary:\n', '').replace('(none)', '').trim();
  const notes = turnsPart
    .split('\n')
    .filter((line) => /\d|[A-Z][a-z]+ [A-Z][a-z]+/.test(line))
    .map((line) => line.slice(0, 160));
  const text = [previous, ...notes].filter(Boolean).join('\n');
  const limit = (call.body.max_tokens ?? 700) * 3;
  return text.length > limit ? text.slice(text.length - limit) : text || 'Small talk only.';
}

export const defaultReply: Reply = (call, res) => {
  if (pathOf(call).endsWith('/chat/completions') && isSummaryCall(call)) {
    const text = fakeSummary(call);
    return json(
      completion(
        { content: text },
        { prompt_tokens: Math.ceil(JSON.stringify(call.body).length / 4), completion_tokens: Math.ceil(text.length / 4), total_tokens: 0 },
      ),
    )(call, res);
  }
  if (pathOf(call).endsWith('/chat/completions')) {
    const text = `Reply to: ${lastUserText(call.body)}`;
    return call.body?.stream ? streamText(text)(call, res) : json(completion({ content: text }))(call, res);
  }
  if (pathOf(call).endsWith('/responses')) {
    const response = responseObject(call, [outputMessage(`Reply to: ${lastInputText(call.body)}`)]);
    return call.body?.stream ? streamResponse(response)(call, res) : json(response)(call, res);
  }
  if (pathOf(call).endsWith('/embeddings') && call.body?.input) {
    const inputs: string[] = Array.isArray(call.body.input) ? call.body.input : [call.body.input];
    const data = inputs.map((text, index) => ({ object: 'embedding', index, embedding: fakeEmbedding(text, call.body.dimensions ?? 64) }));
    return json({ object: 'list', data, model: call.body.model, usage: { prompt_tokens: inputs.join(' ').length / 4, total_tokens: 0 } })(
      call,
      res,
    );
  }
  if (pathOf(call).endsWith('/models')) return json({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model' }] })(call, res);
  return json({ error: { message: 'not found', type: 'invalid_request_error', param: null, code: null } }, 404)(call, res);
};

let sequence = 0;

/** The completed response objects in a JSON or SSE body the provider wrote. */
function issuedResponses(text: string): Array<{ id: string; output: unknown[] }> {
  try {
    const events =
      text.startsWith('event:') || text.startsWith('data:')
        ? text
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => JSON.parse(line.slice(6)).response)
        : [JSON.parse(text)];
    return events.filter((response) => response?.object === 'response' && response.status === 'completed');
  } catch {
    return [];
  }
}

function lastInputText(body: any): string {
  if (typeof body?.input === 'string') return body.input;
  const items: any[] = Array.isArray(body?.input) ? body.input : [];
  const last = [...items].reverse().find((item) => (item.type ?? 'message') === 'message' && item.role === 'user');
  if (!last) return items.at(-1)?.type === 'function_call_output' ? `tool output ${items.at(-1).output}` : '';
  return typeof last.content === 'string' ? last.content : last.content.map((part: any) => part.text ?? '').join('');
}

/** An assistant message output item of a Responses reply. */
export function outputMessage(text: string) {
  return {
    type: 'message',
    id: `msg_${++sequence}`,
    status: 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [] }],
  };
}

/** A function_call output item of a Responses reply. */
export function outputCall(callId: string, name: string, args: string) {
  return { type: 'function_call', id: `fc_${++sequence}`, call_id: callId, name, arguments: args, status: 'completed' };
}

/** A completed Responses `response` object; remembered by the provider for previous_response_id when it serves it. */
export function responseObject(call: ReceivedCall, output: unknown[], status = 'completed') {
  return {
    id: `resp_${++sequence}`,
    object: 'response',
    created_at: 1_700_000_000,
    status,
    model: call.body?.model ?? 'gpt-4o-mini',
    output,
    usage: {
      input_tokens: 10,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 15,
    },
  };
}

/** Serves a Responses reply as JSON (and remembers it for previous_response_id). */
export function respond(output: (call: ReceivedCall) => unknown[], status = 'completed'): Reply {
  return (call, res) => {
    const response = responseObject(call, output(call), status);
    return call.body?.stream ? streamResponse(response)(call, res) : json(response)(call, res);
  };
}

/** A Responses event stream ending in response.completed (or the response's own terminal status). */
export function streamResponse(response: ReturnType<typeof responseObject>): Reply {
  return (_call, res) => {
    const events: Array<[string, unknown]> = [['response.created', { response: { ...response, status: 'in_progress', output: [] } }]];
    response.output.forEach((item: any, output_index) => {
      events.push(['response.output_item.added', { output_index, item: { ...item, content: [] } }]);
      for (const part of item.content ?? []) {
        for (const delta of String(part.text ?? '').match(/.{1,8}/gs) ?? []) {
          events.push(['response.output_text.delta', { output_index, content_index: 0, item_id: item.id, delta }]);
        }
      }
      events.push(['response.output_item.done', { output_index, item }]);
    });
    const terminal = response.status === 'completed' ? 'response.completed' : `response.${response.status}`;
    events.push([terminal, { response }]);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(
      events
        .map(([type, data], index) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: index, ...(data as object) })}\n\n`)
        .join(''),
    );
  };
}

/** Usage as a provider reports it: completion tokens in proportion to the reply (about 4 characters a token). */
function usageFor(text: string) {
  const completion = Math.max(1, Math.ceil(text.length / 4));
  return { prompt_tokens: 10, completion_tokens: completion, total_tokens: 10 + completion };
}

export function completion(
  message: { content?: string | null; tool_calls?: unknown[] },
  usage = usageFor(`${message.content ?? ''}${JSON.stringify(message.tool_calls ?? '')}`),
) {
  return {
    id: `chatcmpl-${++sequence}`,
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', refusal: null, ...message, content: message.content ?? null },
        finish_reason: message.tool_calls ? 'tool_calls' : 'stop',
      },
    ],
    usage,
  };
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Reply {
  return (_call, res) => {
    const payload = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
    res.end(payload);
  };
}

export function chunk(delta: Record<string, unknown>, finishReason: string | null = null) {
  return {
    id: 'chatcmpl-stream',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  };
}

export function sse(events: unknown[]): string {
  return events.map((event) => `data: ${typeof event === 'string' ? event : JSON.stringify(event)}\n\n`).join('');
}

/** A streamed reply of `text` in a few pieces, with a usage chunk when asked for. */
export function streamText(text: string, options: { pieces?: number } = {}): Reply {
  return (call, res) => {
    const pieces = options.pieces ?? 3;
    const size = Math.ceil(text.length / pieces) || 1;
    const events: unknown[] = [chunk({ role: 'assistant', content: '' })];
    for (let index = 0; index < text.length; index += size) events.push(chunk({ content: text.slice(index, index + size) }));
    events.push(chunk({}, 'stop'));
    if (call.body?.stream_options?.include_usage) {
      events.push({
        id: 'chatcmpl-stream',
        object: 'chat.completion.chunk',
        created: 1_700_000_000,
        model: 'gpt-4o-mini',
        choices: [],
        usage: usageFor(text),
      });
    }
    events.push('[DONE]');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end(sse(events));
  };
}

/** Writes `parts` with a pause before each; `partsSent` tells a test how far the provider got. */
export function streamParts(parts: Array<{ delayMs?: number; data: string }>): Reply & { partsSent: number } {
  const reply = Object.assign(
    async (_call: ReceivedCall, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const part of parts) {
        if (part.delayMs) await new Promise((resolve) => setTimeout(resolve, part.delayMs));
        if (res.destroyed) return;
        res.write(part.data);
        reply.partsSent++;
      }
      res.end();
    },
    { partsSent: 0 },
  );
  return reply;
}

/** A bag-of-words vector (hashed words, unit length): similar wording gives similar vectors. */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  const vector = new Array<number>(dimensions).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9]{3,}/g) ?? []) {
    let hash = 0;
    for (const char of word) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
    vector[hash % dimensions]! += 1;
  }
  const norm = Math.sqrt(vector.reduce((total, value) => total + value * value, 0)) || 1;
  return vector.map((value) => value / norm);
}
