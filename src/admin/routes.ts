import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { BadRequestError, NotFoundError } from '../errors.js';
import { assertJsonDepth } from '../proxy/json-limits.js';
import type { ProxyDeps } from '../proxy/deps.js';
import { adminGuard } from './guard.js';
import { sessionRoutes } from './sessions.js';
import { userRoutes } from './users.js';

/** /mnemo/*: mnemo's own API, behind the admin token, scoped to one tenant per call. */
export function adminRoutes(deps: ProxyDeps, options: { bodyLimit: number | string }): Router {
  const router = Router();
  router.use(adminGuard(deps.config));
  // Preview parses its own (raw) chat body; everything else is JSON.
  const raw = express.raw({ limit: options.bodyLimit, type: () => true });
  const json = (req: Request, res: Response, next: NextFunction) =>
    raw(req, res, (error?: unknown) => {
      if (error) return next(error);
      try {
        req.body = parseAdminJson(req.body, deps.config().server.max_json_depth);
        next();
      } catch (parseError) {
        next(parseError);
      }
    });
  router.use((req, res, next) => (req.path.endsWith('/preview') ? next() : json(req, res, next)));
  router.use('/sessions', sessionRoutes(deps, options));
  router.use('/users', userRoutes(deps));
  router.use((req) => {
    throw new NotFoundError(`Unknown route ${req.method} ${req.originalUrl}.`, 'unknown_route');
  });
  return router;
}

/**
 * An admin body: any JSON value, its depth checked before parsing (deep nesting would overflow
 * the stack when the value is stored: a misleading 503 before). No body: undefined.
 */
function parseAdminJson(body: unknown, maxDepth: number): unknown {
  if (!Buffer.isBuffer(body) || body.length === 0) return undefined;
  assertJsonDepth(body, maxDepth);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new BadRequestError(`Malformed JSON body: ${(error as Error).message}`, { code: 'invalid_json' });
  }
}
