import { stemmer } from 'stemmer';
import type { SessionStore } from '../store/types.js';
import { MAX_PASSAGES, passagesOf, type Passage } from './passages.js';
import type { StoredMessage } from './messages.js';
import type { SessionMemory } from './state.js';

/**
 * The lexical half of recall: an inverted index over passages (see
 * passages.ts), one side record per term, so a query reads only its own
 * terms' postings, never the whole archive. Every message is indexed right
 * after it is committed (see background.ts), independent of summaries.
 *
 * A term's record holds its document frequency and its most recent postings,
 * packed (see Postings). The list is capped so a query's cost does not grow
 * with the archive: a term in thousands of passages says little (low idf), and
 * the newest mentions of it are the ones worth recalling.
 */
export interface TermRecord {
  df: number;
  /** Packed postings; older records hold a flat array (doc, tf, length, doc, …), read as well. */
  postings: string | number[];
  /** The highest doc ever posted (older records lack it). */
  max?: number;
  /**
   * The highest term frequency and the shortest passage among the postings ever added: together
   * they bound what the term can add to any passage's score (see termCeiling). Kept as the record
   * grows, never lowered when postings are dropped, so the bound only errs high. Records written
   * before these existed lack them and get BM25's loosest bound.
   */
  maxTf?: number;
  minLength?: number;
}

/**
 * A posting list as stored: 12 bytes a posting (doc int32, tf float32, length int32, little
 * endian), base64 — exactly 16 characters each, so appending is string concatenation and capping
 * is a slice. An index run used to rewrite every touched term's list as an array of numbers,
 * which every backend then walked and serialized number by number: the largest cost of a long
 * session's turn.
 */
const POSTING_BYTES = 12;
const POSTING_CHARS = 16;

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

/** The postings of a record, either format: count, and doc/tf/length by position. */
export class PostingList {
  readonly count: number;
  private readonly bytes?: Buffer;
  private readonly flat?: number[];

  /** `last`: only the newest that many postings (a packed list decodes just its tail). */
  constructor(postings: string | number[], last = Infinity) {
    if (Array.isArray(postings)) this.flat = last < postings.length / 3 ? postings.slice(-last * 3) : postings;
    else this.bytes = Buffer.from(last * POSTING_CHARS < postings.length ? postings.slice(-last * POSTING_CHARS) : postings, 'base64');
    this.count = this.flat ? this.flat.length / 3 : this.bytes!.length / POSTING_BYTES;
  }

  doc(i: number): number {
    return this.flat ? this.flat[i * 3]! : this.bytes!.readInt32LE(i * POSTING_BYTES);
  }

  tf(i: number): number {
    return this.flat ? this.flat[i * 3 + 1]! : this.bytes!.readFloatLE(i * POSTING_BYTES + 4);
  }

  length(i: number): number {
    return this.flat ? this.flat[i * 3 + 2]! : this.bytes!.readInt32LE(i * POSTING_BYTES + 8);
  }
}

const EMPTY_LIST = new PostingList('');

function packed(postings: string | number[]): string {
  return typeof postings === 'string' ? postings : packPostings(postings);
}

/** The index's statistics and progress: one side record per generation, read with a query's term records. */
export interface IndexStats {
  /** Passages indexed, and their total length in terms (BM25's statistics). */
  docs: number;
  length: number;
  /** [term, df] of terms in nearly every passage: searches skip them (see commonTerms). */
  common?: Array<[string, number]>;
  /** Messages [0, indexedUpTo) are in the lexical index. */
  indexedUpTo: number;
  /** Messages [0, embeddedUpTo) have vectors in `segments`. */
  embeddedUpTo: number;
  /** Side records of packed passage vectors. */
  segments: string[];
}

export const EMPTY_STATS: IndexStats = { docs: 0, length: 0, indexedUpTo: 0, embeddedUpTo: 0, segments: [] };

/** The head's index generation; sessions an older mnemo indexed start at 1 (their records had other names). */
export function indexGeneration(recall: SessionMemory['recall']): number {
  return recall.generation ?? 1;
}

export function statsRecordName(generation: number): string {
  return `x${generation}`;
}

const MAX_POSTINGS = 256;

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
const MAX_COMMON = 32;

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

/** The side record of `term` in index generation `generation`. */
export function termRecordName(generation: number, term: string): string {
  return `p${generation}:${term}`;
}

/**
 * Adds the passages of newly committed messages to the index. Returns the
 * statistics delta, which the caller writes to the stats record after the
 * postings; until then searches do not look past the old `indexedUpTo`.
 */
export async function indexMessages(
  store: SessionStore,
  sessionKey: string,
  generation: number,
  messages: Array<{ index: number; stored: StoredMessage }>,
  common?: Array<[string, number]>,
): Promise<{ docs: number; length: number; frequencies: Array<[string, number]> }> {
  const passages = messages.flatMap(({ index, stored }) => passagesOf(stored, index));
  const { entries, ...delta } = await postingsFor(store, sessionKey, generation, passages, common);
  await store.writeAux(sessionKey, entries);
  return delta;
}

/**
 * The term records `passages` (a message's, or a turn's keys) change, as they will be after the
 * change (unwritten: the caller writes them with the stats), and the statistics delta.
 */
export async function postingsFor(
  store: SessionStore,
  sessionKey: string,
  generation: number,
  passages: Array<Pick<Passage, 'doc' | 'text'>>,
  /** The session's common terms (stats.common): searches skip them, so only their counts move. */
  common?: Array<[string, number]>,
): Promise<{ docs: number; length: number; frequencies: Array<[string, number]>; entries: Array<{ name: string; value: TermRecord }> }> {
  const additions = new Map<string, number[]>();
  const reindexed = new Set<number>();
  let docs = 0;
  let length = 0;
  for (const passage of passages) {
    const words = terms(passage.text);
    if (words.length === 0) continue;
    docs++;
    length += words.length;
    reindexed.add(passage.doc);
    const weight = informationWeight(passage.text);
    const counts = new Map<string, number>();
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
    for (const [term, tf] of counts) {
      const list = additions.get(term) ?? [];
      list.push(passage.doc, tf * weight, words.length);
      additions.set(term, list);
    }
  }
  const frequencies: Array<[string, number]> = [];
  // A common term's postings are the longest and no search reads them: while it stays common its
  // record is left alone and its count lives in the stats record (see settleCommon).
  for (const [term, df] of common ?? []) {
    const added = additions.get(term);
    if (!added) continue;
    frequencies.push([term, df + added.length / 3]);
    additions.delete(term);
  }
  const names = [...additions.keys()].map((term) => termRecordName(generation, term));
  const existing = await store.readAux<TermRecord>(sessionKey, names);
  const [low, high] = [Math.min(...reindexed), Math.max(...reindexed)];
  const entries = [...additions].map(([term, added], position) => {
    const record = existing[position];
    let previous = packed(record?.postings ?? '');
    let removed = 0;
    let max = record?.max ?? -1;
    // A run racing another instance's over the same messages re-adds their passages: the earlier
    // postings go first. Rare: when every earlier posting is older than this run's (the record's
    // highest doc says so), the list is not even unpacked.
    const list = record?.max !== undefined && record.max < low ? EMPTY_LIST : new PostingList(previous);
    for (let i = 0; i < list.count; i++) {
      const doc = list.doc(i);
      max = Math.max(max, doc);
      if (doc < low || doc > high || !reindexed.has(doc)) continue;
      const kept: number[] = [];
      for (let j = 0; j < list.count; j++) {
        max = Math.max(max, list.doc(j));
        if (reindexed.has(list.doc(j))) removed++;
        else kept.push(list.doc(j), list.tf(j), list.length(j));
      }
      previous = packPostings(kept);
      break;
    }
    // Bounds hold for every posting the list may still hold: a record without them (older, yet
    // holding postings) stays without them rather than claim a bound it cannot know.
    const bounded = record?.maxTf !== undefined || previous === '';
    let maxTf = bounded ? (record?.maxTf ?? 0) : undefined;
    let minLength = bounded ? (record?.minLength ?? Infinity) : undefined;
    for (let at = 0; at < added.length; at += 3) {
      max = Math.max(max, added[at]!);
      if (maxTf !== undefined) maxTf = Math.max(maxTf, added[at + 1]!);
      if (minLength !== undefined) minLength = Math.min(minLength, added[at + 2]!);
    }
    const df = (record?.df ?? 0) - removed + added.length / 3;
    frequencies.push([term, df]);
    const merged = previous + packPostings(added);
    const postings = merged.length > MAX_POSTINGS * POSTING_CHARS ? merged.slice(-MAX_POSTINGS * POSTING_CHARS) : merged;
    return { name: names[position]!, value: { df, postings, max, maxTf, minLength } satisfies TermRecord };
  });
  return { docs, length, frequencies, entries };
}

/**
 * The session's common terms after an index update (see commonTerms), with the records of terms
 * that stopped being common brought up to date: their counts moved in the stats record meanwhile.
 * Call before writing the stats record.
 */
export async function settleCommon(
  store: SessionStore,
  sessionKey: string,
  generation: number,
  previous: Array<[string, number]> | undefined,
  updated: Array<[string, number]>,
  docs: number,
): Promise<Array<[string, number]> | undefined> {
  const next = commonTerms(previous, updated, docs);
  const still = new Set(next?.map(([term]) => term));
  const latest = new Map([...(previous ?? []), ...updated]);
  const left = (previous ?? []).map(([term]) => term).filter((term) => !still.has(term));
  if (left.length > 0) {
    const records = await store.readAux<TermRecord>(
      sessionKey,
      left.map((term) => termRecordName(generation, term)),
    );
    await store.writeAux(
      sessionKey,
      left.map((term, position) => ({
        name: termRecordName(generation, term),
        value: {
          df: latest.get(term)!,
          postings: records[position]?.postings ?? '',
          max: records[position]?.max,
          maxTf: records[position]?.maxTf,
          minLength: records[position]?.minLength,
        } satisfies TermRecord,
      })),
    );
  }
  return next;
}

/**
 * The session's common terms after an index update: the previous list with the updated terms'
 * document frequencies applied, kept while a term is in COMMON_SHARE of `docs` passages.
 */
export function commonTerms(
  previous: Array<[string, number]> | undefined,
  updated: Array<[string, number]>,
  docs: number,
): Array<[string, number]> | undefined {
  const frequencies = new Map(previous);
  for (const [term, df] of updated) frequencies.set(term, df);
  if (docs < COMMON_MIN_DOCS) return undefined;
  const common = [...frequencies]
    .filter(([, df]) => df >= COMMON_SHARE * docs)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, MAX_COMMON);
  return common.length > 0 ? common : undefined;
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

/**
 * The passages below `belowDoc` that best match `query`, best first, at most `limit`, with the
 * index's statistics. One store call reads the stats record and the query's term records.
 */
export async function searchPassages(
  store: SessionStore,
  sessionKey: string,
  generation: number,
  query: string,
  options: { limit: number; belowIndex: number; minCoverage: number; triggerCoverage?: number },
): Promise<LexicalSearch> {
  const queryTerms = [...new Set(terms(query))];
  const [stats = EMPTY_STATS, ...records] = (await store.readAux<IndexStats | TermRecord>(sessionKey, [
    statsRecordName(generation),
    ...queryTerms.map((term) => termRecordName(generation, term)),
  ])) as [IndexStats | undefined, ...Array<TermRecord | undefined>];
  const { docs, length, common } = stats;
  if (docs === 0 || options.limit === 0) return { hits: [], stats, matched: NOTHING };
  const skip = new Set(common?.map(([term]) => term));
  const belowDoc = Math.min(options.belowIndex, stats.indexedUpTo) * MAX_PASSAGES;
  const averageLength = length / docs || 1;
  // Rarest terms first: they decide whether any passage can reach the trigger (below).
  const weighted = records
    .flatMap((record, position) =>
      record && !skip.has(queryTerms[position]!) ? [{ record, idf: Math.log(1 + (docs - record.df + 0.5) / (record.df + 0.5)) }] : [],
    )
    .sort((a, b) => b.idf - a.idf);
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
  for (let at = weighted.length - 1; at >= 0; at--)
    unread[at] = unread[at + 1]! + weighted[at]!.idf * termCeiling(weighted[at]!.record, averageLength);
  const scores = new Map<number, number>();
  let leading = 0;
  for (const [at, { record, idf }] of weighted.entries()) {
    if (leading + unread[at]! < trigger) return { hits: [], stats, matched: NOTHING };
    const postings = new PostingList(record.postings, record.df > FREQUENT_SHARE * docs ? FREQUENT_POSTINGS : Infinity);
    for (let i = 0; i < postings.count; i++) {
      const doc = postings.doc(i);
      if (doc >= belowDoc) continue;
      const tf = postings.tf(i);
      const total = (scores.get(doc) ?? 0) + (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * postings.length(i)) / averageLength));
      scores.set(doc, total);
      if (total > leading) leading = total;
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
 * The most one posting of `record` can add to a score, per unit of idf: BM25's term weight grows
 * with tf and shrinks with the passage's length, so the record's highest tf in its shortest
 * passage bounds it. Without those (older records), BM25's general bound k1 + 1.
 */
function termCeiling(record: TermRecord, averageLength: number): number {
  if (record.maxTf === undefined || record.minLength === undefined) return K1 + 1;
  return (record.maxTf * (K1 + 1)) / (record.maxTf + K1 * (1 - B + (B * record.minLength) / averageLength));
}

export type { Passage };
