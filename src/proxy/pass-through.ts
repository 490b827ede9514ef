import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { UpstreamUnavailableError } from '../errors.js';
import { rewriteProxyPath } from '../upstream/headers.js';
import type { Logger } from 'pino';

/**
 * Every provider route mnemo does not remember (models, embeddings, audio,
 * files, responses…) streams through untouched. http-proxy drops hop-by-hop
 * headers itself (RFC 9110 §7.6.1).
 */
export type PassThrough = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function passThrough(options: {
  upstreamUrl: string;
  timeoutMs: number;
  logger: Logger;
  /** Request headers that are mnemo's alone (the session headers), read per request so a reload applies. */
  ownHeaders: () => string[];
}): PassThrough {
  const target = new URL(options.upstreamUrl);
  // Without an agent http-proxy sends `Connection: close` upstream, and the provider's answer
  // then closes the client's connection too: every request would pay for a new TCP (and TLS) handshake.
  const agent =
    target.protocol === 'https:'
      ? new HttpsAgent({ keepAlive: true, maxSockets: 256 })
      : new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const middleware = createProxyMiddleware({
    target: target.href,
    agent,
    changeOrigin: true,
    proxyTimeout: options.timeoutMs,
    pathRewrite: (path) => rewriteProxyPath(options.upstreamUrl, path),
    on: {
      proxyReq: (proxyRequest) => {
        for (const name of proxyRequest.getHeaderNames()) if (name.startsWith('x-mnemo-')) proxyRequest.removeHeader(name);
        for (const name of options.ownHeaders()) proxyRequest.removeHeader(name);
      },
      proxyRes: (proxyResponse, _req, res) => {
        // A provider that breaks its body midway: end the client's connection too, at once,
        // rather than leaving it waiting for bytes that will never come.
        proxyResponse.on('close', () => {
          if (!proxyResponse.complete) (res as ServerResponse).destroy();
        });
        // mnemo's X-Request-Id names the request end to end; the provider's goes back under its own name.
        const upstreamId = proxyResponse.headers['x-request-id'];
        if (upstreamId !== undefined) {
          proxyResponse.headers['x-upstream-request-id'] = upstreamId;
          delete proxyResponse.headers['x-request-id'];
        }
      },
      error: (error, _req, res) => {
        options.logger.warn({ err: error }, 'pass-through upstream error');
        const body = JSON.stringify(new UpstreamUnavailableError(error).toBody());
        if ('writeHead' in res) {
          const response = res as ServerResponse;
          if (!response.headersSent) response.writeHead(502, { 'content-type': 'application/json' });
          response.end(body);
        } else {
          (res as Socket).destroy();
        }
      },
    },
  });
  // The whole exchange is bounded like a memory turn's: upstream.timeout_ms from the request's start.
  return (req, res) => {
    const deadline = setTimeout(() => res.destroy(), options.timeoutMs);
    res.once('close', () => clearTimeout(deadline));
    return middleware(req, res);
  };
}
