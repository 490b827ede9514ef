import { createHash, randomBytes } from 'node:crypto';
import { BadRequestError } from '../errors.js';

/** One function call an assistant asked for. */
export interface ToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}

/**
 * A chat message as the provider sees it. Fields mnemo does not know are kept
 * as they came, so nothing a client sends is silently dropped.
 */
export interface ChatMessage {
  role: string;
  content?: unknown;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  refusal?: string | null;
  [field: string]: unknown;
}

/** A message as stored: the message, its token count (computed once), identity hash and time. */
export interface StoredMessage {
  id: string;
  message: ChatMessage;
  tokens: number;
  hash: string;
  at: number;
}

// Message ids: a random per-process prefix (48 bits) and a counter. Unique across processes and
// restarts with overwhelming odds, 11–13 characters, and no random-number call per message (the
// former randomBytes(12) per message was 4% of a turn's CPU in a profile).
const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;

export function newMessageId(): string {
  return ID_PREFIX + (idCounter++).toString(36);
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

export function isInstruction(message: ChatMessage): boolean {
  return message.role === 'system' || message.role === 'developer';
}

/** Checks the shape of `messages`; errors name the offending index like OpenAI does. */
export function validateMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) {
    throw new BadRequestError("'messages' is required and must be an array.", { param: 'messages', code: 'invalid_messages' });
  }
  if (value.length === 0) {
    throw new BadRequestError("'messages' must contain at least one message.", { param: 'messages', code: 'empty_messages' });
  }
  value.forEach((message, index) => {
    const param = `messages[${index}]`;
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      throw new BadRequestError(`${param} must be an object.`, { param, code: 'invalid_message' });
    }
    const { role, content, tool_calls } = message as ChatMessage;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw new BadRequestError(`${param}.role must be one of ${[...ROLES].join(', ')}.`, { param: `${param}.role`, code: 'invalid_role' });
    }
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      throw new BadRequestError(`${param}.content must be a string or an array of content parts.`, {
        param: `${param}.content`,
        code: 'invalid_content',
      });
    }
    if (tool_calls !== undefined && !Array.isArray(tool_calls)) {
      throw new BadRequestError(`${param}.tool_calls must be an array.`, { param: `${param}.tool_calls`, code: 'invalid_tool_calls' });
    }
    if (role === 'tool' && typeof (message as ChatMessage).tool_call_id !== 'string') {
      throw new BadRequestError(`${param}.tool_call_id is required for tool messages.`, {
        param: `${param}.tool_call_id`,
        code: 'invalid_tool_message',
      });
    }
  });
  return value as ChatMessage[];
}

/** Plain text of a message's content: strings as they are, text parts joined. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part) =>
      part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '',
    )
    .join('');
}

/**
 * 72 bits: reconciling compares a client's message only with the stored one
 * at the same position of the same session, so a false match is a 2^-72 event;
 * the hash is stored with every message, so its length is paid per message.
 */
export const HASH_LENGTH = 12;

/**
 * Identity of a message for reconciling: what the model reads, not how the
 * client spelled it. `refusal: null`, `annotations: []` and text-only part
 * arrays vs. plain strings all hash the same, because SDKs echo responses back
 * in either form.
 */
export function messageHash(message: ChatMessage): string {
  const canonical = {
    r: message.role,
    c: canonicalContent(message.content),
    n: message.name ?? null,
    t: (message.tool_calls ?? []).map((call) => [call?.id ?? null, call?.function?.name ?? null, call?.function?.arguments ?? null]),
    i: message.tool_call_id ?? null,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, HASH_LENGTH);
}

function canonicalContent(content: unknown): unknown {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content) && content.every((part) => part?.type === 'text')) return contentText(content);
  return content;
}

/** Index of the assistant message whose tool_calls a tool message answers, searching back from `index`. */
export function toolGroupStart(messages: ReadonlyArray<{ role: string; tool_calls?: unknown }>, index: number): number {
  let cursor = index;
  while (cursor > 0 && messages[cursor]?.role === 'tool') cursor--;
  const head = messages[cursor];
  if (cursor < index && head?.role === 'assistant' && Array.isArray(head.tool_calls)) return cursor;
  return index;
}
