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
  /** Ask for each turn's keys in the same call (memory.recall.llm_keys; JSON-schema'd reply). */
  withKeys?: boolean;
}

export interface SummaryResult {
  text: string;
  facts: Array<{ name: string; value: string }>;
  /** Keywords and paraphrases per turn: `turn` is its position in the request's turns (0-based). */
  keys: Array<{ turn: number; text: string }>;
  usage: { input: number; output: number };
}

/** Folds turns into a summary. The seam lets tests and other backends stand in. */
export interface Summarizer {
  summarize(request: SummaryRequest, context: { headers: Record<string, string | string[]>; signal: AbortSignal }): Promise<SummaryResult>;
}

export class SummarizerError extends Error {
  override name = 'SummarizerError';
}

const FACT_ITEM = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'value'],
  properties: { name: { type: 'string', description: 'snake_case key' }, value: { type: 'string' } },
};

const KEY_ITEM = {
  type: 'object',
  additionalProperties: false,
  required: ['turn', 'keys'],
  properties: {
    turn: { type: 'integer', description: 'the number in brackets before the turn' },
    keys: { type: 'string', description: 'keywords and short paraphrases a later question about this turn might use' },
  },
};

/** The JSON schema of a structured reply: the summary, plus facts and/or turn keys as asked. */
function replySchema(request: Pick<SummaryRequest, 'withFacts' | 'withKeys'>) {
  const properties: Record<string, unknown> = { summary: { type: 'string' } };
  if (request.withFacts) properties.facts = { type: 'array', items: FACT_ITEM };
  if (request.withKeys) properties.keys = { type: 'array', items: KEY_ITEM };
  return {
    name: 'conversation_memory',
    strict: true,
    schema: { type: 'object', additionalProperties: false, required: Object.keys(properties), properties },
  };
}

// Keys are for recall, so they name what a turn says in other words: synonyms, the general
// category, the people and things involved ("single" → "relationship status, dating").
const KEYS_INSTRUCTION =
  ' Also, for each new turn that states something worth finding later, give its number and a few ' +
  'keywords and short paraphrases a later question about it might use (synonyms, categories, names); skip small talk.';

/** Renders turns as plain lines for the summarizer; numbered ([1], [2], …) when keys refer to them. */
export function transcriptText(turns: StoredMessage[], numbered = false): string {
  return turns
    .map(({ message }, position) => {
      const calls = (message.tool_calls ?? []).map((call) => ` [called ${call.function.name}(${call.function.arguments})]`).join('');
      return `${numbered ? `[${position + 1}] ` : ''}${message.role}: ${contentText(message.content)}${calls}`;
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
    const structured = request.withFacts || request.withKeys === true;
    const instructions =
      request.prompt +
      (request.withFacts ? ' Also list durable facts as name/value pairs.' : '') +
      (request.withKeys ? KEYS_INSTRUCTION : '');
    const body = {
      model: request.model,
      temperature: 0,
      // Keys are written per turn: they get room of their own beyond the summary's.
      max_tokens: request.withKeys ? request.maxTokens + 24 * request.turns.length : request.maxTokens,
      messages: [
        { role: 'system', content: instructions },
        {
          role: 'user',
          content: `Existing summary:\n${request.previous ?? '(none)'}\n\nNew turns:\n${transcriptText(request.turns, request.withKeys)}`,
        },
      ],
      ...(structured && { response_format: { type: 'json_schema', json_schema: replySchema(request) } }),
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
    return parseReply(text, request);
  }
}

function parseReply(raw: string, request: Pick<SummaryRequest, 'withFacts' | 'withKeys' | 'turns'>): SummaryResult {
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
  if (!request.withFacts && !request.withKeys) return { text: content, facts: [], keys: [], usage };
  try {
    const structured = JSON.parse(content) as {
      summary?: unknown;
      facts?: Array<{ name?: unknown; value?: unknown }>;
      keys?: Array<{ turn?: unknown; keys?: unknown }>;
    };
    if (typeof structured.summary !== 'string' || structured.summary.trim() === '') throw new Error('no summary');
    const facts = (Array.isArray(structured.facts) ? structured.facts : []).filter(
      (fact): fact is { name: string; value: string } =>
        typeof fact.name === 'string' && /^[A-Za-z][\w.-]*$/.test(fact.name) && typeof fact.value === 'string',
    );
    // A key naming a turn that was not in the request, or saying nothing, is dropped, never guessed at.
    const keys = (Array.isArray(structured.keys) ? structured.keys : [])
      .filter(
        (key): key is { turn: number; keys: string } =>
          Number.isInteger(key?.turn) &&
          (key.turn as number) >= 1 &&
          (key.turn as number) <= request.turns.length &&
          typeof key.keys === 'string' &&
          key.keys.trim() !== '',
      )
      .map((key) => ({ turn: key.turn - 1, text: key.keys.trim().slice(0, 500) }));
    return { text: structured.summary.trim(), facts, keys, usage };
  } catch (error) {
    throw new SummarizerError(`summarizer reply does not follow the schema: ${(error as Error).message}`);
  }
}
