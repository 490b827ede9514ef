import type { Config } from '../config/schema.js';
import { BadRequestError } from '../errors.js';

/** Limits on a request's shape, from `server.*`: work per request stays bounded and linear. */
export interface JsonLimits {
  maxDepth: number;
  maxMessages: number;
}

export function jsonLimits(server: Config['server']): JsonLimits {
  return { maxDepth: server.max_json_depth, maxMessages: server.max_messages };
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Rejects JSON nested deeper than `maxDepth`, by one pass over the raw bytes
 * before parsing. JSON.parse copes with 10⁵ levels, but JSON.stringify and
 * every recursive walk after it overflow the stack (a 500 before this check).
 */
export function assertJsonDepth(raw: Uint8Array, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let at = 0; at < raw.length; at++) {
    const byte = raw[at]!;
    if (inString) {
      if (byte === BACKSLASH) at++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > maxDepth) {
        throw new BadRequestError(`JSON body is nested more than ${maxDepth} levels deep (server.max_json_depth).`, {
          code: 'json_too_deep',
        });
      }
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
  }
}

export function assertMessageCount(messages: unknown[], maxMessages: number, param = 'messages'): void {
  if (messages.length > maxMessages) {
    throw new BadRequestError(`'${param}' holds ${messages.length} items; at most ${maxMessages} are accepted (server.max_messages).`, {
      param,
      code: 'too_many_messages',
    });
  }
}
