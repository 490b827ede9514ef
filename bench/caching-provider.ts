import { createHash, type Hash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { get_encoding } from 'tiktoken';
import { fakeSummary, isSummaryCall, type ReceivedCall } from '../test/support/fake-provider.js';

/**
 * A fake OpenAI-compatible provider that bills like OpenAI's prompt caching:
 * prompts of 1,024+ tokens, cached in 128-token steps, a hit needs identical
 * leading tokens (per prompt_cache_key bucket). It reports
 * usage.prompt_tokens_details.cached_tokens as OpenAI does.
 */
export interface ProviderScript {
  /** The assistant's reply to a conversation request (default: a support-agent reply echoing the question). */
  reply?: (body: { messages: Array<{ role: string; content: unknown }> }) => string;
  /** The reply to one of mnemo's summary calls (default: the test suite's fakeSummary). */
  summary?: (call: ReceivedCall) => string;
  /** Vectors for /v1/embeddings inputs; without it the endpoint answers 404. */
  embed?: (texts: string[]) => number[][] | Promise<number[][]>;
}

export class CachingProvider {
  private server?: Server;
  private readonly encoding = get_encoding('o200k_base');
  private readonly messageTokens = new Map<string, Uint32Array>();
  private readonly cache = new Set<string>();
  url = '';
  readonly totals = {
    requests: 0,
    prompt: 0,
    cached: 0,
    completion: 0,
    summaryInput: 0,
    summaryOutput: 0,
    summaryCalls: 0,
    embeddingInput: 0,
    embeddingCalls: 0,
  };
  /** Every non-summary prompt, for checking what reached the model. */
  lastPromptText = '';
  /** The text of each message of the last non-summary prompt. */
  lastPrompt: string[] = [];
  /** Prompt and cached tokens of the last non-summary request. */
  lastUsage = { prompt: 0, cached: 0 };

  constructor(private readonly script: ProviderScript = {}) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if ((req.url ?? '').endsWith('/embeddings')) {
          this.embeddings(body, res).catch((error: unknown) => {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { message: String(error), type: 'server_error', param: null, code: null } }));
          });
          return;
        }
        const call = {
          body,
          headers: req.headers,
          path: req.url ?? '',
          method: req.method ?? '',
          raw: Buffer.alloc(0),
          aborted: Promise.resolve(),
        } as ReceivedCall;
        const reply = isSummaryCall(call) ? (this.script.summary ?? fakeSummary)(call) : (this.script.reply ?? replyText)(body);
        const usage = this.bill(body, reply, isSummaryCall(call));
        const payload = JSON.stringify({
          id: 'chatcmpl-bench',
          object: 'chat.completion',
          created: 0,
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }],
          usage,
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async embeddings(body: { input: string | string[]; model: string }, res: import('node:http').ServerResponse): Promise<void> {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    if (!this.script.embed) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'no embeddings here', type: 'invalid_request_error', param: null, code: null } }));
      return;
    }
    const vectors = await this.script.embed(inputs);
    const tokens = inputs.reduce((total, text) => total + this.tokens(text).length, 0);
    this.totals.embeddingCalls++;
    this.totals.embeddingInput += tokens;
    const payload = JSON.stringify({
      object: 'list',
      data: vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })),
      model: body.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }

  private bill(body: { messages: Array<{ role: string; content: unknown }>; prompt_cache_key?: string }, reply: string, summary: boolean) {
    const bucket = body.prompt_cache_key ?? 'org';
    const hash: Hash = createHash('sha1').update(bucket);
    let total = 0;
    let cached = 0;
    let pending = 0;
    const boundaries: string[] = [];
    for (const message of body.messages) {
      const tokens = this.tokens(
        `${message.role}\n${typeof message.content === 'string' ? message.content : JSON.stringify(message.content)}\n`,
      );
      for (let offset = 0; offset < tokens.length;) {
        const take = Math.min(128 - pending, tokens.length - offset);
        hash.update(Buffer.from(tokens.buffer, tokens.byteOffset + offset * 4, take * 4));
        pending += take;
        offset += take;
        total += take;
        if (pending === 128) {
          const key = hash.copy().digest('base64');
          boundaries.push(key);
          // Each boundary's hash covers the whole prefix, so a hit means every earlier token matches.
          if (this.cache.has(key)) cached = total;
          pending = 0;
        }
      }
    }
    if (cached < 1024) cached = 0;
    for (const key of boundaries) this.cache.add(key);
    const completion = this.tokens(reply).length;
    if (summary) {
      this.totals.summaryCalls++;
      this.totals.summaryInput += total;
      this.totals.summaryOutput += completion;
    } else {
      this.totals.requests++;
      this.totals.prompt += total;
      this.totals.cached += cached;
      this.totals.completion += completion;
      this.lastPromptText = JSON.stringify(body.messages);
      this.lastUsage = { prompt: total, cached };
      this.lastPrompt = body.messages.map((message) =>
        typeof message.content === 'string' ? message.content : JSON.stringify(message.content),
      );
    }
    return {
      prompt_tokens: total,
      completion_tokens: completion,
      total_tokens: total + completion,
      prompt_tokens_details: { cached_tokens: cached },
    };
  }

  private tokens(text: string): Uint32Array {
    let tokens = this.messageTokens.get(text);
    if (!tokens) {
      tokens = this.encoding.encode_ordinary(text);
      this.messageTokens.set(text, tokens);
    }
    return tokens;
  }
}

/** A support-agent reply of realistic length that echoes the question. */
function replyText(body: { messages: Array<{ role: string; content: unknown }> }): string {
  const users = body.messages.filter((message) => message.role === 'user');
  const question = String(users[users.length - 1]?.content ?? '');
  return (
    `Thanks for reaching out about "${question.slice(0, 80)}". I checked your account and the relevant records. ` +
    'Here is what I found and what you can do next: first, confirm the details in the app; second, if anything still looks wrong, ' +
    'reply here and I will escalate it to the right team so it is resolved quickly.'
  );
}
