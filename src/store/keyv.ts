import Keyv, { type KeyvStoreAdapter } from 'keyv';

/** Every mnemo key lives under this namespace, in every backend. */
export const NAMESPACE = 'mnemo';

/**
 * A Keyv over `store` as every backend uses it. throwOnErrors: a failing
 * backend must surface as an error, never as an empty session that the next
 * commit would then overwrite. Plain JSON.parse/stringify: mnemo stores only
 * JSON values, and Keyv's default (a reviver that restores Buffers) cost ~11%
 * of CPU per turn in a profile. The Redis adapter prefixes keys itself
 * ("mnemo::…"), so Keyv's own prefix is turned off there.
 */
export function keyvOver(store: KeyvStoreAdapter, options: { prefixed?: boolean } = {}): Keyv {
  return new Keyv({
    store,
    namespace: NAMESPACE,
    throwOnErrors: true,
    useKeyPrefix: options.prefixed ?? true,
    serialize: (data) => JSON.stringify(data),
    deserialize: (data) => (typeof data === 'string' ? JSON.parse(data) : data),
  });
}

/** A value as Keyv stores it, so raw writes (scripts, SQL) read back through Keyv unchanged. */
export function envelope(value: unknown): string {
  return JSON.stringify({ value });
}

/**
 * A store URL that cannot work. Backends describe the URL; the factory names the
 * setting it came from (MNEMO_STORE or MNEMO_COLD_STORE) in front.
 */
export class StoreConfigError extends Error {
  override name = 'StoreConfigError';
}

/** Hides a password in a connection URL before it reaches a log line or an error. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):([^@/]*)@/, '//$1:***@');
}
