import type { IncomingHttpHeaders } from 'node:http';
import { BadRequestError } from '../errors.js';

export const SESSION_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** The session id from the first configured header present; undefined when the request opts out of memory. */
export function readSessionId(headers: IncomingHttpHeaders, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = headers[name];
    if (value === undefined) continue;
    const id = Array.isArray(value) ? value[0] : value;
    if (id === undefined || !SESSION_ID_PATTERN.test(id)) {
      throw new BadRequestError(`Header ${name} must match ${SESSION_ID_PATTERN.source} (1-128 letters, digits, '.', '_', ':' or '-').`, {
        param: name,
        code: 'invalid_session_id',
      });
    }
    return id;
  }
  return undefined;
}

export function validateSessionId(id: string): string {
  if (!SESSION_ID_PATTERN.test(id)) {
    throw new BadRequestError(`Session id must match ${SESSION_ID_PATTERN.source}.`, { param: 'id', code: 'invalid_session_id' });
  }
  return id;
}

/** Store key of a session; the tenant prefix keeps customers' equal ids apart. */
export function sessionKey(tenant: string, sessionId: string): string {
  return `${tenant}:${sessionId}`;
}

export const DEFAULT_TENANT = 'default';
