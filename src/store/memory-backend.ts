import type { KeyValueBackend } from './chunked-keyv-store.js';

/**
 * The in-process store's records: a Map holding the values themselves. Keyv
 * would JSON-encode every record on write and decode it on read, which cost a
 * memory-store turn about a fifth of its CPU for nothing: the value never
 * leaves the process. Instead each value is frozen, deeply, as it is written:
 * a reader that tried to change a stored record in place would throw rather
 * than silently change what every later reader sees. (Records are built fresh
 * for each write; nothing written is changed afterwards.)
 */
export class MemoryBackend implements KeyValueBackend {
  private readonly records = new Map<string, unknown>();

  async get<T>(key: string): Promise<T | undefined> {
    return this.records.get(key) as T | undefined;
  }

  async getMany<T>(keys: string[]): Promise<Array<T | undefined>> {
    return keys.map((key) => this.records.get(key) as T | undefined);
  }

  async set(key: string, value: unknown): Promise<void> {
    this.records.set(key, deepFreeze(value));
  }

  async setMany(entries: Array<{ key: string; value: unknown }>): Promise<void> {
    for (const { key, value } of entries) this.records.set(key, deepFreeze(value));
  }

  async delete(key: string): Promise<boolean> {
    return this.records.delete(key);
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    let any = false;
    for (const key of keys) any = this.records.delete(key) || any;
    return any;
  }

  async disconnect(): Promise<void> {}

  /** Keys starting with `prefix`, for the store's scans. */
  *keys(prefix: string): Iterable<string> {
    for (const key of [...this.records.keys()]) if (key.startsWith(prefix)) yield key;
  }
}

/** Freezes `value` and everything it holds; already-frozen parts (shared with an earlier record) are skipped. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  // Posting lists are long arrays of numbers: visit only what can be frozen, allocate nothing.
  if (Array.isArray(value)) {
    for (const child of value) if (typeof child === 'object' && child !== null) deepFreeze(child);
  } else {
    for (const key in value) {
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) deepFreeze(child);
    }
  }
  return value;
}
