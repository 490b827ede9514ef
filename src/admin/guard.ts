import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { NotFoundError, UnauthorizedError } from '../errors.js';
import type { Config } from '../config/schema.js';

/**
 * Admin routes answer only with the configured bearer token. With no token
 * configured the admin API is off — it answers 404 as if it did not exist —
 * never open.
 */
export function adminGuard(config: () => Config): RequestHandler {
  return (req, _res, next) => {
    const token = config().server.admin_token;
    if (token === null) throw new NotFoundError(`Unknown route ${req.method} ${req.originalUrl}.`, 'unknown_route');
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    if (presented === undefined || !constantTimeEqual(presented, token)) throw new UnauthorizedError();
    next();
  };
}

/** Equal-length digests first, so the comparison leaks neither content nor length. */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
