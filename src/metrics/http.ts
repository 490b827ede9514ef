import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/** What the chat handler learned about a request, for its log line and metrics. */
export interface RequestFacts {
  started: number;
  route: Route;
  requestId: string;
  session?: string;
  model?: string;
  stream?: boolean;
  baselineTokens?: number;
  sentTokens?: number;
  upstreamMs?: number;
  provider?: string;
  memory?: string;
  /** The provider's own request id (its x-request-id), for tickets with the provider. */
  upstreamRequestId?: string;
}

export type Route = 'chat_completions' | 'responses' | 'admin' | 'health' | 'metrics' | 'passthrough';

/**
 * The route a path belongs to; any path ending in /chat/completions or /responses, so Azure's
 * deployment paths count. (…/responses/{id}, …/input_items and the like are pass-through.)
 */
export function routeOf(path: string): Route {
  if (/\/chat\/completions\/?$/.test(path)) return 'chat_completions';
  if (/\/responses\/?$/.test(path)) return 'responses';
  if (path === '/mnemo' || path.startsWith('/mnemo/')) return 'admin';
  if (path === '/healthz' || path === '/readyz') return 'health';
  if (path === '/metrics') return 'metrics';
  return 'passthrough';
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Times and counts every request and writes its one log line: ids hashed,
 * never message content. mnemo's overhead is end-to-end minus upstream time.
 */
export function observeRequest(req: IncomingMessage, res: ServerResponse, metrics: Metrics | undefined, logger: Logger): RequestFacts {
  const incoming = req.headers['x-request-id'];
  const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  const route = routeOf(query === -1 ? url : url.slice(0, query));
  const facts: RequestFacts = { started: performance.now(), route, requestId };
  res.setHeader('X-Request-Id', requestId);
  metrics?.inFlight.inc();
  res.once('close', () => {
    metrics?.inFlight.dec();
    const totalMs = performance.now() - facts.started;
    const stream = String(facts.stream === true);
    const status = res.headersSent ? res.statusCode : 499;
    metrics?.requests.inc({ route, status_class: `${Math.floor(status / 100)}xx`, stream });
    metrics?.requestDuration.observe({ route, stream }, totalMs / 1000);
    if (facts.upstreamMs !== undefined) {
      metrics?.overhead.observe({ route, stream }, Math.max(0, totalMs - facts.upstreamMs) / 1000);
      metrics?.upstreamDuration.observe({ provider: facts.provider ?? 'unknown', stream }, facts.upstreamMs / 1000);
    }
    if (route === 'health' || route === 'metrics' || !logger.isLevelEnabled('info')) return;
    logger.info(
      {
        requestId,
        method: req.method,
        route,
        status,
        session: facts.session,
        model: facts.model,
        stream: facts.stream,
        memory: facts.memory,
        upstreamRequestId: facts.upstreamRequestId,
        tokens: facts.sentTokens === undefined ? undefined : { baseline: facts.baselineTokens, sent: facts.sentTokens },
        durationMs: round(totalMs),
        upstreamMs: facts.upstreamMs === undefined ? undefined : round(facts.upstreamMs),
        overheadMs: facts.upstreamMs === undefined ? undefined : round(totalMs - facts.upstreamMs),
      },
      'request',
    );
  });
  return facts;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
