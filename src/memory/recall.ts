import type { Logger } from 'pino';
import { GenerationalCache } from '../generational-cache.js';
import type { MemoryConfig } from '../config/schema.js';
import type { SessionMeta, SessionStore } from '../store/types.js';
import { dotAt, unpackSegment, type Embedder } from './embeddings.js';
import { indexGeneration, isQuestion, loadIndexRecords, searchPassages, terms } from './lexical-index.js';
import type { StoredMessage } from './messages.js';
import { KEYS_POSITION, MAX_PASSAGES, messageOf, passageTokens, passagesOf } from './passages.js';

/** A passage of an earlier message, ready to show: its text, and the message it came from (role, time). */
export interface RecalledPassage {
  doc: number;
  index: number;
  stored: StoredMessage;
  text: string;
}

/** A hit, best first, with the passages around it that may come along when the budget allows. */
export interface Recollection {
  passage: RecalledPassage;
  neighbours: RecalledPassage[];
}

export interface RecallDeps {
  store: SessionStore;
  embedder: Embedder;
  logger: Logger;
}

// Reciprocal rank fusion's usual constant (Cormack, Clarke & Büttcher, 2009).
const RRF_K = 60;

/**
 * The passages of messages before `belowIndex` (what the window does not
 * show) that `query` needs, best first: BM25, embeddings, or both fused by
 * reciprocal rank; then each hit's neighbours. Reads only the query's posting
 * lists and the hits' messages, whatever the session's length (embeddings
 * read the session's vectors: one packed record per indexed batch).
 */
export async function recallPassages(
  deps: RecallDeps,
  sessionKey: string,
  meta: SessionMeta,
  query: string,
  config: MemoryConfig,
  belowIndex: number,
  credentials: Record<string, string | string[]>,
): Promise<Recollection[]> {
  const options = config.recall;
  if (!options.enabled || belowIndex <= 0 || query.trim() === '' || options.top_k === 0) return [];
  const generation = indexGeneration(meta.memory.recall);
  const { hits, stats, matched } = await searchPassages(deps.store, sessionKey, generation, query, {
    limit: options.top_k,
    belowIndex,
    minCoverage: options.min_coverage,
    triggerCoverage: asksSomething(query) ? options.trigger_coverage : options.statement_trigger_coverage,
  });
  const words = hits.map((hit) => hit.doc);
  let ranked = words;
  let related: ((doc: number) => boolean) | undefined;
  if (options.method !== 'bm25' && stats.segments.length > 0 && (options.method === 'embeddings' || words.length > 0)) {
    const meaning = await searchEmbeddings(deps, sessionKey, stats.segments, query, config, credentials, belowIndex * MAX_PASSAGES).catch(
      (error: unknown) => {
        // Semantic recall is an upgrade, not a dependency: the lexical index answers alone.
        deps.logger.warn({ err: error }, 'embedding recall failed; using bm25');
        return undefined;
      },
    );
    if (meaning) related = (doc) => matched.has(doc) || meaning.closer.has(doc);
    if (meaning && options.method === 'embeddings') ranked = meaning.ranked;
    // Hybrid: the lexical gate decides whether the message needs the past (cosine similarities of
    // unrelated texts are not near zero, so a threshold on them recalls on every turn); both
    // rankings decide which passages those are, and how many: the lexical hits, or min_hits when
    // the message shares few words with what answers it ("fave styles" for "favorite style").
    else if (meaning) ranked = fuse([words, meaning.ranked]).slice(0, Math.max(words.length, options.min_hits));
  }
  if (ranked.length === 0) return [];
  return recollect(deps.store, sessionKey, meta, ranked, { reach: options.neighbours, belowIndex, budget: options.max_tokens, related });
}

function isKeys(doc: number): boolean {
  return doc % MAX_PASSAGES === KEYS_POSITION;
}

/** Passages at least this alike (Jaccard similarity of their terms) say the same thing. */
const REPEAT_SIMILARITY = 0.8;

/**
 * Hits that repeat a better one (a question asked again, the same status update, a templated
 * reply) are dropped, with their neighbours: the budget goes to what is new. Without this a chat
 * of similar turns filled the whole recall budget with copies on every turn.
 */
export function withoutRepeats<T extends { passage: RecalledPassage }>(recollections: T[], budget = Infinity): T[] {
  const kept: Array<{ recollection: T; terms: Set<string> }> = [];
  let tokens = 0;
  for (const recollection of recollections) {
    // The prompt shows hits best first while they fit: once the kept ones fill the budget, the
    // rest would not be shown, and comparing them is work for nothing.
    if (tokens >= budget) break;
    const words = termSet(recollection.passage.text);
    if (kept.some((other) => alike(words, other.terms))) continue;
    kept.push({ recollection, terms: words });
    tokens += passageTokens(recollection.passage);
  }
  return kept.map((entry) => entry.recollection);
}

/** Jaccard similarity ≥ REPEAT_SIMILARITY. It is at most the smaller set's size over the larger's, which rules out most pairs unread. */
function alike(a: Set<string>, b: Set<string>): boolean {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  if (large.size === 0) return true;
  if (small.size < REPEAT_SIMILARITY * large.size) return false;
  let shared = 0;
  for (const term of small) if (large.has(term)) shared++;
  return shared / (small.size + large.size - shared) >= REPEAT_SIMILARITY;
}

// A long session recalls the same passages turn after turn: their term sets are kept.
const TERM_SETS_LIMIT = 4_096;
const termSets = new GenerationalCache<string, Set<string>>(TERM_SETS_LIMIT);

function termSet(text: string): Set<string> {
  let set = termSets.get(text);
  if (!set) {
    set = new Set(terms(text));
    termSets.set(text, set);
  }
  return set;
}

/**
 * Whether the new message asks something. A question ("when did…?", "what was my order?") is what
 * needs the past; a statement mostly carries itself, and recalling for it is paid in uncached
 * tokens on most chat turns. A question mark in any script counts.
 */
export function asksSomething(text: string): boolean {
  return /[?？؟]/.test(text);
}

/** Reciprocal rank fusion: each list adds 1 / (k + rank) to a document's score. */
export function fuse(lists: number[][]): number[] {
  const scores = new Map<number, number>();
  for (const list of lists) list.forEach((doc, rank) => scores.set(doc, (scores.get(doc) ?? 0) + 1 / (RRF_K + rank + 1)));
  return [...scores].sort((a, b) => b[1] - a[1] || b[0] - a[0]).map(([doc]) => doc);
}

/** The passages nearest the query in meaning, best first (at most top_k), and those nearer it than the session's median passage. */
async function searchEmbeddings(
  deps: RecallDeps,
  sessionKey: string,
  segments: string[],
  query: string,
  config: MemoryConfig,
  credentials: Record<string, string | string[]>,
  belowDoc: number,
): Promise<{ ranked: number[]; closer: ReadonlySet<number> }> {
  const options = config.recall.embeddings;
  // Segments are written once under their names: decoded once, and kept in the index cache, so a
  // long session's turn does not read and decode every vector it has (it was 4 ms a turn at 1,600 messages).
  const [embedded, loaded] = await Promise.all([
    deps.embedder.embed([query], options, { headers: credentials, signal: AbortSignal.timeout(options.timeout_ms) }),
    loadIndexRecords(deps.store, sessionKey, segments, unpackSegment),
  ]);
  const target = embedded.vectors[0]!;
  const scored: Array<{ doc: number; score: number }> = [];
  for (const segment of loaded) {
    if (!segment) continue;
    segment.indices.forEach((doc, row) => {
      if (doc < belowDoc) scored.push({ doc, score: dotAt(target, segment.vectors, row * segment.dimensions) });
    });
  }
  scored.sort((a, b) => b.score - a.score);
  // Hybrid fuses ranks, and the lexical gate has already decided that the message needs the past:
  // a similarity floor there only cuts candidates (and depends on the model's scale). Embeddings
  // alone have no other gate.
  const floor = config.recall.method === 'embeddings' ? options.min_similarity : -Infinity;
  const ranked: number[] = [];
  for (const hit of scored) {
    if (ranked.length === config.recall.top_k || hit.score < floor) break;
    ranked.push(hit.doc);
  }
  // Relative to this session and this query, so it holds whatever the model's scale.
  const median = scored[Math.floor(scored.length / 2)]?.score ?? Infinity;
  const closer = new Set<number>();
  for (const hit of scored) {
    if (hit.score <= median) break;
    closer.add(hit.doc);
  }
  return { ranked, closer };
}

/**
 * The ranked passages' text, without repeats and only as many as the budget can show, each with
 * up to `reach` passages either side (within messages before `belowIndex`, and at most one
 * message away). The hits' messages are read first and the neighbours' only for the hits kept: a
 * long session's turn used to read, cut and compare three times the passages it could show.
 *
 * With `related` (known when embeddings ranked too), a neighbour comes only if it relates to the
 * query (shares a word with it, or is nearer it than the session's median passage) or is the reply
 * to a question hit. Neighbours bring the line with the date or the reply that holds the answer,
 * but many were neither (bench:locomo: leaving those out kept the same info recall at 0.698× the
 * direct client's cost instead of 0.748×, question prompts 6% smaller). Without embeddings there is no
 * measure of relatedness beyond shared words, which a neighbour worth having often lacks: all come.
 */
async function recollect(
  store: SessionStore,
  sessionKey: string,
  meta: SessionMeta,
  ranked: number[],
  options: { reach: number; belowIndex: number; budget: number; related?: (doc: number) => boolean },
): Promise<Recollection[]> {
  const loaded = new Map<number, StoredMessage | undefined>();
  const load = async (indices: Iterable<number>) => {
    const wanted = [...new Set(indices)]
      .filter((index) => index >= 0 && index < options.belowIndex && !loaded.has(index))
      .sort((a, b) => a - b);
    if (wanted.length === 0) return;
    const messages = await store.readMessagesAt(sessionKey, meta, wanted);
    wanted.forEach((index, position) => loaded.set(index, messages[position]));
  };
  const passagesAt = (index: number): RecalledPassage[] => {
    const stored = loaded.get(index);
    return stored ? passagesOf(stored, index).map((passage) => ({ ...passage, stored })) : [];
  };
  await load(ranked.map(messageOf));
  const hits: Array<{ passage: RecalledPassage }> = [];
  for (const doc of ranked) {
    const index = messageOf(doc);
    // A turn found by its keys (see KEYS_POSITION) shows its first passage.
    const passage = isKeys(doc) ? passagesAt(index)[0] : passagesAt(index).find((candidate) => candidate.doc === doc);
    // Indexed text that has since changed (a fork being re-indexed) has no passage any more.
    if (passage) hits.push({ passage });
  }
  const kept = withoutRepeats(hits, options.budget);
  const reach = Math.max(0, options.reach);
  if (reach > 0) await load(kept.flatMap(({ passage }) => [passage.index - 1, passage.index + 1]));
  return kept.map(({ passage }) => {
    // The hit's message and the ones either side, in transcript order.
    const around = [passage.index - 1, passage.index, passage.index + 1].flatMap(passagesAt);
    const position = around.findIndex((candidate) => candidate.doc === passage.doc);
    const asks = isQuestion(passage.text);
    const wanted = (near: RecalledPassage) => !options.related || options.related(near.doc) || (asks && near.doc > passage.doc);
    const neighbours: RecalledPassage[] = [];
    for (let step = 1; step <= reach; step++) {
      for (const near of [around[position - step], around[position + step]]) if (near && wanted(near)) neighbours.push(near);
    }
    return { passage, neighbours };
  });
}
