import type { RequestListener } from 'node:http';
import express, { type Express } from 'express';
import { adminRoutes } from './admin/routes.js';
import { errorMiddleware, respondWithError } from './errors.js';
import { chatCompletionsAdapter } from './proxy/chat-adapter.js';
import { memoryRoute } from './proxy/memory-route.js';
import { responsesAdapter } from './proxy/responses-adapter.js';
import { sessionHeaders, type ProxyDeps } from './proxy/deps.js';
import { passThrough, type PassThrough } from './proxy/pass-through.js';
import { observeRequest } from './metrics/http.js';
import { metricsRoute } from './metrics/route.js';

export interface AppOptions {
  /** Readiness beyond "store answers": false while shutting down. */
  accepting?: () => boolean;
}

/**
 * mnemo's HTTP front. Chat completions and responses, the paths every call takes, are served
 * by a plain node:http handler: no router, the body read once. Profiles showed
 * express routing and body-parser as ~15% of a turn's CPU. mnemo's own routes
 * (health, metrics, admin) stay an express app; every other path streams
 * through to the provider untouched.
 */
export function createRequestHandler(deps: ProxyDeps, options: AppOptions = {}): RequestListener {
  const config = deps.config();
  const proxy = passThrough({
    upstreamUrl: config.upstream.url,
    timeoutMs: config.upstream.timeout_ms,
    logger: deps.logger,
    ownHeaders: () => sessionHeaders(deps.config()),
  });
  const chat = memoryRoute(deps, proxy, chatCompletionsAdapter);
  const responses = memoryRoute(deps, proxy, responsesAdapter);
  const own = ownRoutes(deps, options, proxy);

  return (req, res) => {
    const facts = observeRequest(req, res, deps.metrics, deps.logger);
    switch (facts.route) {
      case 'chat_completions':
      case 'responses': {
        if (req.method !== 'POST') return void proxy(req, res);
        const handler = facts.route === 'responses' ? responses : chat;
        return void handler(req, res, facts).catch((error: unknown) => respondWithError(res, error, deps.logger));
      }
      case 'passthrough':
        // Routes without memory (models, embeddings, files, …): said so, and no session header goes upstream.
        res.setHeader('X-Mnemo-Memory', 'bypass');
        return void proxy(req, res);
      default:
        return own(req, res);
    }
  };
}

/** Health, readiness, metrics and the admin API; anything else on these paths goes to the provider. */
function ownRoutes(deps: ProxyDeps, options: AppOptions, proxy: PassThrough): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (options.accepting && !options.accepting()) {
      res.status(503).json({ status: 'shutting_down' });
      return;
    }
    // Turns waiting for the store in this instance's outbox, so an operator sees a drain in progress.
    const waiting = deps.outbox?.box.depth();
    const outbox = waiting && { depth: waiting.depth, draining: waiting.depth > 0, oldest_at: waiting.oldestAt ?? null };
    try {
      await deps.store.ping();
      res.json({ status: 'ready', store: deps.store.backend, outbox });
    } catch (error) {
      res.status(503).json({ status: 'store_unavailable', store: deps.store.backend, message: (error as Error).message, outbox });
    }
  });
  app.get('/metrics', metricsRoute(deps));
  app.use('/mnemo', adminRoutes(deps, { bodyLimit: deps.config().server.body_limit }));
  app.use((req, res) => void proxy(req, res));
  app.use(errorMiddleware(deps.logger));
  return app;
}
