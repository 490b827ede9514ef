import { createHash } from 'node:crypto';
import type { SessionStore } from '../store/types.js';

/** A deleted session's tombstone: when it was erased. */
interface Tombstone {
  at: number;
}

const TOMBSTONE_PREFIX = 'erased:';

/** Named by a hash: the tombstone says when, never which session (its id is gone with it). */
function tombstoneKey(sessionKey: string): string {
  return `${TOMBSTONE_PREFIX}${createHash('sha256').update(sessionKey).digest('base64url').slice(0, 24)}`;
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

/**
 * Whether a turn that started at `since` may not create the session: it was erased at or after
 * then, or the turn is older than `horizon` (the tombstones' lifetime), so an erase since would no
 * longer show. Erasure wins over a turn too old to tell.
 */
export async function erasedSince(store: SessionStore, sessionKey: string, since: number, horizon: number): Promise<boolean> {
  if (since < horizon) return true;
  const tombstone = await store.getRecord<Tombstone>(tombstoneKey(sessionKey));
  return tombstone !== undefined && tombstone.at >= since;
}

/**
 * Deletes tombstones of erases before `horizon`: no turn that old may create a session any more
 * (erasedSince), so they have nothing left to stop, and without the sweep every erase and every
 * expiry would leave a record behind for good. Resolves with how many went.
 */
export async function sweepTombstones(store: SessionStore, horizon: number): Promise<number> {
  let swept = 0;
  for await (const key of store.listRecords(TOMBSTONE_PREFIX)) {
    // Read just before its delete: a session erased anew since the listing keeps its new tombstone
    // (only an erase landing between this read and the delete, one round trip, would lose it).
    const tombstone = await store.getRecord<Tombstone>(key);
    if (tombstone && tombstone.at < horizon && (await store.deleteRecord(key))) swept++;
  }
  return swept;
}
