import { LRUCache } from 'lru-cache';
import { randomBytes } from 'node:crypto';
import { stemmer } from 'stemmer';
import type { SessionStore } from '../store/types.js';
import { MAX_PASSAGES, passagesOf, type Passage } from './passages.js';
import type { StoredMessage } from './messages.js';
import type { SessionMemory } from './state.js';

/**
 * The lexical half of recall: an inverted index over passages (see passages.ts), kept as a few
 * immutable blocks, as Lucene keeps segments. Each index run (see folds.ts) writes one block
 * holding its passages' terms and postings, and a run that leaves MERGE_FACTOR blocks of one size
 * tier at the end of the list merges them into one (size-tiered merging): a session holds a few
 * blocks per tier, their number logarithmic in its length. The statistics record lists them.
 *
 * The index used to keep one record per term, read and rewritten by every run that met the term:
 * some 25 records a message, each paid in every layer of the store (bench: two thirds of a memory
 * turn's CPU went to recall). A block is written once, under a name never used again, so a block
 * read is kept in process (see IndexCache) and no run reads or rewrites what an earlier one wrote.
 */

/**
 * A block: its terms, five numbers a term in `meta` (how many passages hold it, dropped postings
 * included; its highest tf and shortest passage, see termCeiling; where its postings start and end
 * in `postings`), and every term's postings, three numbers each (doc, tf, length), oldest first
 * within a term. Written once, never changed. Three flat arrays, not an object or a list per term:
 * a block of a thousand terms used to be thousands of small objects to build, merge, freeze and
 * collect, and that was most of an index run's CPU. The in-process store keeps the object itself;
 * a JSON store (SQLite, Redis, PostgreSQL) gets it packed (see PackedBlock), and a block read from
 * one is unpacked once, then cached.
 */
export class Block {
  /** Estimated bytes in process, for the block cache. */
  bytes = 0;
  readonly terms: string[] = [];
  readonly meta: number[] = [];
  readonly postings: number[] = [];

  /** Adds a term whose postings were just pushed onto `postings`, from `start` on. */
  add(term: string, df: number, maxTf: number, minLength: number, start: number): void {
    this.terms.push(term);
    this.meta.push(df, maxTf, minLength, start, this.postings.length);
    this.bytes += ((this.postings.length - start) / 3) * POSTING_BYTES + term.length + TERM_OVERHEAD;
  }

  /**
   * Once built, a block never changes: frozen here, arrays and all (they hold only strings and
   * numbers, so this is deep), and the in-process store's deep freeze finds nothing left to walk
   * (it visited every number: a tenth of an index run).
   */
  seal(): this {
    Object.freeze(this.terms);
    Object.freeze(this.meta);
    Object.freeze(this.postings);
    return Object.freeze(this);
  }

  /** What JSON.stringify (so every JSON store) writes. */
  toJSON(): PackedBlock {
    const meta = Buffer.allocUnsafe(this.terms.length * 16);
    const postings = Buffer.allocUnsafe((this.postings.length / 3) * 12);
    for (let at = 0, offset = 0; at < this.postings.length; at += 3, offset += 12) {
      postings.writeInt32LE(this.postings[at]!, offset);
      postings.writeFloatLE(this.postings[at + 1]! / HALVES, offset + 4);
      postings.writeInt32LE(this.postings[at + 2]!, offset + 8);
    }
    for (let position = 0; position < this.terms.length; position++) {
      const at = position * 5;
      meta.writeInt32LE(this.meta[at]!, position * 16);
      meta.writeFloatLE(this.meta[at + 1]! / HALVES, position * 16 + 4);
      meta.writeInt32LE(this.meta[at + 2]!, position * 16 + 8);
      meta.writeInt32LE(this.meta[at + 4]! / 3, position * 16 + 12);
    }
    return { terms: this.terms.join('\n'), meta: meta.toString('base64'), postings: postings.toString('base64') };
  }
}

/**
 * In process, a term frequency is kept in halves (a question's words count half, see
 * informationWeight), so every number a block holds is a small integer. V8 keeps such arrays
 * untagged, and freezing one (the in-process store freezes what it keeps) is free, where freezing
 * an array holding any fraction boxes every element: 12 ns a number, a tenth of an index run.
 */
const HALVES = 2;
/** A shortest passage not yet seen: larger than any, and still a small integer. */
const NO_LENGTH = 2 ** 30;

/**
 * A block as a JSON store holds it: three strings, so reading one parses three strings, not
 * thousands of numbers (the cost of a cache miss with SQLite or Redis). Terms joined by newlines (a
 * term never holds one); per term 16 bytes of `meta`: df, maxTf (float), minLength and where its
 * postings end (in postings); per posting 12 bytes: doc, tf (float), length. Little endian, base64.
 */
export interface PackedBlock {
  terms: string;
  meta: string;
  postings: string;
}

/** A block as read from the store: as stored in process, or packed by a JSON store. */
export function readBlock(value: Block | PackedBlock): Block {
  if (value instanceof Block) return value;
  const block = new Block();
  if (value.terms === '') return block.seal();
  const meta = Buffer.from(value.meta, 'base64');
  const postings = Buffer.from(value.postings, 'base64');
  for (let offset = 0; offset < postings.length; offset += 12)
    block.postings.push(
      postings.readInt32LE(offset),
      Math.round(postings.readFloatLE(offset + 4) * HALVES),
      postings.readInt32LE(offset + 8),
    );
  let start = 0;
  value.terms.split('\n').forEach((term, position) => {
    const at = position * 16;
    const end = meta.readInt32LE(at + 12) * 3;
    block.terms.push(term);
    block.meta.push(meta.readInt32LE(at), Math.round(meta.readFloatLE(at + 4) * HALVES), meta.readInt32LE(at + 8), start, end);
    block.bytes += ((end - start) / 3) * POSTING_BYTES + term.length + TERM_OVERHEAD;
    start = end;
  });
  return block.seal();
}

/** A block as the statistics list it: its record's name and how many passages it indexes. */
export interface BlockRef {
  name: string;
  docs: number;
}

// Each block's term positions: kept from building or merging it, or built at its first lookup.
const positions = new WeakMap<Block, Map<string, number>>();

/** Where each term is in `block` (its meta at 5 × that). */
function dictionaryOf(block: Block): Map<string, number> {
  let byTerm = positions.get(block);
  if (!byTerm) positions.set(block, (byTerm = new Map(block.terms.map((name, position) => [name, position]))));
  return byTerm;
}

/**
 * Postings are plain numbers, three a posting. A block is written once, so the cost that once made
 * the index pack its lists into base64 (every run re-serializing every list it touched) is gone,
 * and a search reads a list where it lies, with no decoding: in a long session a query's terms
 * are in many blocks, and decoding each piece was a third of the search.
 */
const POSTING_BYTES = 3 * 8;

/**
 * Index records as read and decoded (blocks, and embedding segments: see recall.ts), least
 * recently used out first once their estimated size passes the bound. Keyed by session and name:
 * a name is never written with other content, so an entry cannot go stale, whatever other
 * instances write. With the in-process store a block entry is the stored record itself; with the
 * others it saves a read and a parse. A record that falls out is read again at the next search.
 */
class IndexCache {
  // lru-cache, not a Map kept in use order by re-inserting: V8 finds a Map's oldest entry by
  // skipping the holes re-inserts leave, a scan of the table per eviction.
  private readonly entries?: LRUCache<string, { readonly bytes: number }>;

  constructor(maxBytes: number) {
    if (maxBytes > 0) this.entries = new LRUCache({ maxSize: maxBytes, sizeCalculation: (record) => Math.max(1, record.bytes) });
  }

  get(key: string): { readonly bytes: number } | undefined {
    return this.entries?.get(key);
  }

  delete(key: string): void {
    this.entries?.delete(key);
  }

  /** A record larger than the whole cache is not kept. */
  set(key: string, record: { readonly bytes: number }): void {
    if (this.entries && !this.entries.has(key)) this.entries.set(key, record);
  }
}

/** store.index_cache's default (the schema's), also what a process that never configures it gets. */
export const DEFAULT_BLOCK_CACHE_BYTES = 256 * 1024 * 1024;
let indexCache = new IndexCache(DEFAULT_BLOCK_CACHE_BYTES);

/** Sizes this process's index cache (store.index_cache), emptying it. */
export function configureBlockCache(maxBytes: number): void {
  indexCache = new IndexCache(maxBytes);
}

function cacheKey(sessionKey: string, name: string): string {
  return `${sessionKey}\n${name}`;
}

/** The blocks named: from the cache, else read in one call. */
async function loadBlocks(store: SessionStore, sessionKey: string, names: string[]): Promise<Block[]> {
  // Missing only if deleted under a search that read an old list (see RETIRE_AFTER_MS): it reads as empty.
  return (await loadIndexRecords(store, sessionKey, names, readBlock)).map((block) => block ?? EMPTY_BLOCK);
}

/**
 * Side records of the index (written once under each name), decoded by `decode`: from the process's
 * index cache, else read in one call and kept there. A record that is gone comes back undefined.
 */
export async function loadIndexRecords<Stored, Decoded extends { readonly bytes: number }>(
  store: SessionStore,
  sessionKey: string,
  names: string[],
  decode: (value: Stored) => Decoded,
): Promise<Array<Decoded | undefined>> {
  const keys = names.map((name) => cacheKey(sessionKey, name));
  const cached = keys.map((key) => indexCache.get(key) as Decoded | undefined);
  const missing = names.filter((_, position) => !cached[position]);
  const read = missing.length > 0 ? await store.readAux<Stored>(sessionKey, missing) : [];
  const records = new Map(missing.map((name, position) => [name, read[position]]));
  return names.map((name, position) => {
    if (cached[position]) return cached[position];
    const value = records.get(name);
    if (value === undefined) return undefined;
    const decoded = decode(value);
    indexCache.set(keys[position]!, decoded);
    return decoded;
  });
}

const EMPTY_BLOCK = new Block().seal();

/** The index's statistics and progress: one side record per generation, read first by every search. */
export interface IndexStats {
  /** Passages indexed, and their total length in terms (BM25's statistics). */
  docs: number;
  length: number;
  /** The lexical index's blocks, oldest first. */
  blocks: BlockRef[];
  /**
   * Blocks merged away and when: deleted once no run that read an older list can still be landing
   * it (a run on another instance, racing this one, writes the list it read plus its own block).
   */
  retired?: Array<{ name: string; at: number }>;
  /** Messages [0, indexedUpTo) are in the lexical index. */
  indexedUpTo: number;
  /** Messages [0, embeddedUpTo) have vectors in `segments`. */
  embeddedUpTo: number;
  /** Side records of packed passage vectors. */
  segments: string[];
}

export const EMPTY_STATS: IndexStats = { docs: 0, length: 0, blocks: [], indexedUpTo: 0, embeddedUpTo: 0, segments: [] };

/**
 * The stats record as this mnemo reads it. An older mnemo kept one record per term, which this
 * one does not read: its lexical index starts over (the next run rebuilds it, INDEX_BATCH messages
 * at a time), its vectors are kept.
 */
export function currentStats(stored: IndexStats | undefined): IndexStats {
  if (!stored) return EMPTY_STATS;
  if (Array.isArray(stored.blocks)) return stored;
  return { ...EMPTY_STATS, embeddedUpTo: stored.embeddedUpTo ?? 0, segments: stored.segments ?? [] };
}

/** The head's index generation; sessions an older mnemo indexed start at 1 (their records had other names). */
export function indexGeneration(recall: SessionMemory['recall']): number {
  return recall.generation ?? 1;
}

export function statsRecordName(generation: number): string {
  return `x${generation}`;
}

/**
 * A new block's name: this process's random prefix and a counter, so no two writes (two instances'
 * runs, say, or a process and its restart) ever share one. (Nine random bytes a name cost more
 * than the rest of naming a block.)
 */
function blockName(generation: number): string {
  return `b${generation}:${BLOCK_NAME_PREFIX}${(blocksNamed++).toString(36)}`;
}

const BLOCK_NAME_PREFIX = randomBytes(9).toString('base64url');
let blocksNamed = 0;

/** The newest postings a term keeps in a block: a term in thousands of passages says little (low idf), and its newest mentions are the ones worth recalling. */
const MAX_POSTINGS = 256;

/**
 * Merging: MERGE_FACTOR blocks of one tier at the end of the list become one. A block's tier is
 * log base MERGE_FACTOR of its passages over TIER_BASE, so a session of n passages holds at most
 * MERGE_FACTOR - 1 blocks a tier, about log4(n / 8) tiers, and each posting is copied once a tier.
 */
const MERGE_FACTOR = 4;
const TIER_BASE = 8;

/** How many blocks at the end of the list to merge now: MERGE_FACTOR when they share a tier, else none. */
function mergeDue(blocks: BlockRef[]): number {
  if (blocks.length < MERGE_FACTOR) return 0;
  return new Set(blocks.slice(-MERGE_FACTOR).map(({ docs }) => tier(docs))).size === 1 ? MERGE_FACTOR : 0;
}

function tier(docs: number): number {
  return docs < TIER_BASE * MERGE_FACTOR ? 0 : Math.floor(Math.log(docs / TIER_BASE) / Math.log(MERGE_FACTOR));
}

/**
 * How long a merged-away block stays: a run racing this one on another instance may land the list
 * it read, naming the blocks this run merged; they must still be there. So a run lands only within
 * LANDING_DEADLINE_MS of reading the stats (see folds.ts), and a block is deleted at the first run
 * after RETIRE_AFTER_MS, twice that: the margin covers clocks that differ between instances.
 */
export const LANDING_DEADLINE_MS = 60_000;
const RETIRE_AFTER_MS = 2 * LANDING_DEADLINE_MS;

/**
 * A term in more than FREQUENT_SHARE of the session's passages says little about any one of them
 * (its idf is low): a search scores only its FREQUENT_POSTINGS newest mentions. In a long session
 * such terms' lists are full, and scoring every posting of them was the part of a turn that grew
 * with the session (bench: a 1,000-turn turn 1.42 → 1.01 ms of CPU; LoCoMo: 0.753 → 0.751).
 */
const FREQUENT_SHARE = 0.05;
const FREQUENT_POSTINGS = 64;

/**
 * A term in at least this share of passages (once there are COMMON_MIN_DOCS of them) is the
 * session's own vocabulary, not a clue: a speaker's name on every line, the order id a whole
 * conversation is about, a reply template's words. Its idf is under 1, it lifts every passage alike,
 * and its postings are the longest to score: searches skip it. (At 0.9, templated turns still
 * made every earlier turn look relevant; bench:locomo: recall unchanged at 0.4, cost 0.79 -> 0.77.)
 */
const COMMON_SHARE = 0.4;
const COMMON_MIN_DOCS = 50;

// Okapi BM25 (Robertson & Zaragoza, 2009) with k1 as usual and a weak length normalisation:
// the usual b = 0.75 ranked short content-free passages ("Question: …", "ok!") above the long
// ones that hold the facts (measured on LoCoMo by bench:locomo).
const K1 = 1.2;
const B = 0.3;
const MAX_TERM_LENGTH = 40;
const STOPWORDS = new Set(
  (
    'a an and are as at be but by can could did do does for from had has have how i if in into is it its me my no not of on or our ' +
    'please so that the their them then there these they this to too was we were what whats when where which who why will with would ' +
    'you your yes ok okay hi hello thanks thank s t just really very also been being am im ive its about'
  ).split(' '),
);

// Stems are pure functions of the word; a conversation reuses a few thousand words. Numbers and
// ids are not stemmed, nor cached: each is new, and they filled the cache that the words need.
const STEM_CACHE_LIMIT = 50_000;
const stems = new Map<string, string>();

function stem(word: string): string {
  if (!/^[a-z]+$/.test(word)) return word;
  let stemmed = stems.get(word);
  if (stemmed === undefined) {
    // Porter's algorithm (the `stemmer` package).
    stemmed = stemmer(word);
    if (stems.size >= STEM_CACHE_LIMIT) stems.clear();
    stems.set(word, stemmed);
  }
  return stemmed;
}

/** Lower-cased, stemmed word and number tokens without stopwords; unicode letters count as word characters. */
export function terms(text: string): string[] {
  const out: string[] = [];
  // Split on what is not a word character: one array of words, where matching allocated a match object per word.
  for (const term of text.toLowerCase().split(NOT_WORD)) {
    if (term === '' || term.length > MAX_TERM_LENGTH || STOPWORDS.has(term)) continue;
    out.push(stem(term));
  }
  return out;
}

const NOT_WORD = /[^\p{L}\p{N}]+/u;

/**
 * How much a passage's words count: a question ("What kind of projects are you working on?")
 * shares the words of a later question about the same thing but rarely holds its answer, which
 * is in the reply (a neighbour). Counted at half weight, questions stop crowding out the
 * statements that answer. Stored in the postings as a fractional term frequency.
 */
const QUESTION_WEIGHT = 0.5;

function informationWeight(text: string): number {
  return isQuestion(text) ? QUESTION_WEIGHT : 1;
}

/** A passage that ends in a question mark asks rather than tells. */
export function isQuestion(text: string): boolean {
  return /\?["')\]]*$/.test(text.trimEnd());
}

// A term's share of a block beyond its postings: its name, its five numbers, its map entry (bytes).
const TERM_OVERHEAD = 96;

/**
 * The block of `passages` (a run's), and BM25's statistics delta. Each term's postings are counted
 * first and then copied to their place, newest MAX_POSTINGS kept: flat arrays throughout, no list
 * per term.
 */
function blockOf(passages: Array<Pick<Passage, 'doc' | 'text'>>): { block: Block; docs: number; length: number } {
  const byTerm = new Map<string, number>();
  const names: string[] = [];
  const meta: number[] = []; // df, maxTf, minLength per term
  const found: number[] = []; // term, doc, tf, length per posting, in passage order
  const counts = new Map<string, number>();
  let docs = 0;
  let length = 0;
  for (const passage of passages) {
    const words = terms(passage.text);
    if (words.length === 0) continue;
    docs++;
    length += words.length;
    const weight = informationWeight(passage.text);
    counts.clear();
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
    for (const [term, count] of counts) {
      let position = byTerm.get(term);
      if (position === undefined) {
        byTerm.set(term, (position = names.length));
        names.push(term);
        meta.push(0, 0, NO_LENGTH);
      }
      const tf = Math.round(count * weight * HALVES);
      meta[position * 3] = meta[position * 3]! + 1;
      meta[position * 3 + 1] = Math.max(meta[position * 3 + 1]!, tf);
      meta[position * 3 + 2] = Math.min(meta[position * 3 + 2]!, words.length);
      found.push(position, passage.doc, tf, words.length);
    }
  }
  const block = new Block();
  // Where each term's kept postings go, and how many of its oldest to drop (past the cap).
  const cursor: number[] = [];
  const drop: number[] = [];
  let total = 0;
  for (let position = 0; position < names.length; position++) {
    const count = meta[position * 3]!;
    cursor.push(total);
    drop.push(Math.max(0, count - MAX_POSTINGS));
    total += 3 * Math.min(count, MAX_POSTINGS);
  }
  // Zeros pushed, not a length set: an array with holes is slower to read and to freeze.
  for (let at = 0; at < total; at++) block.postings.push(0);
  for (let at = 0; at < found.length; at += 4) {
    const position = found[at]!;
    if (drop[position]! > 0) {
      drop[position]!--;
      continue;
    }
    const to = cursor[position]!;
    block.postings[to] = found[at + 1]!;
    block.postings[to + 1] = found[at + 2]!;
    block.postings[to + 2] = found[at + 3]!;
    cursor[position] = to + 3;
  }
  let start = 0;
  for (let position = 0; position < names.length; position++) {
    const end = start + 3 * Math.min(meta[position * 3]!, MAX_POSTINGS);
    block.terms.push(names[position]!);
    block.meta.push(meta[position * 3]!, meta[position * 3 + 1]!, meta[position * 3 + 2]!, start, end);
    block.bytes += ((end - start) / 3) * POSTING_BYTES + names[position]!.length + TERM_OVERHEAD;
    start = end;
  }
  positions.set(block, byTerm);
  return { block: block.seal(), docs, length };
}

/**
 * One block holding everything in `blocks` (oldest first): each term's counts summed and bounds
 * kept, its postings joined in block order and capped to the newest. Two passes over flat arrays:
 * the first counts, the second copies each term's postings to where its counts put them.
 */
function mergeBlocks(blocks: Block[]): Block {
  const byTerm = new Map<string, number>();
  const terms: string[] = [];
  const meta: number[] = []; // df, maxTf, minLength, numbers of postings, numbers to skip (the oldest, past the cap)
  const sources: number[][] = blocks.map((block) =>
    block.terms.map((term, position) => {
      let merged = byTerm.get(term);
      if (merged === undefined) {
        byTerm.set(term, (merged = terms.length));
        terms.push(term);
        meta.push(0, 0, NO_LENGTH, 0, 0);
      }
      const at = merged * 5;
      const from = position * 5;
      meta[at] = meta[at]! + block.meta[from]!;
      meta[at + 1] = Math.max(meta[at + 1]!, block.meta[from + 1]!);
      meta[at + 2] = Math.min(meta[at + 2]!, block.meta[from + 2]!);
      meta[at + 3] = meta[at + 3]! + block.meta[from + 4]! - block.meta[from + 3]!;
      return merged;
    }),
  );
  const block = new Block();
  const cursor: number[] = [];
  let total = 0;
  for (let merged = 0; merged < terms.length; merged++) {
    const at = merged * 5;
    const kept = Math.min(meta[at + 3]!, MAX_POSTINGS * 3);
    meta[at + 4] = meta[at + 3]! - kept;
    cursor.push(total);
    total += kept;
  }
  // Zeros pushed, not a length set: an array with holes is slower to read and to freeze.
  for (let at = 0; at < total; at++) block.postings.push(0);
  blocks.forEach((source, index) => {
    const mergedAt = sources[index]!;
    for (let position = 0; position < source.terms.length; position++) {
      const merged = mergedAt[position]!;
      const from = position * 5;
      let start = source.meta[from + 3]!;
      const end = source.meta[from + 4]!;
      const skip = Math.min(end - start, meta[merged * 5 + 4]!);
      meta[merged * 5 + 4] = meta[merged * 5 + 4]! - skip;
      start += skip;
      let to = cursor[merged]!;
      for (let at = start; at < end; at++) block.postings[to++] = source.postings[at]!;
      cursor[merged] = to;
    }
  });
  let start = 0;
  for (let merged = 0; merged < terms.length; merged++) {
    const at = merged * 5;
    const end = start + Math.min(meta[at + 3]!, MAX_POSTINGS * 3);
    block.terms.push(terms[merged]!);
    block.meta.push(meta[at]!, meta[at + 1]!, meta[at + 2]!, start, end);
    block.bytes += ((end - start) / 3) * POSTING_BYTES + terms[merged]!.length + TERM_OVERHEAD;
    start = end;
  }
  positions.set(block, byTerm);
  return block.seal();
}

/** A run's change to the index: the statistics to write, after the blocks they list, and blocks now safe to delete. */
export interface IndexUpdate {
  stats: IndexStats;
  writes: Array<{ name: string; value: Block }>;
  /** Retired long enough ago that no racing run can still land a list naming them (see RETIRE_AFTER_MS). */
  expired: string[];
  /** When the stats it builds on were read: it must land within LANDING_DEADLINE_MS of that, or not at all. */
  readAt: number;
}

/**
 * Adds `passages` (newly committed messages', or a turn's keys) to the index described by
 * `stats`: one new block, merged with the newest ones while MERGE_FACTOR of one tier end the list.
 * Nothing is written: the caller writes the blocks, then the stats that list them, in one write.
 */
export async function addToIndex(
  store: SessionStore,
  sessionKey: string,
  generation: number,
  stats: IndexStats,
  passages: Array<Pick<Passage, 'doc' | 'text'>>,
  /** When `stats` was read. */
  now: number,
): Promise<IndexUpdate> {
  const { block: added, docs, length } = blockOf(passages);
  // Built here, written by the caller, and cached as they are (a name is never reused).
  const built = new Map<string, Block>();
  let blocks = stats.blocks;
  const retired = [...(stats.retired ?? [])];
  if (docs > 0) {
    const name = blockName(generation);
    built.set(name, added);
    blocks = [...blocks, { name, docs }];
  }
  for (let count = mergeDue(blocks); count > 0; count = mergeDue(blocks)) {
    const merging = blocks.slice(-count);
    const unbuilt = merging.filter(({ name }) => !built.has(name)).map(({ name }) => name);
    const loaded = new Map((await loadBlocks(store, sessionKey, unbuilt)).map((block, position) => [unbuilt[position]!, block]));
    const merged = mergeBlocks(merging.map(({ name }) => built.get(name) ?? loaded.get(name)!));
    for (const { name } of merging) {
      if (built.delete(name)) continue;
      retired.push({ name, at: now });
      // Only a search that read an older list still wants it: it reads it from the store.
      indexCache.delete(cacheKey(sessionKey, name));
    }
    const name = blockName(generation);
    built.set(name, merged);
    blocks = [...blocks.slice(0, -count), { name, docs: merging.reduce((total, { docs }) => total + docs, 0) }];
  }
  for (const [name, block] of built) indexCache.set(cacheKey(sessionKey, name), block);
  const expired = retired.filter(({ at }) => at <= now - RETIRE_AFTER_MS);
  const kept = retired.filter(({ at }) => at > now - RETIRE_AFTER_MS);
  return {
    stats: {
      ...stats,
      docs: stats.docs + docs,
      length: stats.length + length,
      blocks,
      retired: kept.length > 0 ? kept : undefined,
    },
    writes: [...built].map(([name, value]) => ({ name, value })),
    expired: expired.map(({ name }) => name),
    readAt: now,
  };
}

/** Indexes `messages` past the stats' progress and writes the change: what a run does, without embeddings (tests, imports). */
export async function indexMessages(
  store: SessionStore,
  sessionKey: string,
  generation: number,
  messages: Array<{ index: number; stored: StoredMessage }>,
  now = Date.now(),
): Promise<IndexStats> {
  const [stored] = await store.readAux<IndexStats>(sessionKey, [statsRecordName(generation)]);
  const stats = currentStats(stored);
  const passages = messages.filter(({ index }) => index >= stats.indexedUpTo).flatMap(({ index, stored }) => passagesOf(stored, index));
  const update = await addToIndex(store, sessionKey, generation, stats, passages, now);
  const next = { ...update.stats, indexedUpTo: Math.max(stats.indexedUpTo, ...messages.map(({ index }) => index + 1)) };
  await store.writeAux(sessionKey, [...update.writes, { name: statsRecordName(generation), value: next }]);
  if (update.expired.length > 0) await store.deleteAux(sessionKey, update.expired);
  return next;
}

export interface RecallHit {
  doc: number;
  score: number;
  /**
   * How much of the query the passage matches: its score over the score of a passage of average
   * length holding every query term once. Comparable across queries, unlike a raw BM25 score.
   */
  coverage: number;
}

/** A search's outcome: the hits, the index's statistics, and every passage a query term matched. */
export interface LexicalSearch {
  hits: RecallHit[];
  stats: IndexStats;
  /** Passages sharing at least one (scored) term with the query, hits or not; empty when nothing is recalled. */
  matched: ReadonlySet<number>;
  /** Query terms whose postings were read (the trigger can decide before the commonest are). */
  termsRead: number;
}

const NOTHING: ReadonlySet<number> = new Set();

/** A query term as the index knows it: where its postings are (newest block first), its idf and its bound. */
interface QueryTerm {
  /** Where its entries are: block, and position in it; newest block first. */
  at: Array<[Block, number]>;
  df: number;
  idf: number;
  ceiling: number;
}

/**
 * The passages below `belowDoc` that best match `query`, best first, at most `limit`, with the
 * index's statistics. Reads the stats record and, from the block cache, the session's blocks;
 * decodes only the query terms' postings.
 */
export async function searchPassages(
  store: SessionStore,
  sessionKey: string,
  generation: number,
  query: string,
  options: { limit: number; belowIndex: number; minCoverage: number; triggerCoverage?: number },
): Promise<LexicalSearch> {
  const [stored] = await store.readAux<IndexStats>(sessionKey, [statsRecordName(generation)]);
  const stats = currentStats(stored);
  const { docs, length } = stats;
  const queryTerms = [...new Set(terms(query))];
  if (docs === 0 || options.limit === 0 || queryTerms.length === 0) return { hits: [], stats, matched: NOTHING, termsRead: 0 };
  const blocks = await loadBlocks(
    store,
    sessionKey,
    stats.blocks.map(({ name }) => name),
  );
  const belowDoc = Math.min(options.belowIndex, stats.indexedUpTo) * MAX_PASSAGES;
  const averageLength = length / docs || 1;
  const weighted: QueryTerm[] = [];
  // Each block's dictionary fetched once, not once per query term: a search's lookups touch memory
  // all over the heap, and every avoidable one showed up as the search's largest cost.
  const dictionaries = blocks.map(dictionaryOf);
  for (const term of queryTerms) {
    const at: Array<[Block, number]> = [];
    let df = 0;
    let maxTf = 0;
    let minLength = Infinity;
    for (let index = blocks.length - 1; index >= 0; index--) {
      const block = blocks[index]!;
      const position = dictionaries[index]!.get(term);
      if (position === undefined) continue;
      at.push([block, position]);
      df += block.meta[position * 5]!;
      maxTf = Math.max(maxTf, block.meta[position * 5 + 1]! / HALVES);
      minLength = Math.min(minLength, block.meta[position * 5 + 2]!);
    }
    if (at.length === 0 || (docs >= COMMON_MIN_DOCS && df >= COMMON_SHARE * docs)) continue;
    const idf = Math.log(1 + (docs - df + 0.5) / (df + 0.5));
    weighted.push({ at, df, idf, ceiling: idf * termCeiling(maxTf, minLength, averageLength) });
  }
  // Rarest terms first: they decide whether any passage can reach the trigger (below).
  weighted.sort((a, b) => b.idf - a.idf);
  const ideal = weighted.reduce((total, { idf }) => total + idf, 0);
  if (ideal === 0) return { hits: [], stats, matched: NOTHING, termsRead: 0 };
  const trigger = (options.triggerCoverage ?? 0) * ideal;
  // Terms are scored rarest first, and before each list is read the search asks whether any
  // passage can still reach the trigger: the best partial score so far plus the bounds of the terms
  // not yet read (MaxScore; Turtle & Flood, 1995). When none can, nothing is recalled and the
  // commonest terms' lists, the longest, are never read. Most chat turns are statements, whose
  // trigger is high, and share few rare words with any one earlier passage. A term's bound is what
  // its own postings can add at most (termCeiling): with BM25's general bound, idf × (k1 + 1), over
  // twice what a word said once adds, a statement still read about 60% of its lists.
  const unread: number[] = new Array<number>(weighted.length + 1).fill(0);
  for (let at = weighted.length - 1; at >= 0; at--) unread[at] = unread[at + 1]! + weighted[at]!.ceiling;
  const scores = new Scores(belowDoc);
  let leading = 0;
  let hopeless = false;
  let termsRead = 0;
  for (const [index, { at, df, idf }] of weighted.entries()) {
    if (leading + unread[index]! < trigger) {
      hopeless = true;
      break;
    }
    termsRead++;
    // The newest mentions, newest block first.
    let left = df > FREQUENT_SHARE * docs ? FREQUENT_POSTINGS : MAX_POSTINGS;
    for (const [{ meta, postings }, position] of at) {
      const end = meta[position * 5 + 4]!;
      const first = Math.max(meta[position * 5 + 3]!, end - left * 3);
      left -= (end - first) / 3;
      for (let at = first; at < end; at += 3) {
        const doc = postings[at]!;
        if (doc >= belowDoc) continue;
        const tf = postings[at + 1]! / HALVES;
        const total = scores.add(doc, (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * postings[at + 2]!) / averageLength)));
        if (total > leading) leading = total;
      }
      if (left === 0) break;
    }
  }
  const totals = scores.release();
  if (hopeless) return { hits: [], stats, matched: NOTHING, termsRead };
  const hits: RecallHit[] = [];
  let best = 0;
  for (const [doc, total] of totals) {
    const coverage = total / ideal;
    best = Math.max(best, coverage);
    if (coverage >= options.minCoverage) hits.push({ doc, score: total, coverage });
  }
  // Nothing matches the message well enough: it does not need the past (and pays nothing for it).
  if (best * ideal < trigger) return { hits: [], stats, matched: NOTHING, termsRead };
  return {
    hits: hits.sort((a, b) => b.score - a.score || b.doc - a.doc).slice(0, options.limit),
    stats,
    matched: new Set(scores.docs),
    termsRead,
  };
}

/**
 * A search's running scores by doc. Adding to a Map entry per posting was half a long session's
 * search: the scores live in one array indexed by doc instead, kept between searches (a search
 * never awaits while it scores) and cleared by the docs it touched. Sessions too long for it
 * (over SCOREBOARD_DOCS passage ids, some 32,000 messages) use a Map.
 */
const SCOREBOARD_DOCS = 1 << 20;
let scoreboard = new Float64Array(1 << 12);

class Scores {
  readonly docs: number[] = [];
  private readonly board?: Float64Array;
  private readonly map?: Map<number, number>;

  constructor(belowDoc: number) {
    if (belowDoc > SCOREBOARD_DOCS) this.map = new Map();
    else {
      if (scoreboard.length < belowDoc) scoreboard = new Float64Array(2 ** Math.ceil(Math.log2(belowDoc)));
      this.board = scoreboard;
    }
  }

  /** Adds to the doc's score and returns its total. Every addition is positive: zero means untouched. */
  add(doc: number, value: number): number {
    const previous = this.board ? this.board[doc]! : (this.map!.get(doc) ?? 0);
    if (previous === 0) this.docs.push(doc);
    const total = previous + value;
    if (this.board) this.board[doc] = total;
    else this.map!.set(doc, total);
    return total;
  }

  /** Every [doc, total], leaving the shared array cleared. Call exactly once, when done adding. */
  release(): Array<[number, number]> {
    return this.docs.map((doc) => {
      const total = this.board ? this.board[doc]! : this.map!.get(doc)!;
      if (this.board) this.board[doc] = 0;
      return [doc, total];
    });
  }
}

/**
 * The most one posting of a term can add to a score, per unit of idf: BM25's term weight grows
 * with tf and shrinks with the passage's length, so the term's highest tf in its shortest passage
 * bounds it.
 */
function termCeiling(maxTf: number, minLength: number, averageLength: number): number {
  return (maxTf * (K1 + 1)) / (maxTf + K1 * (1 - B + (B * minLength) / averageLength));
}

export type { Passage };
