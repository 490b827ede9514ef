import { BadRequestError, UnsupportedMediaTypeError } from '../errors.js';
import { validateMessages, type ChatMessage } from '../memory/messages.js';
import { assertJsonDepth, assertMessageCount, type JsonLimits } from './json-limits.js';

/** The fields of a chat-completions body mnemo reads; everything else is forwarded as sent. */
export interface ChatBody {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } & Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * A validated chat body and the model it is for: its `model`, or, for a body without one, the
 * model its path names (Azure deployments). The body itself is left as the client sent it.
 */
export function parseChatBody(
  raw: Buffer,
  contentType: string | undefined,
  limits: JsonLimits,
  pathModel?: string,
): { body: ChatBody; model: string } {
  const candidate = parseJsonObject(raw, contentType, limits) as Partial<ChatBody>;
  const model = candidate.model === undefined && pathModel ? pathModel : candidate.model;
  if (typeof model !== 'string' || model.length === 0) {
    throw new BadRequestError("'model' is required and must be a string.", { param: 'model', code: 'invalid_model' });
  }
  return { body: validated(candidate, limits), model };
}

function validated(candidate: Partial<ChatBody>, limits: JsonLimits): ChatBody {
  if (Array.isArray(candidate.messages)) assertMessageCount(candidate.messages, limits.maxMessages);
  validateMessages(candidate.messages);
  if (candidate.stream !== undefined && typeof candidate.stream !== 'boolean') {
    throw new BadRequestError("'stream' must be a boolean.", { param: 'stream', code: 'invalid_stream' });
  }
  return candidate as ChatBody;
}

/** A JSON request body that must be an object: content type, emptiness, depth and syntax checked. */
export function parseJsonObject(raw: Buffer, contentType: string | undefined, limits: JsonLimits): Record<string, unknown> {
  if (contentType !== undefined && !/^application\/([\w.+-]*\+)?json\b/i.test(contentType)) {
    throw new UnsupportedMediaTypeError(contentType);
  }
  if (raw.length === 0) throw new BadRequestError('Request body is empty; expected a JSON request.', { code: 'empty_body' });
  assertJsonDepth(raw, limits.maxDepth);
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new BadRequestError(`Malformed JSON body: ${(error as Error).message}`, { code: 'invalid_json' });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequestError('Request body must be a JSON object.', { code: 'invalid_body' });
  }
  return body as Record<string, unknown>;
}

/** The model named in a raw body, for routing requests mnemo otherwise leaves alone. */
export function peekModel(raw: Buffer): string | undefined {
  try {
    const model = (JSON.parse(raw.toString('utf8')) as { model?: unknown })?.model;
    return typeof model === 'string' ? model : undefined;
  } catch {
    return undefined;
  }
}
