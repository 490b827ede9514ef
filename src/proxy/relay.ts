import type { ServerResponse } from 'node:http';
import { errors as undiciErrors } from 'undici';
import { MnemoError, UpstreamTimeoutError, UpstreamUnavailableError } from '../errors.js';
import { forwardResponseHeaders } from '../upstream/headers.js';
import type { UpstreamResponse } from '../upstream/client.js';
import type { StreamReader } from './api-adapter.js';
import { GuardedCapture, wholeBodyReader, type NotStoredReason } from './capture-guard.js';
import type { CapturedReply } from './reply-capture.js';
import { UsageChunkFilter } from './sse-usage-filter.js';

/** Moments of a relay the handler times and reacts to. */
export interface RelayHooks {
  /** Just before the status line goes out: the last chance to set headers. */
  beforeHead?: () => void;
  /** The first body bytes from the provider arrived. */
  onFirstChunk?: () => void;
  /** The provider's body has been read to its end. */
  onUpstreamDone?: () => void;
}

/** Bodies up to this size with a known length go out in one write (headers and body together). */
const SINGLE_WRITE_LIMIT = 1 << 20;

/** Sends a provider response back unchanged (status, headers, body) — used for errors and bypass. */
export async function relayUnchanged(upstream: UpstreamResponse, res: ServerResponse, hooks: RelayHooks = {}): Promise<void> {
  const length = Number(upstream.headers['content-length']);
  if (Number.isFinite(length) && length <= SINGLE_WRITE_LIMIT) {
    // A small complete body: one syscall instead of three, and nothing is held back that could be streamed.
    const chunks: Buffer[] = [];
    for await (const chunk of upstream.body) chunks.push(chunk);
    hooks.onUpstreamDone?.();
    hooks.beforeHead?.();
    res.writeHead(upstream.status, forwardResponseHeaders(upstream.headers, { dropLength: false }));
    res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    return;
  }
  hooks.beforeHead?.();
  res.writeHead(upstream.status, forwardResponseHeaders(upstream.headers, { dropLength: false }));
  for await (const chunk of upstream.body) {
    if (!res.write(chunk)) await drained(res);
  }
  hooks.onUpstreamDone?.();
  res.end();
}

/**
 * A non-streamed reply: buffered (it must be parsed), captured, and sent as the
 * provider's exact bytes once `beforeEnd` (the commit) has run.
 */
export async function relayJson(
  upstream: UpstreamResponse,
  res: ServerResponse,
  options: CaptureOptions & { capture: (body: Buffer) => CapturedReply | undefined },
  beforeEnd: (reply: CapturedReply | undefined, body: Buffer) => Promise<void>,
  hooks: RelayHooks = {},
): Promise<CapturedReply | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of upstream.body) chunks.push(chunk);
  hooks.onUpstreamDone?.();
  const body = Buffer.concat(chunks);
  const guard = new GuardedCapture(wholeBodyReader(options.capture), options.maxCaptureBytes, encodingOf(upstream));
  guard.write(body);
  const { reply, notStored } = guard.result();
  if (notStored) options.onNotStored(notStored);
  await beforeEnd(reply, body);
  hooks.beforeHead?.();
  res.writeHead(upstream.status, forwardResponseHeaders(upstream.headers, { dropLength: false }));
  res.end(body);
  return reply;
}

/** How capture is bounded, and who hears about a reply that was delivered but not stored. */
export interface CaptureOptions {
  maxCaptureBytes: number;
  onNotStored: (reason: NotStoredReason) => void;
}

function encodingOf(upstream: UpstreamResponse): string | undefined {
  const value = upstream.headers['content-encoding'];
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * A streamed reply: every read from the provider is written to the client at
 * once (no buffering, no re-chunking) while a copy feeds the capture. When mnemo
 * injected `include_usage`, events are forwarded whole so its usage chunk can
 * be dropped. `beforeEnd` (the commit) runs before the response ends, so a
 * client's next request always sees this turn.
 */
export async function relayStream(
  upstream: UpstreamResponse,
  res: ServerResponse,
  options: CaptureOptions & { stripUsage: boolean; keepCopy?: boolean; reader: StreamReader },
  beforeEnd: (reply: CapturedReply | undefined, body: Buffer) => Promise<void>,
  hooks: RelayHooks = {},
): Promise<CapturedReply | undefined> {
  const capture = new GuardedCapture(options.reader, options.maxCaptureBytes, encodingOf(upstream));
  const filter = options.stripUsage ? new UsageChunkFilter() : undefined;
  hooks.beforeHead?.();
  res.writeHead(upstream.status, forwardResponseHeaders(upstream.headers, { dropLength: true }));
  res.flushHeaders();
  // What the client saw, kept only when a retry may need it replayed (Idempotency-Key).
  const sent: Buffer[] = [];
  let first = true;
  for await (const chunk of upstream.body) {
    if (first) {
      first = false;
      hooks.onFirstChunk?.();
    }
    // The client's bytes go out before mnemo reads its copy: a provider's read often holds many
    // events, and parsing them all first delayed the first token by as much.
    const out = filter ? filter.write(chunk) : chunk;
    const flowing = out.length === 0 || res.write(out);
    if (options.keepCopy && out.length > 0) sent.push(out);
    capture.write(chunk);
    if (!flowing) await drained(res);
  }
  if (filter) {
    const rest = filter.flush();
    if (options.keepCopy && rest.length > 0) sent.push(rest);
    if (rest.length > 0) res.write(rest);
  }
  hooks.onUpstreamDone?.();
  const { reply, notStored } = capture.result();
  if (notStored) options.onNotStored(notStored);
  await beforeEnd(reply, Buffer.concat(sent));
  res.end();
  return reply;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      res.off('drain', onDrain);
      res.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('client closed the connection'));
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Maps a failure to reach the provider onto mnemo's errors (502/504). */
export function upstreamFailure(error: unknown, timeoutMs: number): MnemoError {
  if (error instanceof MnemoError) return error;
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new UpstreamTimeoutError(timeoutMs);
  }
  return new UpstreamUnavailableError(error);
}
