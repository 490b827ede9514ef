import type { Logger } from 'pino';
import type { MemoryConfig } from '../config/schema.js';
import type { SessionMeta, SessionStore } from '../store/types.js';
import { dot, unpackSegment, type Embedder, type EmbeddingSegment } from './embeddings.js';
import { indexGeneration, searchPassages, terms } from './lexical-index.js';
import type { StoredMessage } from './messages.js';
import { MAX_PASSAGES, messageOf, passagesOf } from './passages.js';

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
  const { hits, stats } = await searchPassages(deps.store, sessionKey, generation, query, {
    limit: options.top_k,
    belowIndex,
    minCoverage: options.min_coverage,
    triggerCoverage: asksSomething(query) ? options.trigger_coverage : options.statement_trigger_coverage,
  });
  const words = hits.map((hit) => hit.doc);
  let ranked = words;
  if (options.method !== 'bm25' && stats.segments.length > 0 && (options.method === 'embeddings' || words.length > 0)) {
    const meaning = await searchEmbeddings(deps, sessionKey, stats.segments, query, config, credentials, belowIndex * MAX_PASSAGES).catch(
      (error: unknown) => {
        // Semantic recall is an upgrade, not a dependency: the lexical index answers alone.
        deps.logger.warn({ err: error }, 'embedding recall failed; using bm25');
        return undefined;
      },
    );
    if (meaning && options.method === 'embeddings') ranked = meaning;
    // Hybrid: the lexical gate decides whether the message needs the past, and how much (cosine
    // similarities of unrelated texts are not near zero, so a threshold on them recalls on every
    // turn); both rankings decide which passages those are.
    else if (meaning) ranked = fuse([words, meaning]).slice(0, words.length);
  }
  if (ranked.length === 0) return [];
  return withoutRepeats(await withNeighbours(deps.store, sessionKey, meta, ranked, options.neighbours, belowIndex));
}

/** Passages at least this alike (Jaccard similarity of their terms) say the same thing. */
const REPEAT_SIMILARITY = 0.8;

/**
 * Hits that repeat a better one (a question asked again, the same status update, a templated
 * reply) are dropped, with their neighbours: the budget goes to what is new. Without this a chat
 * of similar turns filled the whole recall budget with copies on every turn.
 */
export function withoutRepeats(recollections: Recollection[]): Recollection[] {
  const kept: Array<{ recollection: Recollection; terms: Set<string> }> = [];
  for (const recollection of recollections) {
    const words = new Set(terms(recollection.passage.text));
    if (kept.some((other) => similarity(words, other.terms) >= REPEAT_SIMILARITY)) continue;
    kept.push({ recollection, terms: words });
  }
  return kept.map((entry) => entry.recollection);
}

function similarity(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  for (const term of a) if (b.has(term)) shared++;
  return shared / (a.size + b.size - shared);
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

async function searchEmbeddings(
  deps: RecallDeps,
  sessionKey: string,
  segments: string[],
  query: string,
  config: MemoryConfig,
  credentials: Record<string, string | string[]>,
  belowDoc: number,
): Promise<number[]> {
  const options = config.recall.embeddings;
  const [embedded, records] = await Promise.all([
    deps.embedder.embed([query], options, { headers: credentials, signal: AbortSignal.timeout(options.timeout_ms) }),
    deps.store.readAux<EmbeddingSegment>(sessionKey, segments),
  ]);
  const target = embedded.vectors[0]!;
  // Hybrid fuses ranks, and the lexical gate has already decided that the message needs the past:
  // a similarity floor there only cuts candidates (and depends on the model's scale). Embeddings
  // alone have no other gate.
  const floor = config.recall.method === 'embeddings' ? options.min_similarity : -Infinity;
  const scored: Array<{ doc: number; score: number }> = [];
  for (const record of records) {
    if (!record) continue;
    for (const { index: doc, vector } of unpackSegment(record)) {
      if (doc >= belowDoc) continue;
      const score = dot(target, vector);
      if (score >= floor) scored.push({ doc, score });
    }
  }
  return scored
    .sort((a, b) => b.score - a.score)
    .slice(0, config.recall.top_k)
    .map((hit) => hit.doc);
}

/** The ranked passages' text, each with up to `reach` passages either side (within messages before `belowIndex`). */
async function withNeighbours(
  store: SessionStore,
  sessionKey: string,
  meta: SessionMeta,
  ranked: number[],
  reach: number,
  belowIndex: number,
): Promise<Recollection[]> {
  const wanted = new Set<number>();
  for (const doc of ranked) {
    const index = messageOf(doc);
    for (let offset = -Math.min(reach, 1); offset <= Math.min(reach, 1); offset++) {
      if (index + offset >= 0 && index + offset < belowIndex) wanted.add(index + offset);
    }
  }
  const indices = [...wanted].sort((a, b) => a - b);
  const messages = await store.readMessagesAt(sessionKey, meta, indices);
  // Every passage of the loaded messages, in transcript order.
  const passages: RecalledPassage[] = [];
  indices.forEach((index, position) => {
    const stored = messages[position];
    if (stored) for (const passage of passagesOf(stored, index)) passages.push({ ...passage, stored });
  });
  const at = new Map(passages.map((passage, position) => [passage.doc, position]));
  const out: Recollection[] = [];
  for (const doc of ranked) {
    const position = at.get(doc);
    if (position === undefined) continue; // indexed text that has since changed (a fork being re-indexed)
    const passage = passages[position]!;
    const neighbours: RecalledPassage[] = [];
    for (let step = 1; step <= reach; step++) {
      for (const near of [passages[position - step], passages[position + step]]) {
        if (near && Math.abs(near.index - passage.index) <= 1) neighbours.push(near);
      }
    }
    out.push({ passage, neighbours });
  }
  return out;
}
