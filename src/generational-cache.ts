/**
 * A bounded cache for lookups on the request path (per-session hashes, passages' and facts' term
 * sets, index marks): two generations of Maps. Entries go into the newer one; when it is full it becomes the older
 * one and the oldest generation is dropped whole, so eviction is O(1) and a hit is one Map
 * lookup. An entry found in the older generation moves to the newer one, so what is in use stays.
 * Holds between `limit` / 2 and `limit` entries.
 *
 * Why not a Map emptied from its front: V8 finds a Map's first entry by skipping the holes
 * earlier deletes left, so once full every eviction scanned the table (~10 µs at 20,000 entries,
 * ~48 µs at 100,000). Why not lru-cache here: its per-call bookkeeping (options, stale checks,
 * diagnostics) was 4.9% of a memory turn's CPU when it served the tokenizer's few hundred
 * lookups a turn (which now has tables of its own: tokenizer.ts); it still serves the size-bounded
 * caches (chunks, index blocks), looked up a few times a turn.
 */
export class GenerationalCache<K, V> {
  private newer = new Map<K, V>();
  private older = new Map<K, V>();
  private readonly generation: number;

  constructor(limit: number) {
    this.generation = Math.max(1, Math.floor(limit / 2));
  }

  get(key: K): V | undefined {
    const value = this.newer.get(key);
    if (value !== undefined) return value;
    const old = this.older.get(key);
    if (old !== undefined) {
      this.older.delete(key);
      this.set(key, old);
    }
    return old;
  }

  set(key: K, value: V): void {
    if (this.newer.size >= this.generation && !this.newer.has(key)) {
      this.older = this.newer;
      this.newer = new Map();
    }
    this.newer.set(key, value);
  }

  delete(key: K): void {
    this.newer.delete(key);
    this.older.delete(key);
  }

  get size(): number {
    return this.newer.size + this.older.size;
  }
}
