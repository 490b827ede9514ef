import { createHash } from 'node:crypto';
import type { SessionStore } from '../store/types.js';

/** A deleted session's tombstone: when it was erased. */
interface Tombstone {
  at: number;
}

/** Named by a hash: the tombstone says when, never which session (its id is gone with it). */
function tombstoneKey(sessionKey: string): string {
  return `erased:${createHash('sha256').update(sessionKey).digest('base64url').slice(0, 24)}`;
}

/**
 * Erases a session and leaves a tombstone, so nothing that began before the erase — a turn in
 * flight, its compare-and-set retry, an outbox replay — can create the session again. The
 * tombstone is written first: a turn committing between the two writes already sees it.
 * A session started after the erase is a new one and starts empty.
 */
export async function eraseSession(store: SessionStore, sessionKey: string, at: number): Promise<boolean> {
  await store.setRecord(tombstoneKey(sessionKey), { at } satisfies Tombstone);
  return store.delete(sessionKey);
}

/** Whether the session was erased at or after `since` (a turn that started then must not create it). */
export async function erasedSince(store: SessionStore, sessionKey: string, since: number): Promise<boolean> {
  const tombstone = await store.getRecord<Tombstone>(tombstoneKey(sessionKey));
  return tombstone !== undefined && tombstone.at >= since;
}
