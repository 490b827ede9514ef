import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { NotFoundError, UnauthorizedError } from '../errors.js';
import type { Config } from '../config/schema.js';

/**
 * Admin routes answer only with the configured bearer token; with no token
 * configured, only to loopback callers, and to everyone else as if they did
 * not exist.
 */
export function adminGuard(config: () => Config): RequestHandler {
  return (req, _res, next) => {
    const token = config().server.admin_token;
    if (token === null) {
      if (!isLoopback(req.socket.remoteAddress))
        throw new NotFoundError(`Unknown route ${req.method} ${req.originalUrl}.`, 'unknown_route');
      return next();
    }
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    if (presented === undefined || !constantTimeEqual(presented, token)) throw new UnauthorizedError();
    next();
  };
}

function constantTimeEqual(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so the comparison leaks neither content nor length.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

function isLoopback(address: string | undefined): boolean {
  return address === '::1' || address?.startsWith('127.') === true || address?.startsWith('::ffff:127.') === true;
}
