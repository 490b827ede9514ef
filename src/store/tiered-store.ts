import type { CommitResult, MovableStore, SessionMeta, SessionStore, TranscriptChange } from './types.js';

export type MoveDirection = 'to_cold' | 'to_hot';
/** moved: the session changed tier; raced: another instance or a new turn got there first, nothing changed. */
export type MoveOutcome = 'moved' | 'raced';
export interface MoveEvent {
  direction: MoveDirection;
  outcome: MoveOutcome;
}

export interface TieredStoreOptions {
  hot: MovableStore;
  cold: MovableStore;
  /** Sessions idle longer than this move to the cold tier on the next demotion pass. */
  hotTtlMs: () => number;
  now?: () => number;
  onMove?: (event: MoveEvent) => void;
}

/**
 * Active sessions in a fast store (Redis), idle ones in a durable one
 * (PostgreSQL or SQLite). Turns always run against the hot tier: a session
 * found only in the cold tier is copied back before its meta is returned.
 *
 * No turn is lost to a move because every move is copy-then-conditional-delete:
 * the copy is written first (refused if the target already holds a newer
 * version) and the source is deleted only if it is still at the copied
 * version, so at every instant the session's latest version is in one tier or
 * both. A turn that commits during a demotion makes the delete fail and the
 * session stays hot; a turn whose session was demoted while its request ran
 * gets a version conflict and re-applies after bringing it back, and a turn
 * that would create a session the cold tier holds gets a conflict too. A copy
 * brought back is stamped active, so it is not demoted again for `hotTtlMs`:
 * a reader that misses in hot, then in cold, then in hot again is therefore
 * looking at a new session, as long as those three reads take less than the
 * TTL (the schema keeps it at one second or more).
 */
export class TieredStore implements SessionStore {
  readonly backend: string;
  readonly networked: boolean;
  private readonly hot: MovableStore;
  private readonly cold: MovableStore;
  private readonly now: () => number;

  constructor(private readonly options: TieredStoreOptions) {
    this.hot = options.hot;
    this.cold = options.cold;
    this.now = options.now ?? Date.now;
    this.backend = `${options.hot.backend}+${options.cold.backend}`;
    this.networked = options.hot.networked || options.cold.networked;
  }

  async getMeta(sessionKey: string): Promise<SessionMeta | undefined> {
    return (await this.hot.getMeta(sessionKey)) ?? this.promote(sessionKey);
  }

  readMessages: SessionStore['readMessages'] = (sessionKey, meta, from, to) => this.hot.readMessages(sessionKey, meta, from, to);
  readMessagesAt: SessionStore['readMessagesAt'] = (sessionKey, meta, indices) => this.hot.readMessagesAt(sessionKey, meta, indices);

  async commit(sessionKey: string, expectedVersion: number, change: TranscriptChange): Promise<CommitResult> {
    // A session is created in the hot tier only if the cold tier does not hold it. A reader that
    // found it in neither tier (a move ran between its reads faster than the TTL allows) would
    // otherwise start a second session that hides the first; a conflict makes it read again.
    if (expectedVersion === 0 && (await this.cold.getMeta(sessionKey))) return { ok: false, reason: 'conflict' };
    return this.hot.commit(sessionKey, expectedVersion, change);
  }

  readAux: SessionStore['readAux'] = (sessionKey, names) => this.hot.readAux(sessionKey, names);
  writeAux: SessionStore['writeAux'] = (sessionKey, entries) => this.hot.writeAux(sessionKey, entries);
  deleteAux: SessionStore['deleteAux'] = (sessionKey, names) => this.hot.deleteAux(sessionKey, names);
  getRecord: SessionStore['getRecord'] = (key) => this.hot.getRecord(key);
  listRecords: SessionStore['listRecords'] = (prefix) => this.hot.listRecords(prefix);
  setRecord: SessionStore['setRecord'] = (key, value) => this.hot.setRecord(key, value);
  deleteRecord: SessionStore['deleteRecord'] = (key) => this.hot.deleteRecord(key);

  async delete(sessionKey: string): Promise<boolean> {
    const [hot, cold] = await Promise.all([this.hot.delete(sessionKey), this.cold.delete(sessionKey)]);
    return hot || cold;
  }

  /** Hot sessions, then cold ones not also hot (a stale cold copy of a hot session is not listed). */
  async *listSessions(prefix: string): AsyncIterable<{ sessionKey: string; meta: SessionMeta }> {
    yield* this.hot.listSessions(prefix);
    for await (const entry of this.cold.listSessions(prefix)) {
      if (!(await this.hot.getMeta(entry.sessionKey))) yield entry;
    }
  }

  /**
   * Readiness follows the hot tier only: every turn needs it, while a cold-tier outage affects only
   * sessions that must come back from it (they fail or degrade per store.on_store_error). Taking
   * every instance out of rotation during PostgreSQL maintenance would turn that into an outage.
   * The cold tier is checked once at start, so a wrong cold_url still fails fast.
   */
  async ping(): Promise<void> {
    await this.hot.ping();
  }

  async close(): Promise<void> {
    await Promise.all([this.hot.close(), this.cold.close()]);
  }

  /** One demotion pass: every hot session idle past the TTL moves cold. Resolves with the number moved. */
  async demoteIdle(): Promise<number> {
    const cutoff = this.now() - this.options.hotTtlMs();
    const idle: string[] = [];
    for await (const { sessionKey, meta } of this.hot.listSessions('')) if (meta.updatedAt < cutoff) idle.push(sessionKey);
    let moved = 0;
    for (const sessionKey of idle) if (await this.demote(sessionKey, cutoff)) moved++;
    return moved;
  }

  /** Moves one session cold if it is still idle past `cutoff`; false when a turn or another mover got there first. */
  async demote(sessionKey: string, cutoff: number): Promise<boolean> {
    const snapshot = await this.hot.snapshot(sessionKey);
    if (!snapshot || snapshot.activeAt >= cutoff) return false;
    // A refused copy means the cold tier holds a newer version than this snapshot (a leftover of an
    // erased earlier session under the same id): the hot session is not deleted on its account.
    const copied = await this.cold.restore(sessionKey, snapshot);
    const moved = copied && (await this.hot.evict(sessionKey, snapshot));
    // Erased while it moved: the copy just written would bring it back from the cold tier.
    if (copied && !moved && !(await this.hot.getMeta(sessionKey))) await this.cold.evict(sessionKey, snapshot).catch(() => false);
    this.options.onMove?.({ direction: 'to_cold', outcome: moved ? 'moved' : 'raced' });
    return moved;
  }

  private async promote(sessionKey: string): Promise<SessionMeta | undefined> {
    const snapshot = await this.cold.snapshot(sessionKey);
    // Missing from both reads: either new, or another instance brought it back between them. The
    // second hot read tells which; a session cannot leave hot again that fast (see hotTtlMs).
    if (!snapshot) return this.hot.getMeta(sessionKey);
    const restored = await this.hot.restore(sessionKey, snapshot, this.now());
    // The cold copy goes only if unchanged; left behind, it is shadowed by the hot session and
    // replaced by the next demotion, so a failure here costs space, not correctness.
    if (restored) await this.cold.evict(sessionKey, snapshot).catch(() => false);
    this.options.onMove?.({ direction: 'to_hot', outcome: restored ? 'moved' : 'raced' });
    return this.hot.getMeta(sessionKey);
  }
}
