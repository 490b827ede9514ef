import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { ServerResponse } from 'node:http';
import { BadRequestError, IdempotencyKeyReusedError } from '../errors.js';

/** How many recent keys a session remembers (the retry window of a client or load balancer). */
export const RECENT_KEYS = 64;

/** A completed answer, kept so a retry gets the same bytes without a second provider call. */
export interface StoredAnswer {
  /** The key it answers (slots are shared, see answerName). */
  key: string;
  /** Hash of the request body: the same key with another body is a client bug, answered 422. */
  fingerprint: string;
  at: number;
  status: number;
  contentType: string;
  body: string; // base64
}

/** Answer slots per session: the side records stay bounded however many keys a client uses. */
const ANSWER_SLOTS = 2 * RECENT_KEYS;

export function requestFingerprint(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('base64url').slice(0, 22);
}

/**
 * The stored answer a retry of `key` with body `fingerprint` gets: undefined when there is none
 * (never stored, overwritten by another key in its slot, or older than `ttlMs`); a key reused
 * with a different body is refused, as payment APIs do.
 */
export function answerFor(
  answer: StoredAnswer | undefined,
  key: string,
  fingerprint: string,
  now: number,
  ttlMs: number,
): StoredAnswer | undefined {
  if (!answer || answer.key !== key || now - answer.at > ttlMs) return undefined;
  if (answer.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError();
  return answer;
}

export function readIdempotencyKey(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['idempotency-key'];
  if (value === undefined) return undefined;
  const key = Array.isArray(value) ? value[0] : value;
  if (!key || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new BadRequestError('Idempotency-Key must be 1-255 visible ASCII characters.', {
      param: 'idempotency-key',
      code: 'invalid_idempotency_key',
    });
  }
  return key;
}

/** The side-record slot of a key's answer (hashed: keys are client-chosen text; slots are bounded). */
export function answerName(key: string): string {
  return `idem:${createHash('sha256').update(key).digest().readUInt32BE(0) % ANSWER_SLOTS}`;
}

export function replay(res: ServerResponse, answer: StoredAnswer): void {
  const body = Buffer.from(answer.body, 'base64');
  res.setHeader('X-Mnemo-Idempotent-Replay', 'true');
  res.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': body.length });
  res.end(body);
}
