import type { StoredMessage } from '../memory/messages.js';

/** What a session's head record says about it; `version` is the compare-and-set token. */
export interface SessionMeta {
  version: number;
  count: number;
  createdAt: number;
  updatedAt: number;
}

/** A turn's change to the transcript: keep the first `keep` messages, then add `append`. */
export interface TranscriptChange {
  keep: number;
  append: StoredMessage[];
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
  getMeta(sessionKey: string): Promise<SessionMeta | undefined>;
  /** Messages [from, to) of the transcript described by `meta`. */
  readMessages(sessionKey: string, meta: SessionMeta, from: number, to: number): Promise<StoredMessage[]>;
  /**
   * Applies `change` only if the session is still at `expectedVersion` (0 for a
   * session that does not exist yet); otherwise reports a conflict and changes nothing.
   */
  commit(sessionKey: string, expectedVersion: number, change: TranscriptChange): Promise<CommitResult>;
  /** Erases the session; false when there was nothing to erase. */
  delete(sessionKey: string): Promise<boolean>;
  /** Resolves when the backend answers; used by /readyz and at start. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
