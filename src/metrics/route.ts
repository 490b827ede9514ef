import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { NotFoundError, UnauthorizedError } from '../errors.js';
import type { ProxyDeps } from '../proxy/deps.js';

/** GET /metrics in Prometheus text format; behind a bearer token when `metrics.token` is set. */
export function metricsRoute(deps: Pick<ProxyDeps, 'config' | 'metrics'>): RequestHandler {
  return async (req, res) => {
    const { enabled, token } = deps.config().metrics;
    if (!enabled) throw new NotFoundError('Metrics are disabled (metrics.enabled: false).', 'unknown_route');
    if (token !== null) {
      const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() ?? '';
      const equal = timingSafeEqual(createHash('sha256').update(presented).digest(), createHash('sha256').update(token).digest());
      if (!equal) throw new UnauthorizedError('Missing or invalid metrics token.');
    }
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.end(await deps.metrics.render());
  };
}
