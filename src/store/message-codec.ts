import { HASH_LENGTH, type StoredMessage } from '../memory/messages.js';

/**
 * How a list of messages (a chunk, or the head's tail) is persisted: one tuple
 * per message, [id, tokens, hash, ms since the previous message, role, content]
 * for a plain text message and [id, tokens, hash, ms since the previous, 0,
 * message] for anything else. Per-message bookkeeping was most of an idle
 * session's bytes, so each field is written as small as it reads back exactly:
 *
 * - id: a number when the id continues the previous message's (same process
 *   prefix, see newMessageId): the difference of their counters. Any other id
 *   (another instance's, an imported one) is written whole.
 * - role: 1–4 for user, assistant, system, developer; other roles as text.
 * - time: milliseconds since the previous message.
 *
 * Lists written in earlier forms (role names, 22-character hashes, 5-tuples
 * with absolute times, objects) still decode.
 */
export type EncodedMessage = [id: string | number, tokens: number, hash: string, delta: number, role: string | number, content: unknown];
export type LegacyMessage = [id: string, tokens: number, hash: string, at: number, message: StoredMessage['message']] | StoredMessage;

const ROLE_CODES: Record<string, number> = { user: 1, assistant: 2, system: 3, developer: 4 };
const ROLES = ['', 'user', 'assistant', 'system', 'developer'];
/** 0 in the role position: the content slot holds the whole message. */
const WHOLE = 0;

// newMessageId's shape: an 8-character base64url process prefix, then a base-36 counter.
const PREFIX_LENGTH = 8;
const ID_SHAPE = /^[\w-]{8}(?:0|[1-9a-z][0-9a-z]{0,9})$/;

interface IdCursor {
  prefix?: string;
  counter: number;
}

function encodeId(id: string, cursor: IdCursor): string | number {
  if (!ID_SHAPE.test(id)) {
    cursor.prefix = undefined;
    return id;
  }
  const prefix = id.slice(0, PREFIX_LENGTH);
  const counter = parseInt(id.slice(PREFIX_LENGTH), 36);
  const continues = prefix === cursor.prefix;
  const encoded = continues ? counter - cursor.counter : id;
  cursor.prefix = prefix;
  cursor.counter = counter;
  return encoded;
}

function decodeId(value: string | number, cursor: IdCursor): string {
  if (typeof value === 'number' && cursor.prefix !== undefined) {
    cursor.counter += value;
    return cursor.prefix + cursor.counter.toString(36);
  }
  const id = String(value);
  if (ID_SHAPE.test(id)) {
    cursor.prefix = id.slice(0, PREFIX_LENGTH);
    cursor.counter = parseInt(id.slice(PREFIX_LENGTH), 36);
  } else {
    cursor.prefix = undefined;
  }
  return id;
}

export function encodeList(list: StoredMessage[]): EncodedMessage[] {
  let previous = 0;
  const cursor: IdCursor = { counter: 0 };
  return list.map(({ id, tokens, hash, at, message }) => {
    const delta = at - previous;
    previous = at;
    const encodedId = encodeId(id, cursor);
    const plain = typeof message.content === 'string' && Object.keys(message).length === 2;
    if (!plain) return [encodedId, tokens, hash, delta, WHOLE, message];
    return [encodedId, tokens, hash, delta, ROLE_CODES[message.role] ?? message.role, message.content];
  });
}

export function decodeList(values: Array<EncodedMessage | LegacyMessage>): StoredMessage[] {
  let previous = 0;
  const cursor: IdCursor = { counter: 0 };
  return values.map((value) => {
    if (!Array.isArray(value)) {
      previous = value.at;
      return { ...value, hash: shortHash(value.hash) };
    }
    if (value.length === 5) {
      const [id, tokens, hash, at, message] = value;
      previous = at;
      return { id, message, tokens, hash: shortHash(hash), at };
    }
    const [id, tokens, hash, delta, role, content] = value as EncodedMessage;
    const at = (previous += delta);
    const message =
      role === WHOLE
        ? (content as StoredMessage['message'])
        : { role: typeof role === 'number' ? ROLES[role]! : role, content: content as string };
    return { id: decodeId(id, cursor), message, tokens, hash: shortHash(hash), at };
  });
}

/** Hashes were 22 characters before; today's are their first HASH_LENGTH, so old sessions still reconcile. */
function shortHash(hash: string): string {
  return hash.length > HASH_LENGTH ? hash.slice(0, HASH_LENGTH) : hash;
}
