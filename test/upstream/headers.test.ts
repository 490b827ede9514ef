import { describe, expect, it } from 'vitest';
import { forwardRequestHeaders, forwardResponseHeaders, rewriteProxyPath, upstreamTarget } from '../../src/upstream/headers.js';

describe('request headers for the provider', () => {
  it('drops hop-by-hop fields and every field the Connection header names, keeps end-to-end ones', () => {
    const out = forwardRequestHeaders(
      {
        authorization: 'Bearer sk',
        connection: 'keep-alive, X-Trace-Hop',
        'keep-alive': 'timeout=5',
        'x-trace-hop': 'one hop only',
        'x-custom': 'kept',
        'transfer-encoding': 'chunked',
        'x-session-id': 's-1',
        'x-mnemo-debug': '1',
        'content-length': '12',
        'content-encoding': 'gzip',
      },
      new Set(['x-session-id']),
    );
    expect(out).toEqual({ authorization: 'Bearer sk', 'x-custom': 'kept', 'accept-encoding': 'identity' });
  });
});

describe('response headers for the client', () => {
  it('drops hop-by-hop and Connection-listed fields whatever their case; length only when asked', () => {
    const incoming = { 'Content-Type': 'application/json', Connection: 'close, X-Hop', 'x-hop': '1', 'content-length': '10' };
    // undici hands headers lower-cased, but a listed name must match whatever its case.
    const out = forwardResponseHeaders({ ...incoming, connection: incoming.Connection }, { dropLength: false });
    expect(out).toEqual({ 'content-type': 'application/json', 'content-length': '10' });
    expect(forwardResponseHeaders({ 'content-length': '10', 'x-a': 'b' }, { dropLength: true })).toEqual({ 'x-a': 'b' });
  });
});

describe('upstream paths', () => {
  it('does not repeat the /v1 the base already ends with, and keeps Azure paths and queries', () => {
    expect(upstreamTarget('https://api.openai.com/v1', '/v1/chat/completions')).toBe('https://api.openai.com/v1/chat/completions');
    expect(upstreamTarget('http://127.0.0.1:11434/v1/', '/v1/models?x=1')).toBe('http://127.0.0.1:11434/v1/models?x=1');
    expect(upstreamTarget('https://r.openai.azure.com', '/openai/deployments/d/chat/completions?api-version=1')).toBe(
      'https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=1',
    );
    expect(rewriteProxyPath('http://h:1/v1', '/v1/models')).toBe('/models');
    expect(rewriteProxyPath('http://h:1/v1', '/v1')).toBe('/');
  });
});
