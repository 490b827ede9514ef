import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import Database, { type Statement } from 'better-sqlite3';
import type { KeyvStoreAdapter } from 'keyv';

type Row = Record<string, unknown>;

/** A commit as SQLite applies it: full keys, values serialized as Keyv stores them. */
interface CommitChange {
  headKey: string;
  expectedVersion: number;
  head: string;
  writes: Array<{ key: string; value: string }>;
  deletes: string[];
}

/**
 * Keyv's one (key, value) table in an SQLite file, on better-sqlite3. Its
 * calls are synchronous and take microseconds; node-sqlite3 (behind
 * @keyv/sqlite, used before) hands every query to libuv's thread pool, which
 * measured ~0.3 ms per store call with 4–5 calls per turn. The table is the
 * one @keyv/sqlite creates, so existing database files open unchanged.
 */
export class SqliteAdapter extends EventEmitter implements KeyvStoreAdapter {
  readonly opts = { dialect: 'sqlite' };
  namespace?: string;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Statement>();
  /** The database file as opened (device and inode), to notice it being deleted or replaced. */
  private readonly file: { path: string; dev: number; ino: number } | undefined;
  private lost: Error | undefined;
  private commitTransaction: Database.Transaction<(change: CommitChange) => boolean> | undefined;
  private readonly watcher: NodeJS.Timeout | undefined;

  constructor(path: string, options: { busyTimeoutMs: number }) {
    super();
    this.db = new Database(path, { timeout: options.busyTimeoutMs });
    if (path !== ':memory:' && path !== '') {
      const stat = statSync(path);
      this.file = { path, dev: stat.dev, ino: stat.ino };
      // Reads (and /readyz) notice within a second; every write checks first (see query).
      this.watcher = setInterval(() => this.checkFile(), 1_000).unref();
    }
    // WAL lets readers proceed during a write; synchronous=NORMAL syncs at checkpoints rather than on
    // every commit — a committed turn survives a mnemo crash, and only a power loss can drop the
    // last few (SQLite's documented trade-off for WAL mode).
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS keyv(key VARCHAR(255) PRIMARY KEY, value TEXT)');
  }

  /** Runs one statement (prepared once per SQL text) and returns its rows, if it returns any. */
  query(sql: string, params: unknown[] = []): Row[] {
    if (this.lost) throw this.lost;
    const statement = this.statement(sql);
    if (statement.reader) return statement.all(...params) as Row[];
    // A write into a file deleted under us would vanish at the next start: refuse it instead.
    this.checkFile();
    if (this.lost) throw this.lost;
    statement.run(...params);
    return [];
  }

  private statement(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * The file mnemo opened must still be the file at its path. Deleted or replaced (another inode),
   * SQLite would go on writing into the unlinked file and every turn since would be gone after a
   * restart; instead every call fails from then on (/readyz too), so turns go to the outbox.
   */
  private checkFile(): void {
    if (!this.file || this.lost) return;
    let current: { dev: number; ino: number } | undefined;
    try {
      current = statSync(this.file.path);
    } catch {
      current = undefined;
    }
    if (!current || current.dev !== this.file.dev || current.ino !== this.file.ino) {
      this.lost = new Error(
        `SQLite database file ${this.file.path} was ${current ? 'replaced' : 'deleted'} while mnemo ran; restart mnemo`,
      );
      clearInterval(this.watcher);
    }
  }

  async get<Value>(key: string): Promise<Value | undefined> {
    return this.query('SELECT value FROM keyv WHERE key = ?', [key])[0]?.value as Value | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    const rows = this.query('SELECT key, value FROM keyv WHERE key IN (SELECT value FROM json_each(?))', [JSON.stringify(keys)]);
    const byKey = new Map(rows.map((row) => [row.key as string, row.value as Value]));
    return keys.map((key) => byKey.get(key));
  }

  async has(key: string): Promise<boolean> {
    return this.query('SELECT 1 FROM keyv WHERE key = ?', [key]).length > 0;
  }

  async set(key: string, value: unknown): Promise<void> {
    this.query(UPSERT, [key, value]);
  }

  async setMany(entries: Array<{ key: string; value: unknown }>): Promise<void> {
    // One file check for the whole transaction (a check per row was a stat() per posting written).
    this.checkFile();
    if (this.lost) throw this.lost;
    const upsert = this.statement(UPSERT);
    this.db.transaction(() => {
      for (const { key, value } of entries) upsert.run(key, value);
    })();
  }

  /**
   * A commit as one write transaction: the head's version is checked in it, then the rows are
   * written and deleted and the head last, or nothing is. IMMEDIATE takes SQLite's write lock at
   * BEGIN, so a second process on the same file cannot interleave between check and write. Values
   * are as Keyv stores them (serialized envelopes).
   */
  commitIfAt(commit: CommitChange): boolean {
    if (this.lost) throw this.lost;
    // A write into a file deleted under us would vanish at the next start: refuse it instead.
    this.checkFile();
    if (this.lost) throw this.lost;
    this.commitTransaction ??= this.db.transaction((change: CommitChange) => {
      const current = this.statement(HEAD_VERSION).get(change.headKey) as { v: number | null } | undefined;
      if ((current?.v ?? 0) !== change.expectedVersion) return false;
      const upsert = this.statement(UPSERT);
      for (const { key, value } of change.writes) upsert.run(key, value);
      for (const key of change.deletes) this.statement(DELETE).run(key);
      upsert.run(change.headKey, change.head);
      return true;
    });
    return this.commitTransaction.immediate(commit);
  }

  async delete(key: string): Promise<boolean> {
    return this.query('DELETE FROM keyv WHERE key = ? RETURNING key', [key]).length > 0;
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    return this.query('DELETE FROM keyv WHERE key IN (SELECT value FROM json_each(?)) RETURNING key', [JSON.stringify(keys)]).length > 0;
  }

  async clear(): Promise<void> {
    if (this.namespace === undefined) this.query('DELETE FROM keyv');
    else this.query(`DELETE FROM keyv WHERE key LIKE ? ESCAPE '\\'`, [`${this.namespace.replace(/[\\%_]/g, '\\$&')}:%`]);
  }

  async disconnect(): Promise<void> {
    clearInterval(this.watcher);
    if (this.db.open) this.db.close();
  }
}

const UPSERT = 'INSERT INTO keyv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value';
const DELETE = 'DELETE FROM keyv WHERE key = ?';
// The version leads the head's JSON; json_extract reads it in SQLite, without the head crossing into JavaScript.
const HEAD_VERSION = "SELECT json_extract(value, '$.value.v') AS v FROM keyv WHERE key = ?";
