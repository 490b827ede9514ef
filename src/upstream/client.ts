import { Agent, request } from 'undici';

export interface UpstreamRequest {
  url: string;
  method: string;
  headers: Record<string, string | string[]>;
  body?: Buffer | string;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Raw bytes as the provider sent them (no decompression). */
  body: AsyncIterable<Buffer>;
  /** Releases the connection when the body is not read to the end. */
  discard(): void;
}

/** The provider seam: one call, raw bytes in and out. Tests inject their own. */
export type UpstreamClient = (request: UpstreamRequest) => Promise<UpstreamResponse>;

/**
 * The default client: undici's `request` on a keep-alive pool. Chosen over
 * `fetch` because it neither decompresses nor re-frames the body (so bytes
 * reach the client as sent) and costs less per call on the hot path.
 */
export function createUndiciClient(options: { timeoutMs: number; idleTimeoutMs: number }): UpstreamClient & { close(): Promise<void> } {
  // Per-phase limits; the whole exchange is bounded by the caller's deadline (see memory-route.ts).
  const dispatcher = new Agent({
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    connections: 256,
  });
  const client = async (upstreamRequest: UpstreamRequest): Promise<UpstreamResponse> => {
    const response = await request(upstreamRequest.url, {
      method: upstreamRequest.method as 'POST',
      headers: upstreamRequest.headers,
      body: upstreamRequest.body,
      signal: upstreamRequest.signal,
      dispatcher,
    });
    return {
      status: response.statusCode,
      headers: response.headers,
      body: response.body,
      discard: () => response.body.destroy(),
    };
  };
  return Object.assign(client, { close: () => dispatcher.close() });
}
