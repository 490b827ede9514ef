import type { StoredMessage } from '../memory/messages.js';
import type { SessionMemory } from '../memory/state.js';

/** What a session's head record says about it; `version` is the compare-and-set token. */
export interface SessionMeta {
  version: number;
  count: number;
  createdAt: number;
  updatedAt: number;
  memory: SessionMemory;
}

/** A turn's change to the transcript: keep the first `keep` messages, then add `append`. */
export interface TranscriptChange {
  keep: number;
  append: StoredMessage[];
  /** The session's memory after this change; unchanged when omitted. */
  memory?: SessionMemory;
  /**
   * The meta this change was computed from. A store whose commit checks the
   * version atomically (Redis) builds on the head it read then instead of
   * reading it again.
   */
  base?: SessionMeta;
  /** Timestamps to set instead of now (an import restores the original's). */
  times?: { createdAt: number; updatedAt: number };
}

export type CommitResult = { ok: true; meta: SessionMeta } | { ok: false; reason: 'conflict' };

/**
 * The storage seam. Messages are addressed by index so a turn reads only the
 * range it needs and a commit writes only what changed: per-turn cost stays
 * flat as a session grows.
 */
export interface SessionStore {
  /** Short backend name for logs and metrics: memory, sqlite, redis. */
  readonly backend: string;
  /**
   * Calls wait on a network round trip (Redis, PostgreSQL): independent reads are worth issuing
   * together and a call can hang. False for stores answering synchronously in process (memory, SQLite).
   */
  readonly networked: boolean;
  getMeta(sessionKey: string): Promise<SessionMeta | undefined>;
  /** Messages [from, to) of the transcript described by `meta`. */
  readMessages(sessionKey: string, meta: SessionMeta, from: number, to: number): Promise<StoredMessage[]>;
  /** The messages at `indices` (in that order; undefined past the end), in one round trip that reads each chunk once. */
  readMessagesAt(sessionKey: string, meta: SessionMeta, indices: number[]): Promise<Array<StoredMessage | undefined>>;
  /**
   * Applies `change` only if the session is still at `expectedVersion` (0 for a
   * session that does not exist yet); otherwise reports a conflict and changes nothing.
   */
  commit(sessionKey: string, expectedVersion: number, change: TranscriptChange): Promise<CommitResult>;
  /** Side records of a session (recall postings…), stored under the session's hash tag. */
  readAux<T>(sessionKey: string, names: string[]): Promise<Array<T | undefined>>;
  writeAux(sessionKey: string, entries: Array<{ name: string; value: unknown }>): Promise<void>;
  /** Deletes side records no longer needed (their names stay registered: erasing and moving the session skip what is gone). */
  deleteAux(sessionKey: string, names: string[]): Promise<void>;
  /** Erases the session and every side record it lists; false when there was nothing to erase. */
  delete(sessionKey: string): Promise<boolean>;
  /** Every session whose key starts with `prefix` (a tenant's `tenant:`), with its head; order unspecified. */
  listSessions(prefix: string): AsyncIterable<{ sessionKey: string; meta: SessionMeta }>;
  /** Records that are not a session's (user profiles): plain get/set/delete by key. */
  getRecord<T>(key: string): Promise<T | undefined>;
  /** The keys of records starting with `prefix` (a sweep's), order unspecified. */
  listRecords(prefix: string): AsyncIterable<string>;
  setRecord(key: string, value: unknown): Promise<void>;
  deleteRecord(key: string): Promise<boolean>;
  /** Resolves when the backend answers; used by /readyz and at start. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Every record of one session as stored, for moving it between tiers. */
export interface SessionSnapshot {
  version: number;
  /** Last update or return from the cold tier, whichever is later. */
  activeAt: number;
  /** The head record as persisted (opaque outside the store). */
  head: unknown;
  /** Chunks and side records, by store key. */
  records: Array<{ key: string; value: unknown }>;
}

/**
 * A store whose sessions can be copied out and in whole. Both writes are
 * conditional on versions, so a move can race with turns and other moves
 * without losing a commit.
 */
export interface MovableStore extends SessionStore {
  snapshot(sessionKey: string): Promise<SessionSnapshot | undefined>;
  /**
   * Writes the snapshot unless this store holds the session at a newer version;
   * `touchedAt` marks it active for tiering (its updatedAt is unchanged).
   */
  restore(sessionKey: string, snapshot: SessionSnapshot, touchedAt?: number): Promise<boolean>;
  /** Deletes the session only if it is still at the snapshot's version. */
  evict(sessionKey: string, snapshot: SessionSnapshot): Promise<boolean>;
}
