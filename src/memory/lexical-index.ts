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
 * A block is written once under a name never used again, so its decoded form is kept in process
 * (see BlockCache): a search or a merge decodes each block once, and no run ever reads and rewrites
 * what an earlier run wrote. The index used to keep one record per term, read and rewritten by
 * every run that met the term: some 25 records a message, each paid in every layer of the store
 * (bench: two thirds of a memory turn's CPU went to recall).
 */

/** A block as stored: JSON-shaped, written once, never changed. */
export interface BlockRecord {
  terms: string[];
  /**
   * Per term: how many of the block's passages hold it (dropped postings included), and its
   * highest term frequency and shortest passage, which bound what it can add to a score (see
   * termCeiling).
   */
  df: number[];
  maxTf: number[];
  minLength: number[];
  /** Per term: where its postings end in `postings` (counted in postings); the next term's start there. */
  ends: number[];
  /** Every term's postings, oldest first within a term, packed (see packPostings). */
  postings: string;
}

/** A block as the statistics list it: its record's name and how many passages it indexes. */
export interface BlockRef {
  name: string;
  docs: number;
}

/**
 * A posting list as stored: 12 bytes a posting (doc int32, tf float32, length int32, little
 * endian), base64: 16 characters each.
 */
const POSTING_BYTES = 12;

export function packPostings(flat: number[]): string {
  // Every byte is written below: no need to zero them first, and small lists come from Node's pool.
  const bytes = Buffer.allocUnsafe((flat.length / 3) * POSTING_BYTES);
  for (let at = 0, offset = 0; at < flat.length; at += 3, offset += POSTING_BYTES) {
    bytes.writeInt32LE(flat[at]!, offset);
    bytes.writeFloatLE(flat[at + 1]!, offset + 4);
    bytes.writeInt32LE(flat[at + 2]!, offset + 8);
  }
  return bytes.toString('base64');
}

/** A block decoded: its terms by name, its postings in typed arrays. */
export class Block {
  private readonly positions = new Map<string, number>();
  readonly docs: Int32Array;
  readonly tfs: Float32Array;
  readonly lengths: Int32Array;

  /** `flat`: the postings as doc, tf, length triples, when the caller packed them just now. */
  constructor(
    readonly record: BlockRecord,
    flat?: number[],
  ) {
    record.terms.forEach((term, position) => this.positions.set(term, position));
    const bytes = flat ? undefined : Buffer.from(record.postings, 'base64');
    const count = flat ? flat.length / 3 : bytes!.length / POSTING_BYTES;
    this.docs = new Int32Array(count);
    this.tfs = new Float32Array(count);
    this.lengths = new Int32Array(count);
    for (let i = 0, offset = 0; i < count; i++, offset += POSTING_BYTES) {
      this.docs[i] = flat ? flat[i * 3]! : bytes!.readInt32LE(offset);
      this.tfs[i] = flat ? flat[i * 3 + 1]! : bytes!.readFloatLE(offset + 4);
      this.lengths[i] = flat ? flat[i * 3 + 2]! : bytes!.readInt32LE(offset + 8);
    }
  }

  /** The term's position in the block, or -1. */
  find(term: string): number {
    return this.positions.get(term) ?? -1;
  }

  /** Postings [start, end) are the term's at `position`. */
  start(position: number): number {
    return position === 0 ? 0 : this.record.ends[position - 1]!;
  }

  end(position: number): number {
    return this.record.ends[position]!;
  }

  /** Estimated bytes held in process. */
  get bytes(): number {
    return this.docs.length * POSTING_BYTES + this.record.terms.length * 96 + this.record.postings.length;
  }
}

/**
 * Decoded blocks, least recently used out first once their estimated size passes the bound. Keyed
 * by session and name: a name is never written twice, so an entry cannot go stale, whatever other
 * instances write. A session that falls out reads and decodes its blocks again at its next search.
 */
class BlockCache {
  private readonly entries = new Map<string, Block>();
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Block | undefined {
    const block = this.entries.get(key);
    if (block) {
      this.entries.delete(key);
      this.entries.set(key, block);
    }
    return block;
  }

  set(key: string, block: Block): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, block);
    this.size += block.bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.size <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.size -= entry.bytes;
    }
  }
}

const BLOCK_CACHE_BYTES = 64 * 1024 * 1024;
const blockCache = new BlockCache(BLOCK_CACHE_BYTES);

function cacheKey(sessionKey: string, name: string): string {
  return `${sessionKey}\n${name}`;
}

/** The blocks named, decoded: from the cache, else read in one call. */
async function loadBlocks(store: SessionStore, sessionKey: string, names: string[]): Promise<Block[]> {
  const keys = names.map((name) => cacheKey(sessionKey, name));
  const blocks = keys.map((key) => blockCache.get(key));
  const missing = names.filter((_, position) => !blocks[position]);
  const read = missing.length > 0 ? await store.readAux<BlockRecord>(sessionKey, missing) : [];
  const records = new Map(missing.map((name, position) => [name, read[position]]));
  return names.map((name, position) => {
    const cached = blocks[position];
    if (cached) return cached;
    // Missing only if deleted under a search that read an old list (see RETIRE_AFTER_MS): it reads as empty.
    const block = new Block(records.get(name) ?? EMPTY_BLOCK);
    blockCache.set(keys[position]!, block);
    return block;
  });
}

const EMPTY_BLOCK: BlockRecord = { terms: [], df: [], maxTf: [], minLength: [], ends: [], postings: '' };

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

/** A new block's name: random, so no two writes (two instances' runs, say) ever share one. */
function blockName(generation: number): string {
  return `b${generation}:${randomBytes(9).toString('base64url')}`;
}

/** The newest postings a term keeps in a block: a term in thousands of passages says little (low idf), and its newest mentions are the ones worth recalling. */
const MAX_POSTINGS = 256;

/**
 * Merging: MERGE_FACTOR blocks of one tier at the end of the list become one. A block's tier is
 * log base MERGE_FACTOR of its passages over TIER_BASE, so a session of n passages holds at most
 * MERGE_FACTOR - 1 blocks a tier, about log4(n / 8) tiers, and each posting is copied once a tier.
 */
const MERGE_FACTOR = 4;
const TIER_BASE = 8;

function tier(docs: number): number {
  return docs < TIER_BASE * MERGE_FACTOR ? 0 : Math.floor(Math.log(docs / TIER_BASE) / Math.log(MERGE_FACTOR));
}

/**
 * How long a merged-away block stays: longer than any run takes. A run racing this one on another
 * instance may land the list it read, naming the blocks this run merged; they must still be there.
 */
const RETIRE_AFTER_MS = 10 * 60_000;

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
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const term = match[0];
    if (term.length > MAX_TERM_LENGTH || STOPWORDS.has(term)) continue;
    out.push(stem(term));
  }
  return out;
}

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

/** What a run adds to the index: its terms, each with its postings (doc, tf, length triples, oldest first) and bounds. */
interface TermEntry {
  df: number;
  maxTf: number;
  minLength: number;
  flat: number[];
}

function entry(entries: Map<string, TermEntry>, term: string): TermEntry {
  let found = entries.get(term);
  if (!found) entries.set(term, (found = { df: 0, maxTf: 0, minLength: Infinity, flat: [] }));
  return found;
}

/** The terms of `passages` with their postings, and BM25's statistics delta. */
function entriesOf(passages: Array<Pick<Passage, 'doc' | 'text'>>): { entries: Map<string, TermEntry>; docs: number; length: number } {
  const entries = new Map<string, TermEntry>();
  let docs = 0;
  let length = 0;
  for (const passage of passages) {
    const words = terms(passage.text);
    if (words.length === 0) continue;
    docs++;
    length += words.length;
    const weight = informationWeight(passage.text);
    const counts = new Map<string, number>();
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
    for (const [term, count] of counts) {
      const found = entry(entries, term);
      const tf = count * weight;
      found.df++;
      found.maxTf = Math.max(found.maxTf, tf);
      found.minLength = Math.min(found.minLength, words.length);
      found.flat.push(passage.doc, tf, words.length);
    }
  }
  return { entries, docs, length };
}

/** A new block, decoded and packed (the record to write). */
function newBlock(entries: Map<string, TermEntry>): Block {
  const record: BlockRecord = { terms: [], df: [], maxTf: [], minLength: [], ends: [], postings: '' };
  const all: number[] = [];
  for (const [term, { df, maxTf, minLength, flat }] of entries) {
    record.terms.push(term);
    record.df.push(df);
    record.maxTf.push(maxTf);
    record.minLength.push(minLength);
    const kept = flat.length > MAX_POSTINGS * 3 ? flat.slice(-MAX_POSTINGS * 3) : flat;
    for (const value of kept) all.push(value);
    record.ends.push(all.length / 3);
  }
  record.postings = packPostings(all);
  return new Block(record, all);
}

/** One block holding everything in `blocks` (oldest first): each term's postings in block order, its counts summed, its bounds kept. */
function mergeBlocks(blocks: Block[]): Block {
  const entries = new Map<string, TermEntry>();
  for (const block of blocks) {
    const { terms: names, df, maxTf, minLength } = block.record;
    for (let position = 0; position < names.length; position++) {
      const found = entry(entries, names[position]!);
      found.df += df[position]!;
      found.maxTf = Math.max(found.maxTf, maxTf[position]!);
      found.minLength = Math.min(found.minLength, minLength[position]!);
      for (let at = block.start(position); at < block.end(position); at++)
        found.flat.push(block.docs[at]!, block.tfs[at]!, block.lengths[at]!);
    }
  }
  return newBlock(entries);
}

/** A run's change to the index: the statistics to write, after the blocks they list, and blocks now safe to delete. */
export interface IndexUpdate {
  stats: IndexStats;
  writes: Array<{ name: string; value: BlockRecord }>;
  /** Retired long enough ago that no racing run can still land a list naming them (see RETIRE_AFTER_MS). */
  expired: string[];
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
  now: number,
): Promise<IndexUpdate> {
  const added = entriesOf(passages);
  // Built here, written by the caller: decoded already, so cached as they are (a name is never reused).
  const built = new Map<string, Block>();
  let blocks = stats.blocks;
  const retired = [...(stats.retired ?? [])];
  if (added.docs > 0) {
    const name = blockName(generation);
    built.set(name, newBlock(added.entries));
    blocks = [...blocks, { name, docs: added.docs }];
  }
  while (blocks.length >= MERGE_FACTOR && new Set(blocks.slice(-MERGE_FACTOR).map(({ docs }) => tier(docs))).size === 1) {
    const merging = blocks.slice(-MERGE_FACTOR);
    const unbuilt = merging.filter(({ name }) => !built.has(name)).map(({ name }) => name);
    const loaded = new Map((await loadBlocks(store, sessionKey, unbuilt)).map((block, position) => [unbuilt[position]!, block]));
    const merged = mergeBlocks(merging.map(({ name }) => built.get(name) ?? loaded.get(name)!));
    for (const { name } of merging) if (!built.delete(name)) retired.push({ name, at: now });
    const name = blockName(generation);
    built.set(name, merged);
    blocks = [...blocks.slice(0, -MERGE_FACTOR), { name, docs: merging.reduce((total, { docs }) => total + docs, 0) }];
  }
  for (const [name, block] of built) blockCache.set(cacheKey(sessionKey, name), block);
  const expired = retired.filter(({ at }) => at <= now - RETIRE_AFTER_MS);
  const kept = retired.filter(({ at }) => at > now - RETIRE_AFTER_MS);
  return {
    stats: {
      ...stats,
      docs: stats.docs + added.docs,
      length: stats.length + added.length,
      blocks,
      retired: kept.length > 0 ? kept : undefined,
    },
    writes: [...built].map(([name, block]) => ({ name, value: block.record })),
    expired: expired.map(({ name }) => name),
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
}

const NOTHING: ReadonlySet<number> = new Set();

/** A query term as the index knows it: where its postings are (newest block first), its idf and its bound. */
interface QueryTerm {
  at: Array<[Block, number]>;
  df: number;
  idf: number;
  ceiling: number;
}

/**
 * The passages below `belowDoc` that best match `query`, best first, at most `limit`, with the
 * index's statistics. Reads the stats record and, from the block cache, the session's blocks.
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
  if (docs === 0 || options.limit === 0 || queryTerms.length === 0) return { hits: [], stats, matched: NOTHING };
  const blocks = await loadBlocks(
    store,
    sessionKey,
    stats.blocks.map(({ name }) => name),
  );
  const belowDoc = Math.min(options.belowIndex, stats.indexedUpTo) * MAX_PASSAGES;
  const averageLength = length / docs || 1;
  const weighted: QueryTerm[] = [];
  for (const term of queryTerms) {
    const at: Array<[Block, number]> = [];
    let df = 0;
    let maxTf = 0;
    let minLength = Infinity;
    for (let index = blocks.length - 1; index >= 0; index--) {
      const block = blocks[index]!;
      const position = block.find(term);
      if (position < 0) continue;
      at.push([block, position]);
      df += block.record.df[position]!;
      maxTf = Math.max(maxTf, block.record.maxTf[position]!);
      minLength = Math.min(minLength, block.record.minLength[position]!);
    }
    if (at.length === 0 || (docs >= COMMON_MIN_DOCS && df >= COMMON_SHARE * docs)) continue;
    const idf = Math.log(1 + (docs - df + 0.5) / (df + 0.5));
    weighted.push({ at, df, idf, ceiling: idf * termCeiling(maxTf, minLength, averageLength) });
  }
  // Rarest terms first: they decide whether any passage can reach the trigger (below).
  weighted.sort((a, b) => b.idf - a.idf);
  const ideal = weighted.reduce((total, { idf }) => total + idf, 0);
  if (ideal === 0) return { hits: [], stats, matched: NOTHING };
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
  const scores = new Map<number, number>();
  let leading = 0;
  for (const [index, { at, df, idf }] of weighted.entries()) {
    if (leading + unread[index]! < trigger) return { hits: [], stats, matched: NOTHING };
    // The newest mentions, newest block first.
    let left = df > FREQUENT_SHARE * docs ? FREQUENT_POSTINGS : MAX_POSTINGS;
    for (const [block, position] of at) {
      const first = block.start(position);
      for (let posting = block.end(position) - 1; posting >= first && left > 0; posting--, left--) {
        const doc = block.docs[posting]!;
        if (doc >= belowDoc) continue;
        const tf = block.tfs[posting]!;
        const total = (scores.get(doc) ?? 0) + (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * block.lengths[posting]!) / averageLength));
        scores.set(doc, total);
        if (total > leading) leading = total;
      }
      if (left === 0) break;
    }
  }
  const hits: RecallHit[] = [];
  let best = 0;
  for (const [doc, total] of scores) {
    const coverage = total / ideal;
    best = Math.max(best, coverage);
    if (coverage >= options.minCoverage) hits.push({ doc, score: total, coverage });
  }
  // Nothing matches the message well enough: it does not need the past (and pays nothing for it).
  if (best * ideal < trigger) return { hits: [], stats, matched: NOTHING };
  return {
    hits: hits.sort((a, b) => b.score - a.score || b.doc - a.doc).slice(0, options.limit),
    stats,
    matched: new Set(scores.keys()),
  };
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
