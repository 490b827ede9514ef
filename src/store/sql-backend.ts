import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import KeyvPostgres from '@keyv/postgres';
import pg from 'pg';
import { ChunkedKeyvStore, type SharedStoreOptions, type AtomicEvict, type AtomicRestore } from './chunked-keyv-store.js';
import { NAMESPACE, StoreConfigError, envelope, keyvOver } from './keyv.js';
import { SqliteAdapter } from './sqlite-adapter.js';

/**
 * SQLite (the embedded default) and PostgreSQL (a durable cold tier, or a main store). Both keep
 * Keyv's one table of (key, value); the steps that must be atomic across processes are single
 * SQL statements that test the head's version in the row they change (on SQLite, a turn's commit
 * is one IMMEDIATE transaction that does).
 */
export function sqliteStore(url: string, shared: SharedStoreOptions = {}): ChunkedKeyvStore {
  const adapter = sqliteAdapter(url);
  const query = async (sql: string, params: unknown[]) => adapter.query(sql, params);
  return new ChunkedKeyvStore(keyvOver(adapter), {
    backend: 'sqlite',
    networked: false,
    ...shared,
    scan: (prefix) => scanTable(query, `SELECT key FROM keyv WHERE key LIKE ? ESCAPE '\\'`, prefix),
    // A turn's commit is one transaction that checks the version: the head the turn loaded is
    // trusted (no second read and decode of it), and the rows go in one write, not two or three.
    atomicCommit: async (commit) =>
      adapter.commitIfAt({
        headKey: full(commit.headKey),
        expectedVersion: commit.expectedVersion,
        head: envelope(commit.head),
        writes: commit.writes.map(({ key, value }) => ({ key: full(key), value: envelope(value) })),
        deletes: commit.deletes.map(full),
      }),
    atomicRestore: (restore) => restoreRow(query, SQLITE, restore),
    atomicEvict: (evict) => evictRows(query, SQLITE, evict),
  });
}

export function postgresStore(url: string, shared: SharedStoreOptions = {}): ChunkedKeyvStore {
  // Session keys run to ~300 characters with the tenant hash; Keyv's default column is VARCHAR(255).
  const adapter = new OwnPoolPostgres({ uri: url, keySize: 1024 });
  const query = (sql: string, params: unknown[]) => adapter.query(sql, params) as Promise<Array<Record<string, unknown>>>;
  return new ChunkedKeyvStore(keyvOver(adapter), {
    backend: 'postgres',
    networked: true,
    ...shared,
    scan: (prefix) => scanTable(query, `SELECT key FROM public.keyv WHERE key LIKE $1 ESCAPE '\\'`, prefix),
    // Read-then-write under the in-process lock lost turns to a second process on the same
    // database: a turn's commit is one statement that tests the head's version instead.
    atomicCommit: async (commit) => {
      const rows = await query(POSTGRES_COMMIT, [
        full(commit.headKey),
        envelope(commit.head),
        commit.expectedVersion,
        commit.writes.map(({ key }) => full(key)),
        commit.writes.map(({ value }) => envelope(value)),
        commit.deletes.map(full),
      ]);
      return rows[0]?.applied === true;
    },
    atomicRestore: (restore) => restoreRow(query, POSTGRES, restore),
    atomicEvict: (evict) => evictRows(query, POSTGRES, evict),
  });
}

const pools = new WeakMap<KeyvPostgres, pg.Pool>();

/**
 * @keyv/postgres with a pool per store instead of its module-wide one. Its
 * shared pool is ended by whichever store closes first, and has no 'error'
 * listener, so a PostgreSQL restart (which kills idle connections) would crash
 * the process. Here the pool drops a broken idle connection quietly and the
 * next query opens a fresh one; query errors still reach the caller.
 */
class OwnPoolPostgres extends KeyvPostgres {
  // Called from the base constructor, before subclass fields exist: hence the WeakMap.
  override async connect() {
    let pool = pools.get(this);
    if (!pool) {
      pool = new pg.Pool({ connectionString: this.opts.uri, max: 10 });
      pool.on('error', () => undefined);
      pools.set(this, pool);
    }
    const owned = pool;
    return async (sql: string, values?: unknown[]) => (await owned.query(sql, values)).rows;
  }

  override async disconnect(): Promise<void> {
    await pools.get(this)?.end();
  }
}

type Query = (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>;

interface Dialect {
  /** Upserts many rows from two parallel arrays (keys, values). */
  upsertMany: string;
  /** Upserts the head unless the stored head's version is newer; returns the key when written. */
  upsertHead: string;
  /** Deletes the head and the listed keys if the head is at the version; returns the deleted keys. */
  evict: string;
  params: {
    upsertMany(keys: string[], values: string[]): unknown[];
    evict(headKey: string, version: number, touched: number, keys: string[]): unknown[];
  };
}

const SQLITE: Dialect = {
  upsertMany: `INSERT INTO keyv (key, value)
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true
    ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
  upsertHead: `INSERT INTO keyv (key, value) VALUES (?, ?)
    ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE json_extract(keyv.value, '$.value.v') <= ?
    RETURNING key`,
  // One statement holds SQLite's write lock throughout, and the version test is computed before any row goes.
  evict: `DELETE FROM keyv WHERE key IN (SELECT value FROM json_each(?))
    AND (SELECT json_extract(value, '$.value.v') = ? AND coalesce(json_extract(value, '$.value.t'), -1) = ? FROM keyv WHERE key = ?)
    RETURNING key`,
  params: {
    upsertMany: (keys, values) => [JSON.stringify(keys.map((key, index) => [key, values[index]]))],
    evict: (headKey, version, touched, keys) => [JSON.stringify([headKey, ...keys]), version, touched, headKey],
  },
};

const POSTGRES: Dialect = {
  upsertMany: `INSERT INTO public.keyv (key, value) SELECT * FROM UNNEST($1::text[], $2::text[])
    ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
  upsertHead: `INSERT INTO public.keyv (key, value) VALUES ($1, $2)
    ON CONFLICT(key) DO UPDATE SET value = excluded.value
    WHERE ((public.keyv.value::jsonb) -> 'value' ->> 'v')::bigint <= $3
    RETURNING key`,
  // The version test sits on the head row itself, so a concurrent update of that row is re-checked
  // (READ COMMITTED); the other rows go only if the head did.
  evict: `WITH head AS (
      DELETE FROM public.keyv WHERE key = $1 AND ((value::jsonb) -> 'value' ->> 'v')::bigint = $2
        AND coalesce(((value::jsonb) -> 'value' ->> 't')::bigint, -1) = $3 RETURNING key
    ), rest AS (
      DELETE FROM public.keyv WHERE key = ANY($4::text[]) AND EXISTS (SELECT 1 FROM head) RETURNING key
    )
    SELECT key FROM head UNION ALL SELECT key FROM rest`,
  params: {
    upsertMany: (keys, values) => [keys, values],
    evict: (headKey, version, touched, keys) => [headKey, version, touched, keys],
  },
};

/**
 * A turn's commit on PostgreSQL: the head goes in only if the stored one is at the expected version
 * (or, at 0, there is none), and the chunks and deletes only if the head did. One statement is one
 * transaction; a concurrent commit of the same head waits on its row and re-tests the version
 * against the row that committed (ON CONFLICT DO UPDATE), so of two commits at a version one lands.
 */
const POSTGRES_COMMIT = `WITH head AS (
    INSERT INTO public.keyv (key, value) VALUES ($1, $2)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value
    WHERE ((public.keyv.value::jsonb) -> 'value' ->> 'v')::bigint = $3
    RETURNING key
  ), written AS (
    INSERT INTO public.keyv (key, value) SELECT * FROM UNNEST($4::text[], $5::text[]) WHERE EXISTS (SELECT 1 FROM head)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value
    RETURNING key
  ), deleted AS (
    DELETE FROM public.keyv WHERE key = ANY($6::text[]) AND EXISTS (SELECT 1 FROM head) RETURNING key
  )
  SELECT EXISTS (SELECT 1 FROM head) AS applied, (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM deleted) AS deleted`;

const full = (key: string) => `${NAMESPACE}:${key}`;

async function restoreRow(query: Query, dialect: Dialect, restore: Parameters<AtomicRestore>[0]): Promise<boolean> {
  // Chunks and side records first, the head last: until the head lands, nothing refers to them.
  if (restore.records.length > 0) {
    const keys = restore.records.map((record) => full(record.key));
    const values = restore.records.map((record) => envelope(record.value));
    await query(dialect.upsertMany, dialect.params.upsertMany(keys, values));
  }
  const rows = await query(dialect.upsertHead, [full(restore.headKey), envelope(restore.head), restore.version]);
  return rows.length === 1;
}

async function evictRows(query: Query, dialect: Dialect, evict: Parameters<AtomicEvict>[0]): Promise<boolean> {
  const headKey = full(evict.headKey);
  const rows = await query(dialect.evict, dialect.params.evict(headKey, evict.version, evict.touched, evict.keys.map(full)));
  return rows.some((row) => row.key === headKey);
}

async function* scanTable(query: Query, sql: string, prefix: string): AsyncIterable<string> {
  const pattern = full(prefix).replace(/[\\%_]/g, (char) => `\\${char}`) + '%';
  const rows = (await query(sql, [pattern])) as Array<{ key: string }>;
  for (const row of rows) yield row.key.slice(NAMESPACE.length + 1);
}

function sqliteAdapter(url: string): SqliteAdapter {
  const path = url.replace(/^sqlite:\/\//, '');
  if (path === '') throw new StoreConfigError('sqlite:// needs a file path, e.g. sqlite://./data/mnemo.db');
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    return new SqliteAdapter(path, { busyTimeoutMs: 5_000 });
  } catch (error) {
    throw new StoreConfigError(`${url} cannot be opened: ${(error as Error).message}`);
  }
}
