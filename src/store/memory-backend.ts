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
  /**
   * Records by the key's hash tag ("s:{tenant:session}"), then by the rest: a session's records
   * sit in a small map of their own. One map of every record was slow to probe once it held a
   * few hundred thousand (about 1 µs a key, against 0.3 µs; a turn reads a hundred postings).
   */
  private readonly groups = new Map<string, Map<string, unknown>>();

  async get<T>(key: string): Promise<T | undefined> {
    const [group, rest] = split(key);
    return this.groups.get(group)?.get(rest) as T | undefined;
  }

  async getMany<T>(keys: string[]): Promise<Array<T | undefined>> {
    return keys.map((key) => {
      const [group, rest] = split(key);
      return this.groups.get(group)?.get(rest) as T | undefined;
    });
  }

  async set(key: string, value: unknown): Promise<void> {
    this.put(key, deepFreeze(value));
  }

  async setMany(entries: Array<{ key: string; value: unknown }>): Promise<void> {
    for (const { key, value } of entries) this.put(key, deepFreeze(value));
  }

  async delete(key: string): Promise<boolean> {
    const [group, rest] = split(key);
    const records = this.groups.get(group);
    if (!records?.delete(rest)) return false;
    if (records.size === 0) this.groups.delete(group);
    return true;
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    let any = false;
    for (const key of keys) any = (await this.delete(key)) || any;
    return any;
  }

  async disconnect(): Promise<void> {}

  /** Keys starting with `prefix`, for the store's scans. */
  *keys(prefix: string): Iterable<string> {
    for (const [group, records] of [...this.groups]) {
      // A group's keys share its tag: skip groups that cannot hold a match.
      if (!group.startsWith(prefix.slice(0, group.length))) continue;
      for (const rest of [...records.keys()]) if ((group + rest).startsWith(prefix)) yield group + rest;
    }
  }

  private put(key: string, value: unknown): void {
    const [group, rest] = split(key);
    let records = this.groups.get(group);
    if (!records) this.groups.set(group, (records = new Map()));
    records.set(rest, value);
  }
}

/** "s:{t:s1}:x:p1:tea" → ["s:{t:s1}", ":x:p1:tea"]; a key without a tag is its own group's "". */
function split(key: string): [string, string] {
  const close = key.indexOf('}');
  return close < 0 ? [key, ''] : [key.slice(0, close + 1), key.slice(close + 1)];
}

/** Freezes `value` and everything it holds; already-frozen parts (shared with an earlier record) are skipped. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  // Index blocks hold long arrays of numbers: visit only what can be frozen, allocate nothing, and
  // index rather than iterate (for…of over an array is several times slower per element).
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const child: unknown = value[index];
      if (typeof child === 'object' && child !== null) deepFreeze(child);
    }
  } else {
    for (const key in value) {
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) deepFreeze(child);
    }
  }
  return value;
}
