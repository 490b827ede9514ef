import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

// RFC 9110 §7.6.1: hop-by-hop fields describe one connection and must not be
// forwarded by a proxy, nor may any field the Connection header names.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Headers the proxy recomputes or that belong to mnemo rather than the provider.
 * Content-Encoding goes too: mnemo decoded the body it read and forwards it plain.
 */
const REQUEST_OWN = new Set(['host', 'content-length', 'content-encoding', 'expect', 'accept-encoding']);

/** The field names a Connection header lists (lower case): hop-by-hop for this message too. */
function connectionTokens(connection: string | string[] | undefined): ReadonlySet<string> {
  if (connection === undefined) return NONE;
  const listed = Array.isArray(connection) ? connection.join(',') : connection;
  return new Set(
    listed
      .toLowerCase()
      .split(',')
      .map((token) => token.trim()),
  );
}

const NONE: ReadonlySet<string> = new Set();

/**
 * End-to-end request headers for the provider: Authorization, api-key,
 * OpenAI-Organization/Project and the rest go through; hop-by-hop, mnemo's own
 * (`x-mnemo-*`, the session header and aliases) and length/encoding do not —
 * mnemo asks for an identity-encoded body because it reads the reply.
 */
export function forwardRequestHeaders(incoming: IncomingHttpHeaders, drop: ReadonlySet<string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionTokens(incoming.connection);
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (REQUEST_OWN.has(name) || drop.has(name) || name.startsWith('x-mnemo-')) continue;
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  out['accept-encoding'] = 'identity';
  return out;
}

/** Provider response headers for the client, minus hop-by-hop and (when mnemo may change the body) length. */
export function forwardResponseHeaders(
  incoming: Record<string, string | string[] | undefined>,
  options: { dropLength: boolean },
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = connectionTokens(incoming.connection);
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    if (options.dropLength && lower === 'content-length') continue;
    // mnemo's own X-Request-Id (set before this) names the request end to end; the provider's
    // id for its part goes back under its own name, for support tickets with the provider.
    if (lower === 'x-request-id') {
      out['x-upstream-request-id'] = value;
      continue;
    }
    out[lower] = value;
  }
  return out;
}

/**
 * Where a client path lands upstream. Clients use a base URL ending in /v1 on
 * mnemo as they would on OpenAI, so a /v1 the upstream URL already ends with is
 * not repeated; Azure-style paths (/openai/deployments/…) are appended as they are.
 */
export function upstreamTarget(baseUrl: string, originalUrl: string): string {
  const { origin, basePath } = parsedBase(baseUrl);
  let path = originalUrl;
  if (basePath.endsWith('/v1') && (path === '/v1' || path.startsWith('/v1/') || path.startsWith('/v1?'))) path = path.slice(3);
  return `${origin}${basePath}${path}`;
}

const bases = new Map<string, { origin: string; basePath: string }>();

/** Upstream base URLs come from config: each is parsed once, not on every call. */
function parsedBase(baseUrl: string): { origin: string; basePath: string } {
  let parsed = bases.get(baseUrl);
  if (!parsed) {
    const base = new URL(baseUrl);
    parsed = { origin: base.origin, basePath: base.pathname.replace(/\/+$/, '') };
    bases.set(baseUrl, parsed);
  }
  return parsed;
}

/** Strips the /v1 the upstream base already carries, for http-proxy (which prepends the target's path). */
export function rewriteProxyPath(baseUrl: string, path: string): string {
  const { origin, basePath } = parsedBase(baseUrl);
  return upstreamTarget(baseUrl, path).slice(origin.length + basePath.length) || '/';
}
