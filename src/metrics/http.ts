import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/** What the chat handler learned about a request, for its log line and metrics. */
export interface RequestFacts {
  started: number;
  requestId: string;
  session?: string;
  model?: string;
  stream?: boolean;
  baselineTokens?: number;
  sentTokens?: number;
  upstreamMs?: number;
  provider?: string;
  memory?: string;
}

export function requestFacts(res: Response): RequestFacts {
  return res.locals.mnemo as RequestFacts;
}

export function routeOf(path: string): string {
  if (/\/chat\/completions\/?$/.test(path)) return 'chat_completions';
  if (path.startsWith('/mnemo/')) return 'admin';
  if (path === '/healthz' || path === '/readyz') return 'health';
  if (path === '/metrics') return 'metrics';
  return 'passthrough';
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Times and counts every request and writes its one log line: ids hashed,
 * never message content. mnemo's overhead is end-to-end minus upstream time.
 */
export function requestObserver(metrics: Metrics | undefined, logger: Logger): RequestHandler {
  return (req: Request, res: Response, next) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const facts: RequestFacts = { started: performance.now(), requestId };
    res.locals.mnemo = facts;
    res.setHeader('X-Request-Id', requestId);
    metrics?.inFlight.inc();
    res.once('close', () => {
      metrics?.inFlight.dec();
      const totalMs = performance.now() - facts.started;
      const route = routeOf(req.path);
      const stream = String(facts.stream === true);
      const status = res.headersSent ? res.statusCode : 499;
      metrics?.requests.inc({ route, status_class: `${Math.floor(status / 100)}xx`, stream });
      metrics?.requestDuration.observe({ route, stream }, totalMs / 1000);
      if (facts.upstreamMs !== undefined) {
        metrics?.overhead.observe({ route, stream }, Math.max(0, totalMs - facts.upstreamMs) / 1000);
        metrics?.upstreamDuration.observe({ provider: facts.provider ?? 'unknown', stream }, facts.upstreamMs / 1000);
      }
      if (route === 'health' || route === 'metrics') return;
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
          tokens: facts.sentTokens === undefined ? undefined : { baseline: facts.baselineTokens, sent: facts.sentTokens },
          durationMs: round(totalMs),
          upstreamMs: facts.upstreamMs === undefined ? undefined : round(facts.upstreamMs),
          overheadMs: facts.upstreamMs === undefined ? undefined : round(totalMs - facts.upstreamMs),
        },
        'request',
      );
    });
    next();
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
