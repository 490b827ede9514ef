import type { StoredMessage } from '../memory/messages.js';
import { emptyMemory, type SessionMemory } from '../memory/state.js';
import { newEpoch, type ChunkCache } from './chunk-cache.js';
import { GenerationalCache } from '../generational-cache.js';
import { KeyLock } from './key-lock.js';
import { deepFreeze } from './memory-backend.js';
import { decodeList, encodeList, type EncodedMessage, type LegacyMessage } from './message-codec.js';
import type { CommitResult, MovableStore, SessionMeta, SessionSnapshot, TranscriptChange } from './types.js';

/**
 * The head record. The open (unsealed) end of the transcript lives inside it,
 * so an ordinary turn is one read and one write; every `chunkSize` messages the
 * tail is sealed into an immutable chunk record.
 */
interface HeadRecord {
  v: number;
  n: number;
  sealed: number;
  tail: StoredMessage[];
  /** [firstChunk, generation] pairs: a fork rewrites chunks under a new generation, never in place. */
  gens: Array<[number, number]>;
  c: number;
  u: number;
  /** When a tier move last brought the session back (it counts as activity for tiering, not as an update). */
  t?: number;
  /** Set when the session is created (or, for older heads, at their next commit): keys its cached chunks. */
  e?: string;
  mem?: SessionMemory;
}

type PersistedHead = Omit<HeadRecord, 'tail'> & { tail: Array<EncodedMessage | LegacyMessage> };

/**
 * What the store needs of a key-value backend: Keyv over Redis, SQLite or
 * PostgreSQL, or the in-process MemoryBackend. Values are JSON-shaped.
 */
export interface KeyValueBackend {
  get<T>(key: string): Promise<T | undefined>;
  getMany<T>(keys: string[]): Promise<Array<T | undefined>>;
  set(key: string, value: unknown): Promise<unknown>;
  setMany(entries: Array<{ key: string; value: unknown }>): Promise<unknown>;
  delete(key: string): Promise<boolean>;
  deleteMany(keys: string[]): Promise<boolean>;
  disconnect(): Promise<void>;
}

/**
 * The side records naming every aux record written, so deletion and tier moves leave nothing
 * behind: a root `{ segments: n }` and segments `_names:1`…`_names:n`, each holding the names one
 * write added. Registering costs what a write adds, not what the session holds: a single list,
 * read and rewritten on every write, grew with the session's vocabulary (one posting record per
 * term) and was a fifth of a turn's CPU. The names a session has registered are remembered in
 * process (so a write that adds none reads nothing); the segment count is always read afresh. An
 * older store's root is that single list; it reads as a segment.
 */
const AUX_INDEX = '_names';
type AuxIndexRoot = { segments: number } | string[];

/** Sessions whose registered aux names this process remembers (it reads them again when it forgets). */
const KNOWN_AUX_SESSIONS = 1_024;

export interface ChunkedStoreOptions {
  backend: string;
  /** See SessionStore.networked. */
  networked: boolean;
  chunkSize?: number;
  now?: () => number;
  /** Backend-specific disconnect; `force` drops pending commands (used when a graceful close hangs). */
  disconnect?: (force: boolean) => Promise<void>;
  /** Lists store keys (as mnemo names them, without the Keyv namespace) starting with a prefix. */
  scan: (prefix: string) => AsyncIterable<string>;
  /**
   * Checks the head's version and applies every write and delete of a commit as
   * one atomic step in the backend (a Lua script on Redis, a transaction on
   * SQLite), so several mnemo processes can share a store, and the head the
   * caller loaded is trusted (the backend rejects a stale one). Without it,
   * commits are atomic per process and re-read the head.
   */
  atomicCommit?: AtomicCommit;
  /** Restore and evict as one atomic step each (Lua on Redis, one SQL statement on SQL backends). */
  atomicRestore?: AtomicRestore;
  atomicEvict?: AtomicEvict;
  /** Decoded sealed chunks kept in process (shared by a hot and a cold tier: chunk content never changes under its key). */
  chunkCache?: ChunkCache;
}

/** What every backend of one mnemo shares: its clock and its chunk cache. */
export type SharedStoreOptions = Pick<ChunkedStoreOptions, 'now' | 'chunkCache'>;

export type AtomicCommit = (commit: {
  headKey: string;
  expectedVersion: number;
  head: unknown;
  writes: Array<{ key: string; value: unknown }>;
  deletes: string[];
}) => Promise<boolean>;

/** Writes `records`, then `head`, unless the backend holds this session at a newer version. */
export type AtomicRestore = (restore: {
  headKey: string;
  version: number;
  head: unknown;
  records: Array<{ key: string; value: unknown }>;
}) => Promise<boolean>;

/** Deletes `keys` and the head, only if the head is still at `version`. */
/**
 * `touched` is the head's touch stamp (`t`, set when a copy is restored as active; -1 when none):
 * together with the version it names one copy, so an eviction never removes a copy written since,
 * even at the same version (a demotion re-copying a session a promotion is about to evict).
 */
export type AtomicEvict = (evict: { headKey: string; version: number; touched: number; keys: string[] }) => Promise<boolean>;

const GRACEFUL_CLOSE_MS = 1_000;

/**
 * Transcript storage on any Keyv backend. Crash safety comes from ordering:
 * chunks are written before the head that references them, and a fork writes
 * new keys, so a crash between the two leaves the old head pointing at intact
 * data. The only commit point is the head write.
 */
export class ChunkedKeyvStore implements MovableStore {
  readonly backend: string;
  readonly networked: boolean;
  private readonly chunkSize: number;
  private readonly now: () => number;
  private readonly lock = new KeyLock();
  private readonly disconnect?: (force: boolean) => Promise<void>;
  private readonly scan: (prefix: string) => AsyncIterable<string>;
  private readonly atomicCommit?: AtomicCommit;
  private readonly atomicRestore?: AtomicRestore;
  private readonly atomicEvict?: AtomicEvict;
  private readonly chunkCache?: ChunkCache;
  // The head a meta was read from, so a range read costs no second head read.
  private readonly heads = new WeakMap<SessionMeta, HeadRecord>();
  private readonly decodedHeads = new WeakMap<PersistedHead, HeadRecord>();
  /** Aux names registered per session, as far as this process has written or read them. */
  private readonly knownAux = new GenerationalCache<string, { names: Set<string> }>(KNOWN_AUX_SESSIONS);

  constructor(
    private readonly keyv: KeyValueBackend,
    options: ChunkedStoreOptions,
  ) {
    this.backend = options.backend;
    this.networked = options.networked;
    this.chunkSize = options.chunkSize ?? 32;
    this.now = options.now ?? Date.now;
    this.disconnect = options.disconnect;
    this.scan = options.scan;
    this.atomicCommit = options.atomicCommit;
    this.atomicRestore = options.atomicRestore;
    this.atomicEvict = options.atomicEvict;
    this.chunkCache = options.chunkCache;
  }

  async getMeta(sessionKey: string): Promise<SessionMeta | undefined> {
    const head = await this.readHead(sessionKey);
    if (!head) return undefined;
    const meta = toMeta(head);
    this.heads.set(meta, head);
    return meta;
  }

  async readMessages(sessionKey: string, meta: SessionMeta, from: number, to: number): Promise<StoredMessage[]> {
    const head = this.heads.get(meta) ?? (await this.readHead(sessionKey));
    if (!head) return [];
    return this.slice(sessionKey, head, Math.max(0, from), Math.min(to, head.n));
  }

  async readMessagesAt(sessionKey: string, meta: SessionMeta, indices: number[]): Promise<Array<StoredMessage | undefined>> {
    const head = this.heads.get(meta) ?? (await this.readHead(sessionKey));
    if (!head) return indices.map(() => undefined);
    const size = this.chunkSize;
    const sealedEnd = head.sealed * size;
    const sealed = [...new Set(indices.filter((index) => index >= 0 && index < sealedEnd).map((index) => Math.floor(index / size)))];
    const chunks = new Map((await this.readChunks(sessionKey, head, sealed)).map((chunk, position) => [sealed[position]!, chunk]));
    return indices.map((index) => {
      if (index < 0 || index >= head.n) return undefined;
      return index < sealedEnd ? chunks.get(Math.floor(index / size))![index % size] : head.tail[index - sealedEnd];
    });
  }

  async commit(sessionKey: string, expectedVersion: number, change: TranscriptChange): Promise<CommitResult> {
    return this.lock.run(sessionKey, async () => {
      // The backend rejects a stale version itself, so the head the caller read is as good as a fresh read.
      const known = this.atomicCommit && change.base ? this.heads.get(change.base) : undefined;
      const head = known?.v === expectedVersion ? known : await this.readHead(sessionKey);
      if ((head?.v ?? 0) !== expectedVersion) return { ok: false, reason: 'conflict' } as const;
      const time = this.now();
      const current: HeadRecord = head ?? { v: 0, n: 0, sealed: 0, tail: [], gens: [], c: time, u: time, e: newEpoch() };
      const { next, writes, sealedChunks, garbage } = await this.apply(sessionKey, current, change);
      next.e ??= newEpoch();
      next.v = current.v + 1;
      next.u = time;
      if (change.memory) next.mem = change.memory;
      if (change.times) {
        next.c = change.times.createdAt;
        next.u = change.times.updatedAt;
      }
      // The version first, always: Redis scripts read it off the front of the JSON instead of decoding the head.
      const { v, ...rest } = next;
      const persisted: PersistedHead = { v, ...rest, tail: encodeList(next.tail) };
      if (this.atomicCommit) {
        const applied = await this.atomicCommit({
          headKey: headKey(sessionKey),
          expectedVersion,
          head: persisted,
          writes,
          deletes: garbage,
        });
        if (!applied) return { ok: false, reason: 'conflict' } as const;
      } else {
        // Chunks before the head that references them: the head write is the commit point.
        if (writes.length > 0) await this.keyv.setMany(writes);
        await this.keyv.set(headKey(sessionKey), persisted);
        if (garbage.length > 0) await this.keyv.deleteMany(garbage);
      }
      // Only now that the commit point has passed: a chunk written by a failed commit may be overwritten.
      writes.forEach((write, position) => this.chunkCache?.set(next.e!, write.key, sealedChunks[position]!));
      const meta = toMeta(next);
      this.heads.set(meta, next);
      return { ok: true, meta } as const;
    });
  }

  async delete(sessionKey: string): Promise<boolean> {
    return this.lock.run(sessionKey, async () => {
      const head = await this.readHead(sessionKey);
      if (!head) return false;
      this.knownAux.delete(sessionKey);
      const aux = await this.auxNames(sessionKey);
      const keys = new Set([
        ...this.chunkKeys(sessionKey, head, 0, head.sealed),
        ...[...aux.names, ...aux.index].map((name) => auxKey(sessionKey, name)),
      ]);
      // Chunks a crashed fork wrote, and anything else under the session's prefix, go too.
      for await (const key of this.scan(sessionPrefix(sessionKey))) keys.add(key);
      keys.delete(headKey(sessionKey));
      if (keys.size > 0) await this.keyv.deleteMany([...keys]);
      // The head last: until it is gone the session is visible, so a failure here can be retried.
      await this.keyv.delete(headKey(sessionKey));
      return true;
    });
  }

  async *listSessions(prefix: string): AsyncIterable<{ sessionKey: string; meta: SessionMeta }> {
    for await (const key of this.scan(`s:{${prefix}`)) {
      if (!key.endsWith('}:head')) continue;
      const sessionKey = key.slice(3, -'}:head'.length);
      const meta = await this.getMeta(sessionKey);
      if (meta) yield { sessionKey, meta };
    }
  }

  async snapshot(sessionKey: string): Promise<SessionSnapshot | undefined> {
    const head = await this.keyv.get<PersistedHead>(headKey(sessionKey));
    if (!head) return undefined;
    const aux = await this.auxNames(sessionKey);
    const chunkKeys = this.chunkKeys(sessionKey, head, 0, head.sealed);
    const auxKeys = [...aux.names, ...aux.index].map((name) => auxKey(sessionKey, name));
    const keys = [...chunkKeys, ...auxKeys];
    const values = keys.length > 0 ? await this.keyv.getMany(keys) : [];
    const records: SessionSnapshot['records'] = [];
    values.forEach((value, index) => {
      const key = keys[index]!;
      // A missing chunk would make the copy unreadable: refuse to move rather than move a hole.
      if (value === undefined || value === null) {
        if (index < chunkKeys.length) throw new Error(`session ${sessionKey}: chunk record ${key} is missing`);
        return;
      }
      records.push({ key, value });
    });
    return { version: head.v, activeAt: Math.max(head.u, head.t ?? 0), head, records };
  }

  async restore(sessionKey: string, snapshot: SessionSnapshot, touchedAt?: number): Promise<boolean> {
    const head = touchedAt === undefined ? snapshot.head : { ...(snapshot.head as PersistedHead), t: touchedAt };
    const restore = { headKey: headKey(sessionKey), version: snapshot.version, head, records: snapshot.records };
    this.knownAux.delete(sessionKey);
    if (this.atomicRestore) return this.atomicRestore(restore);
    return this.lock.run(sessionKey, async () => {
      const current = await this.keyv.get<PersistedHead>(restore.headKey);
      if (current && current.v > snapshot.version) return false;
      if (restore.records.length > 0) await this.keyv.setMany(restore.records);
      await this.keyv.set(restore.headKey, head);
      return true;
    });
  }

  async evict(sessionKey: string, snapshot: SessionSnapshot): Promise<boolean> {
    const touched = (snapshot.head as PersistedHead).t ?? -1;
    const evict = { headKey: headKey(sessionKey), version: snapshot.version, touched, keys: snapshot.records.map((record) => record.key) };
    this.knownAux.delete(sessionKey);
    if (this.atomicEvict) return this.atomicEvict(evict);
    return this.lock.run(sessionKey, async () => {
      const current = await this.keyv.get<PersistedHead>(evict.headKey);
      if (current?.v !== snapshot.version || (current.t ?? -1) !== touched) return false;
      if (evict.keys.length > 0) await this.keyv.deleteMany(evict.keys);
      await this.keyv.delete(evict.headKey);
      return true;
    });
  }

  async getRecord<T>(key: string): Promise<T | undefined> {
    return (await this.keyv.get<T>(recordKey(key))) ?? undefined;
  }

  async *listRecords(prefix: string): AsyncIterable<string> {
    const stored = recordKey(prefix).slice(0, -1);
    for await (const key of this.scan(stored)) yield key.slice(RECORD_OPEN.length, -1);
  }

  async setRecord(key: string, value: unknown): Promise<void> {
    await this.keyv.set(recordKey(key), value);
  }

  async deleteRecord(key: string): Promise<boolean> {
    return this.keyv.delete(recordKey(key));
  }

  async readAux<T>(sessionKey: string, names: string[]): Promise<Array<T | undefined>> {
    if (names.length === 0) return [];
    const values = await this.keyv.getMany<T>(names.map((name) => auxKey(sessionKey, name)));
    return values.map((value) => value ?? undefined);
  }

  async writeAux(sessionKey: string, entries: Array<{ name: string; value: unknown }>): Promise<void> {
    if (entries.length === 0) return;
    await this.lock.run(`${sessionKey}#aux`, async () => {
      let known = this.knownAux.get(sessionKey);
      if (!known) known = { names: new Set((await this.auxNames(sessionKey)).names) };
      const added = [...new Set(entries.map(({ name }) => name))].filter((name) => !known.names.has(name));
      const register: Array<{ key: string; value: unknown }> = [];
      if (added.length > 0) {
        // The segment count is read afresh, never remembered: another instance may have appended
        // since, and a remembered count would overwrite its segment.
        const root = await this.keyv.get<AuxIndexRoot>(auxKey(sessionKey, AUX_INDEX));
        let segments = root && !Array.isArray(root) ? root.segments : 0;
        // An older store's single list becomes segment 1 before the first append.
        if (Array.isArray(root)) register.push({ key: auxKey(sessionKey, `${AUX_INDEX}:${++segments}`), value: root });
        register.push(
          { key: auxKey(sessionKey, `${AUX_INDEX}:${++segments}`), value: added },
          { key: auxKey(sessionKey, AUX_INDEX), value: { segments } satisfies AuxIndexRoot },
        );
      }
      // Names first, then the records, in one write (one transaction on SQL backends): a crash
      // leaves names without records, never records without names.
      await this.keyv.setMany([...register, ...entries.map(({ name, value }) => ({ key: auxKey(sessionKey, name), value }))]);
      for (const name of added) known.names.add(name);
      this.knownAux.set(sessionKey, known);
    });
  }

  async deleteAux(sessionKey: string, names: string[]): Promise<void> {
    if (names.length > 0) await this.keyv.deleteMany(names.map((name) => auxKey(sessionKey, name)));
  }

  async ping(): Promise<void> {
    await this.keyv.get('mnemo:ping');
  }

  /** Closes gracefully, or by force when the backend is unreachable and a graceful close would wait forever. */
  async close(): Promise<void> {
    const disconnect = this.disconnect ?? (() => this.keyv.disconnect());
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), GRACEFUL_CLOSE_MS)));
    const outcome = await Promise.race([disconnect(false).catch(() => 'failed' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late' || outcome === 'failed') await disconnect(true).catch(() => undefined);
  }

  private async apply(sessionKey: string, head: HeadRecord, change: TranscriptChange) {
    const size = this.chunkSize;
    const keep = Math.max(0, Math.min(change.keep, head.n));
    const next: HeadRecord = { ...head, gens: [...head.gens], tail: [...head.tail] };
    let garbage: string[] = [];
    if (keep < head.sealed * size) {
      // The client forked inside sealed history: reopen the chunk holding `keep`
      // and give everything from it on a new generation.
      const reopened = Math.floor(keep / size);
      const partial = keep % size === 0 ? [] : (await this.readChunks(sessionKey, head, [reopened]))[0]!;
      garbage = this.chunkKeys(sessionKey, head, reopened, head.sealed);
      next.gens = head.gens.filter(([first]) => first < reopened);
      next.gens.push([reopened, head.v + 1]);
      next.sealed = reopened;
      next.tail = partial.slice(0, keep % size);
    } else {
      next.tail = next.tail.slice(0, keep - head.sealed * size);
    }
    next.tail.push(...change.append);
    const writes: Array<{ key: string; value: EncodedMessage[] }> = [];
    const sealedChunks: StoredMessage[][] = [];
    while (next.tail.length >= size) {
      const chunk = next.tail.slice(0, size);
      writes.push({ key: chunkKey(sessionKey, next.sealed, generation(next, next.sealed)), value: encodeList(chunk) });
      sealedChunks.push(chunk);
      next.tail = next.tail.slice(size);
      next.sealed++;
    }
    next.n = next.sealed * size + next.tail.length;
    return { next, writes, sealedChunks, garbage };
  }

  private async slice(sessionKey: string, head: HeadRecord, from: number, to: number): Promise<StoredMessage[]> {
    if (from >= to) return [];
    const size = this.chunkSize;
    const sealedEnd = head.sealed * size;
    const out: StoredMessage[] = [];
    if (from < sealedEnd) {
      const first = Math.floor(from / size);
      const last = Math.floor((Math.min(to, sealedEnd) - 1) / size);
      const indices = Array.from({ length: last - first + 1 }, (_, offset) => first + offset);
      for (const chunk of await this.readChunks(sessionKey, head, indices)) out.push(...chunk);
      const skip = from - first * size;
      out.splice(0, skip);
      out.length = Math.min(out.length, Math.min(to, sealedEnd) - from);
    }
    if (to > sealedEnd) out.push(...head.tail.slice(Math.max(0, from - sealedEnd), to - sealedEnd));
    return out;
  }

  /**
   * Sealed chunks by index, decoded: from the chunk cache when the session has
   * an epoch, the rest in one read. A missing one is corruption, never an empty range.
   */
  private async readChunks(sessionKey: string, head: HeadRecord, indices: number[]): Promise<Array<readonly StoredMessage[]>> {
    if (indices.length === 0) return [];
    const keys = indices.map((index) => chunkKey(sessionKey, index, generation(head, index)));
    const cache = head.e === undefined ? undefined : this.chunkCache;
    const chunks = keys.map((key) => cache?.get(head.e!, key));
    const missing = keys.filter((_, position) => chunks[position] === undefined);
    if (missing.length === 0) return chunks as Array<readonly StoredMessage[]>;
    const values = await this.keyv.getMany<EncodedMessage[]>(missing);
    let next = 0;
    return chunks.map((cached, position) => {
      if (cached) return cached;
      const value = values[next++];
      if (!value) throw new Error(`session ${sessionKey}: chunk ${indices[position]} is missing`);
      const decoded = decodeList(value);
      cache?.set(head.e!, keys[position]!, decoded);
      return decoded;
    });
  }

  private chunkKeys(sessionKey: string, head: Pick<HeadRecord, 'gens'>, from: number, to: number): string[] {
    const keys: string[] = [];
    for (let index = from; index < to; index++) keys.push(chunkKey(sessionKey, index, generation(head, index)));
    return keys;
  }

  /** Every aux name registered for the session, and the names of the index records themselves. */
  private async auxNames(sessionKey: string): Promise<{ names: string[]; index: string[] }> {
    const root = await this.keyv.get<AuxIndexRoot>(auxKey(sessionKey, AUX_INDEX));
    if (!root) return { names: [], index: [] };
    if (Array.isArray(root)) return { names: root, index: [AUX_INDEX] };
    const segmentNames = Array.from({ length: root.segments }, (_, position) => `${AUX_INDEX}:${position + 1}`);
    const segments = await this.keyv.getMany<string[]>(segmentNames.map((name) => auxKey(sessionKey, name)));
    // A segment may be missing (a write that failed between segment and root); its names were never relied on.
    return { names: segments.flatMap((names) => names ?? []), index: [AUX_INDEX, ...segmentNames] };
  }

  private async readHead(sessionKey: string): Promise<HeadRecord | undefined> {
    const head = await this.keyv.get<PersistedHead>(headKey(sessionKey));
    if (!head) return undefined;
    const known = this.decodedHeads.get(head);
    if (known) return known;
    const decoded = { ...head, tail: decodeList(head.tail) };
    // A frozen record is the stored value itself (the in-process backend): the same object comes
    // back until the next write, so it is decoded once per version, and frozen like the record.
    if (Object.isFrozen(head)) this.decodedHeads.set(head, deepFreeze(decoded));
    return decoded;
  }
}

// Braces make every key of a session one Redis Cluster hash slot.
function headKey(sessionKey: string): string {
  return `s:{${sessionKey}}:head`;
}

function sessionPrefix(sessionKey: string): string {
  return `s:{${sessionKey}}:`;
}

const RECORD_OPEN = 'r:{';

function recordKey(key: string): string {
  return `${RECORD_OPEN}${key}}`;
}

function auxKey(sessionKey: string, name: string): string {
  return `s:{${sessionKey}}:x:${name}`;
}

function chunkKey(sessionKey: string, index: number, gen: number): string {
  return `s:{${sessionKey}}:c:${index}:${gen}`;
}

function generation(head: Pick<HeadRecord, 'gens'>, index: number): number {
  let gen = 0;
  for (const [first, value] of head.gens) if (first <= index) gen = value;
  return gen;
}

function toMeta(head: HeadRecord): SessionMeta {
  return { version: head.v, count: head.n, createdAt: head.c, updatedAt: head.u, memory: head.mem ?? emptyMemory() };
}
