import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { StoredMessage } from '../memory/messages.js';

/**
 * Decoded sealed chunks, kept in process. A sealed chunk never changes under
 * its key: a fork writes a new generation, and a session created again gets a
 * new epoch (a random id in its head) that is part of the cache key. So an
 * entry can never go stale, even with other instances writing the session,
 * and a turn whose recent window spans sealed chunks reads them from memory:
 * no round trip, no parse, no decode. Least recently used entries go first
 * once the estimated size passes `maxBytes`.
 */
export class ChunkCache {
  // lru-cache, not a Map kept in use order by re-inserting: V8 finds a Map's oldest entry by
  // skipping the holes re-inserts leave, a scan of the table per eviction.
  private readonly entries: LRUCache<string, readonly StoredMessage[]>;
  /** Lookups so far, for mnemo_chunk_cache_lookups_total. */
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.entries = new LRUCache({ maxSize: Math.max(1, maxBytes), sizeCalculation: (messages) => Math.max(1, estimateSize(messages)) });
  }

  get(epoch: string, chunkKey: string): readonly StoredMessage[] | undefined {
    const messages = this.entries.get(`${epoch}|${chunkKey}`);
    if (messages) this.hits++;
    else this.misses++;
    return messages;
  }

  /** Frozen on the way in: the same objects serve every later request, so a mutation must fail loudly. A chunk larger than the whole cache is not kept. */
  set(epoch: string, chunkKey: string, messages: StoredMessage[]): void {
    this.entries.set(`${epoch}|${chunkKey}`, deepFreeze(messages));
  }

  /** Estimated bytes held (message text and fields, plus a fixed allowance per message). */
  get bytes(): number {
    return this.entries.calculatedSize;
  }
}

/** store.chunk_cache's default (the schema's), also what stores built without a config get. */
export const DEFAULT_CHUNK_CACHE_BYTES = 64 * 1024 * 1024;

/** A new session's epoch: 48 random bits, so a session created again never meets its predecessor's entries. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

const PER_MESSAGE = 160;

function estimateSize(messages: readonly StoredMessage[]): number {
  let size = 0;
  for (const { message } of messages) {
    const { content } = message;
    size += PER_MESSAGE + 2 * (typeof content === 'string' ? content.length : content == null ? 0 : JSON.stringify(content).length);
    if (message.tool_calls) size += 2 * JSON.stringify(message.tool_calls).length;
  }
  return size;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
