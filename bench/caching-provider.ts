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
export class CachingProvider {
  private server?: Server;
  private readonly encoding = get_encoding('o200k_base');
  private readonly messageTokens = new Map<string, Uint32Array>();
  private readonly cache = new Set<string>();
  url = '';
  readonly totals = { requests: 0, prompt: 0, cached: 0, completion: 0, summaryInput: 0, summaryOutput: 0, summaryCalls: 0 };
  /** Every non-summary prompt, for checking what reached the model. */
  lastPromptText = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const call = {
          body,
          headers: req.headers,
          path: req.url ?? '',
          method: req.method ?? '',
          raw: Buffer.alloc(0),
          aborted: Promise.resolve(),
        } as ReceivedCall;
        const reply = isSummaryCall(call) ? fakeSummary(call) : replyText(body);
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
