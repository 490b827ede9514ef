import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { StoredMessage } from '../memory/messages.js';
import type { TurnAccounting, TurnRequest } from '../memory/transcript.js';

/** A turn the provider answered whose commit failed: everything needed to commit it later. */
export interface PendingTurn {
  sessionKey: string;
  request: TurnRequest & { turnId: string };
  /** The createdAt of the session the turn loaded (null: there was none), so a replay after an erase is dropped. */
  bornOf: number | null;
  reply: StoredMessage;
  accounting: TurnAccounting;
  /** When the turn happened: its messages keep this time when replayed. */
  at: number;
}

export interface OutboxEntry {
  seq: number;
  turn: PendingTurn;
}

/**
 * A durable local outbox for turns whose commit failed after the provider
 * answered (store down, timed out, conflicts exhausted). An embedded SQLite
 * file on the instance's own disk with synchronous=FULL: an entry is fsynced
 * before the client's response ends. Entries are replayed in order (see
 * outbox-replay.ts) and survive a restart of the instance.
 */
export class Outbox {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly select: Database.Statement;
  private readonly selectSession: Database.Statement;
  private readonly stats: Database.Statement;
  /** Waiting entries per session, so a turn asks "anything pending for me?" without a query. */
  private readonly pending = new Map<string, number>();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: every commit is fsynced, so an acknowledged turn survives a power loss of the instance.
    this.db.pragma('synchronous = FULL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, turn TEXT NOT NULL, at INTEGER NOT NULL)',
    );
    this.db.exec('CREATE INDEX IF NOT EXISTS outbox_session ON outbox(session, seq)');
    this.insert = this.db.prepare('INSERT INTO outbox(session, turn, at) VALUES (?, ?, ?)');
    this.remove = this.db.prepare('DELETE FROM outbox WHERE seq = ?');
    this.select = this.db.prepare('SELECT seq, turn FROM outbox ORDER BY seq LIMIT ?');
    this.selectSession = this.db.prepare('SELECT seq, turn FROM outbox WHERE session = ? ORDER BY seq');
    this.stats = this.db.prepare('SELECT COUNT(*) AS depth, MIN(at) AS oldest FROM outbox');
    for (const row of this.db.prepare('SELECT session, COUNT(*) AS n FROM outbox GROUP BY session').all() as Array<{
      session: string;
      n: number;
    }>) {
      this.pending.set(row.session, row.n);
    }
  }

  add(turn: PendingTurn): void {
    this.insert.run(turn.sessionKey, JSON.stringify(turn), turn.at);
    this.pending.set(turn.sessionKey, (this.pending.get(turn.sessionKey) ?? 0) + 1);
  }

  delete(entry: OutboxEntry): void {
    if (this.remove.run(entry.seq).changes === 0) return;
    const left = (this.pending.get(entry.turn.sessionKey) ?? 1) - 1;
    if (left > 0) this.pending.set(entry.turn.sessionKey, left);
    else this.pending.delete(entry.turn.sessionKey);
  }

  hasPending(sessionKey: string): boolean {
    return this.pending.has(sessionKey);
  }

  /** The oldest entries, in order. */
  oldest(limit: number): OutboxEntry[] {
    return (this.select.all(limit) as Array<{ seq: number; turn: string }>).map(parse);
  }

  /** A session's entries, in order. */
  forSession(sessionKey: string): OutboxEntry[] {
    return (this.selectSession.all(sessionKey) as Array<{ seq: number; turn: string }>).map(parse);
  }

  /** How many entries wait, and when the oldest was written (undefined when none). */
  depth(): { depth: number; oldestAt: number | undefined } {
    const row = this.stats.get() as { depth: number; oldest: number | null };
    return { depth: row.depth, oldestAt: row.oldest ?? undefined };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function parse(row: { seq: number; turn: string }): OutboxEntry {
  return { seq: row.seq, turn: JSON.parse(row.turn) as PendingTurn };
}
