import { GenerationalCache } from './generational-cache.js';

/**
 * A bounded memo of a pure string function (see GenerationalCache). Per-session values (a log
 * id, a prompt cache key) are hashed from the same session key turn after turn; a hash costs
 * more than the lookup. Never for secrets: the keys stay in memory.
 */
export function memoized(fn: (key: string) => string, limit = 10_000): (key: string) => string {
  const values = new GenerationalCache<string, string>(limit);
  return (key) => {
    let value = values.get(key);
    if (value === undefined) {
      value = fn(key);
      values.set(key, value);
    }
    return value;
  };
}
