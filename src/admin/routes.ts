import express, { Router } from 'express';
import { NotFoundError } from '../errors.js';
import type { ProxyDeps } from '../proxy/deps.js';
import { adminGuard } from './guard.js';
import { sessionRoutes } from './sessions.js';
import { userRoutes } from './users.js';

/** /mnemo/*: mnemo's own API, behind the admin token, scoped to one tenant per call. */
export function adminRoutes(deps: ProxyDeps, options: { bodyLimit: number | string }): Router {
  const router = Router();
  router.use(adminGuard(deps.config));
  // Preview parses its own (raw) chat body; everything else is JSON.
  const json = express.json({ limit: options.bodyLimit, strict: false, type: () => true });
  router.use((req, res, next) => (req.path.endsWith('/preview') ? next() : json(req, res, next)));
  router.use('/sessions', sessionRoutes(deps, options));
  router.use('/users', userRoutes(deps));
  router.use((req) => {
    throw new NotFoundError(`Unknown route ${req.method} ${req.originalUrl}.`, 'unknown_route');
  });
  return router;
}
