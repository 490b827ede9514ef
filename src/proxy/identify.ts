import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config/schema.js';
import { BadRequestError, MissingCredentialError } from '../errors.js';

export const SESSION_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const TENANT_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The session id from the first configured header present; undefined when the request opts out of memory. */
export function readSessionId(headers: IncomingHttpHeaders, names: readonly string[]): string | undefined {
  for (const name of names) {
    if (headers[name] === undefined) continue;
    const id = header(headers, name);
    if (id === undefined || !SESSION_ID_PATTERN.test(id)) {
      throw new BadRequestError(`Header ${name} must match ${SESSION_ID_PATTERN.source} (1-128 letters, digits, '.', '_', ':' or '-').`, {
        param: name,
        code: 'invalid_session_id',
      });
    }
    return id;
  }
  return undefined;
}

export function validateId(id: string, what = 'Session id'): string {
  if (!SESSION_ID_PATTERN.test(id))
    throw new BadRequestError(`${what} must match ${SESSION_ID_PATTERN.source}.`, { param: 'id', code: 'invalid_id' });
  return id;
}

/** Tenant of a provider API key: a hash, so raw keys are never stored or logged. */
export function tenantOfKey(key: string): string {
  return `k${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}

/** Headers that carry a provider API key by itself (Azure, Anthropic-style gateways, Google). */
const KEY_HEADERS = ['api-key', 'x-api-key', 'x-goog-api-key'];

/**
 * The provider credential a request carries, in any form providers use: a
 * bearer token, another Authorization scheme (Basic: the whole value), or a
 * key header. Undefined when there is none (an empty bearer is none).
 */
export function providerCredential(headers: IncomingHttpHeaders): string | undefined {
  const authorization = /^(\S+)\s*(.*)$/.exec(header(headers, 'authorization')?.trim() ?? '');
  const token = authorization?.[2]?.trim();
  if (authorization && token) return authorization[1]!.toLowerCase() === 'bearer' ? token : `${authorization[1]!.toLowerCase()} ${token}`;
  for (const name of KEY_HEADERS) {
    const key = header(headers, name)?.trim();
    if (key) return key;
  }
  return undefined;
}

/**
 * The tenant a chat request belongs to, per `tenancy.mode`. In api_key mode a
 * request without a credential is refused: a shared "anonymous" tenant let
 * every keyless caller read every other keyless caller's sessions.
 */
export function requestTenant(headers: IncomingHttpHeaders, tenancy: Config['tenancy']): string {
  if (tenancy.mode === 'none') return 'default';
  if (tenancy.mode === 'header') return namedTenant(header(headers, tenancy.header), tenancy.header);
  const credential = providerCredential(headers);
  if (credential === undefined) throw new MissingCredentialError();
  return tenantOfKey(credential);
}

/**
 * The tenant an admin call acts on: X-Mnemo-Tenant (a tenant id) or
 * X-Mnemo-Tenant-Key (a provider key, hashed like chat requests' keys).
 */
export function adminTenant(headers: IncomingHttpHeaders, tenancy: Config['tenancy']): string {
  if (tenancy.mode === 'none') return 'default';
  const key = header(headers, 'x-mnemo-tenant-key');
  if (key !== undefined && tenancy.mode === 'api_key') return tenantOfKey(key);
  const named = header(headers, 'x-mnemo-tenant') ?? (tenancy.mode === 'header' ? header(headers, tenancy.header) : undefined);
  if (named === undefined) {
    throw new BadRequestError('Name the tenant: X-Mnemo-Tenant-Key (the provider API key) or X-Mnemo-Tenant (a tenant id).', {
      param: 'x-mnemo-tenant',
      code: 'missing_tenant',
    });
  }
  return namedTenant(named, 'x-mnemo-tenant');
}

function namedTenant(value: string | undefined, name: string): string {
  if (value === undefined || !TENANT_PATTERN.test(value)) {
    throw new BadRequestError(`Header ${name} must name the tenant (${TENANT_PATTERN.source}).`, { param: name, code: 'invalid_tenant' });
  }
  return value;
}

/** The end user, from the configured header(s) or the body's `user` field. */
export function readUserId(headers: IncomingHttpHeaders, body: object | undefined, users: Config['users']): string | undefined {
  const bodyUser = (body as { user?: unknown } | undefined)?.user;
  for (const name of [users.header, ...users.aliases]) {
    const value = header(headers, name);
    if (value !== undefined) return validateId(value, `Header ${name}`);
  }
  return typeof bodyUser === 'string' && SESSION_ID_PATTERN.test(bodyUser) ? bodyUser : undefined;
}

/** Store key of a session; the tenant prefix keeps customers' equal ids apart. */
export function sessionKey(tenant: string, sessionId: string): string {
  return `${tenant}:${sessionId}`;
}

export function userKey(tenant: string, userId: string): string {
  return `u:${tenant}:${userId}`;
}
