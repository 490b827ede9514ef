import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { ServerResponse } from 'node:http';
import { BadRequestError } from '../errors.js';

/** How many recent keys a session remembers (the retry window of a client or load balancer). */
export const RECENT_KEYS = 64;

/** A completed answer, kept so a retry gets the same bytes without a second provider call. */
export interface StoredAnswer {
  status: number;
  contentType: string;
  body: string; // base64
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

/** The side-record name of a key's answer (hashed: keys are client-chosen text). */
export function answerName(key: string): string {
  return `idem:${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`;
}

export function replay(res: ServerResponse, answer: StoredAnswer): void {
  const body = Buffer.from(answer.body, 'base64');
  res.setHeader('X-Mnemo-Idempotent-Replay', 'true');
  res.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': body.length });
  res.end(body);
}
