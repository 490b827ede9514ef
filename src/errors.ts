import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';

/** The OpenAI error body, so clients' existing error handling keeps working. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Base of every error mnemo itself raises; the one error middleware maps it to HTTP. */
export class MnemoError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = new.target.name;
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export class BadRequestError extends MnemoError {
  constructor(message: string, options: { param?: string; code?: string } = {}) {
    super(message, 400, 'invalid_request_error', options.code ?? null, options.param ?? null);
  }
}

export class UnauthorizedError extends MnemoError {
  constructor(message = 'Missing or invalid admin token.') {
    super(message, 401, 'authentication_error', 'invalid_admin_token');
  }
}

/** tenancy.mode api_key: sessions belong to a provider credential, and this request has none. */
export class MissingCredentialError extends MnemoError {
  constructor() {
    super(
      'A request with a session header must carry a provider credential (Authorization, api-key, x-api-key or x-goog-api-key): ' +
        'sessions belong to the credential that made them. For a single-tenant deployment without keys, set tenancy.mode: none.',
      401,
      'authentication_error',
      'missing_credentials',
    );
  }
}

export class NotFoundError extends MnemoError {
  constructor(message: string, code = 'not_found') {
    super(message, 404, 'invalid_request_error', code);
  }
}

export class ConflictError extends MnemoError {
  constructor(message: string, code: string) {
    super(message, 409, 'invalid_request_error', code);
  }
}

export class IdempotencyKeyReusedError extends MnemoError {
  constructor() {
    super(
      'This Idempotency-Key was already used with a different request body; use a new key for a new request.',
      422,
      'invalid_request_error',
      'idempotency_key_reused',
      'idempotency-key',
    );
  }
}

export class PayloadTooLargeError extends MnemoError {
  constructor(limit: number) {
    super(`Request body is larger than the configured limit of ${limit} bytes.`, 413, 'invalid_request_error', 'payload_too_large');
  }
}

export class UnsupportedMediaTypeError extends MnemoError {
  constructor(contentType: string | undefined) {
    super(`Content-Type must be application/json, got ${contentType ?? 'none'}.`, 415, 'invalid_request_error', 'unsupported_media_type');
  }
}

export class UnsupportedEncodingError extends MnemoError {
  constructor(encoding: string) {
    super(
      `Content-Encoding ${encoding} is not supported; use gzip, deflate, br or identity.`,
      415,
      'invalid_request_error',
      'unsupported_encoding',
    );
  }
}

export class RequestAbortedError extends MnemoError {
  constructor() {
    super('Client closed the request before its body was complete.', 400, 'invalid_request_error', 'request_aborted');
  }
}

export class StoreUnavailableError extends MnemoError {
  constructor(cause: unknown) {
    super(`Session store unavailable: ${describe(cause)}`, 503, 'server_error', 'store_unavailable');
    this.cause = cause;
  }
}

export class UpstreamUnavailableError extends MnemoError {
  constructor(cause: unknown) {
    super(`Upstream provider unreachable: ${describe(cause)}`, 502, 'server_error', 'upstream_unavailable');
    this.cause = cause;
  }
}

export class UpstreamTimeoutError extends MnemoError {
  constructor(timeoutMs: number) {
    super(`Upstream provider did not answer within ${timeoutMs} ms.`, 504, 'server_error', 'upstream_timeout');
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * The one place errors become HTTP responses, for the chat path and the
 * express routes alike: mapped to a MnemoError, logged when it is mnemo's
 * fault, written as OpenAI's error body.
 */
export function respondWithError(res: ServerResponse, error: unknown, logger: Logger): void {
  const mapped = toMnemoError(error);
  if (mapped.status >= 500) logger.error({ err: error }, mapped.message);
  if (res.headersSent) {
    // A stream already started: the status line is gone, so end the response.
    res.destroy();
    return;
  }
  const body = JSON.stringify(mapped.toBody());
  res.writeHead(mapped.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (error, _req, res, _next) => respondWithError(res, error, logger);
}

/** Maps express/body-parser and unknown errors onto mnemo's classes. */
export function toMnemoError(error: unknown): MnemoError {
  if (error instanceof MnemoError) return error;
  const candidate = error as { type?: string; status?: number; limit?: number; message?: string };
  if (candidate?.type === 'entity.too.large') return new PayloadTooLargeError(candidate.limit ?? 0);
  if (candidate?.type === 'entity.parse.failed')
    return new BadRequestError(`Malformed JSON body: ${candidate.message}`, { code: 'invalid_json' });
  if (candidate?.type === 'encoding.unsupported' || candidate?.type === 'charset.unsupported') {
    return new MnemoError(candidate.message ?? 'Unsupported encoding.', 415, 'invalid_request_error', 'unsupported_encoding');
  }
  if (candidate?.type === 'request.aborted') return new RequestAbortedError();
  if (typeof candidate?.status === 'number' && candidate.status >= 400 && candidate.status < 500) {
    return new MnemoError(candidate.message ?? 'Bad request.', candidate.status, 'invalid_request_error');
  }
  return new MnemoError('Internal error in mnemo.', 500, 'server_error', 'internal_error');
}
