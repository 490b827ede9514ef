import type { UpstreamClient } from '../upstream/client.js';
import { upstreamTarget } from '../upstream/headers.js';
import { contentText, type StoredMessage } from './messages.js';

export interface SummaryRequest {
  previous: string | undefined;
  turns: StoredMessage[];
  model: string;
  prompt: string;
  maxTokens: number;
  /** Ask for facts in the same call (JSON-schema'd reply). */
  withFacts: boolean;
}

export interface SummaryResult {
  text: string;
  facts: Array<{ name: string; value: string }>;
  usage: { input: number; output: number };
}

/** Folds turns into a summary. The seam lets tests and other backends stand in. */
export interface Summarizer {
  summarize(request: SummaryRequest, context: { headers: Record<string, string | string[]>; signal: AbortSignal }): Promise<SummaryResult>;
}

export class SummarizerError extends Error {
  override name = 'SummarizerError';
}

const FACTS_SCHEMA = {
  name: 'conversation_memory',
  strict: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['summary', 'facts'],
    properties: {
      summary: { type: 'string' },
      facts: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'value'],
          properties: { name: { type: 'string', description: 'snake_case key' }, value: { type: 'string' } },
        },
      },
    },
  },
};

/** Renders turns as plain lines for the summarizer. */
export function transcriptText(turns: StoredMessage[]): string {
  return turns
    .map(({ message }) => {
      const calls = (message.tool_calls ?? []).map((call) => ` [called ${call.function.name}(${call.function.arguments})]`).join('');
      return `${message.role}: ${contentText(message.content)}${calls}`;
    })
    .join('\n');
}

/** A summarizer that calls chat completions on the same upstream as the conversation. */
export class UpstreamSummarizer implements Summarizer {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly upstreamUrl: () => string,
  ) {}

  async summarize(
    request: SummaryRequest,
    context: { headers: Record<string, string | string[]>; signal: AbortSignal },
  ): Promise<SummaryResult> {
    const body = {
      model: request.model,
      temperature: 0,
      max_tokens: request.maxTokens,
      messages: [
        { role: 'system', content: request.withFacts ? `${request.prompt} Also list durable facts as name/value pairs.` : request.prompt },
        { role: 'user', content: `Existing summary:\n${request.previous ?? '(none)'}\n\nNew turns:\n${transcriptText(request.turns)}` },
      ],
      ...(request.withFacts && { response_format: { type: 'json_schema', json_schema: FACTS_SCHEMA } }),
    };
    const response = await this.upstream({
      url: upstreamTarget(this.upstreamUrl(), '/v1/chat/completions'),
      method: 'POST',
      headers: { ...context.headers, 'content-type': 'application/json', 'accept-encoding': 'identity' },
      body: JSON.stringify(body),
      signal: context.signal,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    if (response.status < 200 || response.status >= 300)
      throw new SummarizerError(`summarizer got HTTP ${response.status}: ${text.slice(0, 200)}`);
    return parseReply(text, request.withFacts);
  }
}

function parseReply(raw: string, withFacts: boolean): SummaryResult {
  let parsed: {
    choices?: Array<{ message?: { content?: string | null } }>;
    usage?: { prompt_tokens?: number; completion_tokens?: number };
  };
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new SummarizerError('summarizer reply is not JSON');
  }
  const content = parsed.choices?.[0]?.message?.content?.trim();
  if (!content) throw new SummarizerError('summarizer reply has no content');
  const usage = { input: parsed.usage?.prompt_tokens ?? 0, output: parsed.usage?.completion_tokens ?? 0 };
  if (!withFacts) return { text: content, facts: [], usage };
  try {
    const structured = JSON.parse(content) as { summary?: unknown; facts?: Array<{ name?: unknown; value?: unknown }> };
    if (typeof structured.summary !== 'string' || structured.summary.trim() === '') throw new Error('no summary');
    const facts = (structured.facts ?? []).filter(
      (fact): fact is { name: string; value: string } =>
        typeof fact.name === 'string' && /^[A-Za-z][\w.-]*$/.test(fact.name) && typeof fact.value === 'string',
    );
    return { text: structured.summary.trim(), facts, usage };
  } catch (error) {
    throw new SummarizerError(`summarizer reply does not follow the schema: ${(error as Error).message}`);
  }
}
