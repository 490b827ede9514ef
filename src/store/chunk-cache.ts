import { randomBytes } from 'node:crypto';
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
  private readonly entries = new Map<string, { messages: readonly StoredMessage[]; size: number }>();
  private size = 0;
  /** Lookups so far, for mnemo_chunk_cache_lookups_total. */
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  get(epoch: string, chunkKey: string): readonly StoredMessage[] | undefined {
    const key = `${epoch}|${chunkKey}`;
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Map order is insertion order: re-inserting marks the entry most recently used.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.messages;
  }

  /** Frozen on the way in: the same objects serve every later request, so a mutation must fail loudly. */
  set(epoch: string, chunkKey: string, messages: StoredMessage[]): void {
    const size = estimateSize(messages);
    if (size > this.maxBytes) return;
    const key = `${epoch}|${chunkKey}`;
    const previous = this.entries.get(key);
    if (previous) {
      this.entries.delete(key);
      this.size -= previous.size;
    }
    this.entries.set(key, { messages: deepFreeze(messages), size });
    this.size += size;
    for (const [oldest, entry] of this.entries) {
      if (this.size <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.size -= entry.size;
    }
  }

  /** Estimated bytes held (message text and fields, plus a fixed allowance per message). */
  get bytes(): number {
    return this.size;
  }
}

/** store.chunk_cache's default (the schema's), also what stores built without a config get. */
export const DEFAULT_CHUNK_CACHE_BYTES = 64 * 1024 * 1024;

/** A new session's epoch: 48 random bits, so a session created again never meets its predecessor's entries. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

const PER_MESSAGE = 160;

function estimateSize(messages: StoredMessage[]): number {
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
