import express, { type Express } from 'express';
import { adminRoutes } from './admin/routes.js';
import { errorMiddleware } from './errors.js';
import { chatCompletions } from './proxy/chat-completions.js';
import { sessionHeaders, type ProxyDeps } from './proxy/deps.js';
import { readSessionId } from './proxy/identify.js';
import { passThrough } from './proxy/pass-through.js';
import { requestObserver } from './metrics/http.js';
import { metricsRoute } from './metrics/route.js';

export interface AppOptions {
  /** Readiness beyond "store answers": false while shutting down. */
  accepting?: () => boolean;
}

/** Routes: health, mnemo's admin API, chat completions with memory, everything else passed through. */
export function createApp(deps: ProxyDeps, options: AppOptions = {}): Express {
  const config = deps.config();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use(requestObserver(deps.metrics, deps.logger));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (options.accepting && !options.accepting()) {
      res.status(503).json({ status: 'shutting_down' });
      return;
    }
    try {
      await deps.store.ping();
      res.json({ status: 'ready', store: deps.store.backend });
    } catch (error) {
      res.status(503).json({ status: 'store_unavailable', store: deps.store.backend, message: (error as Error).message });
    }
  });

  app.get('/metrics', metricsRoute(deps));
  app.use('/mnemo', adminRoutes(deps, { bodyLimit: config.server.body_limit }));
  const proxy = passThrough({ upstreamUrl: config.upstream.url, timeoutMs: config.upstream.timeout_ms, logger: deps.logger });
  // Any path ending in /chat/completions, so Azure's /openai/deployments/{d}/chat/completions works too.
  app.post(
    /\/chat\/completions\/?$/,
    (req, res, next) => {
      // No session and no model routes: nothing for mnemo to read, so the request streams through
      // http-proxy untouched instead of being buffered and parsed.
      const current = deps.config();
      if (current.upstream.routes.length > 0 || readSessionId(req.headers, sessionHeaders(current)) !== undefined) return next();
      res.setHeader('X-Mnemo-Memory', 'bypass');
      return proxy(req, res, next);
    },
    express.raw({ type: () => true, limit: config.server.body_limit }),
    chatCompletions(deps),
  );
  app.use(proxy);
  app.use(errorMiddleware(deps.logger));
  return app;
}
