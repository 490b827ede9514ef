import type { SessionMeta, SessionStore } from '../store/types.js';
import { contentText, type StoredMessage } from './messages.js';

/** [message index, term frequency, document length]: the nested form older writers stored. */
type Posting = [number, number, number];

/**
 * A term's record: its document frequency and its most recent postings, flat
 * (index, tf, length, index, tf, length, …): one array to parse instead of one
 * per posting. The list is capped so a query's cost does not grow with the
 * archive: a term in thousands of messages says little (low idf), and the
 * newest mentions of it are the ones worth recalling.
 */
export interface TermRecord {
  df: number;
  postings: number[] | Posting[];
}

/** A record's postings in the flat form, whichever form it was stored in. */
function flatPostings(record: TermRecord | undefined): number[] {
  const postings = record?.postings ?? [];
  return postings.length > 0 && Array.isArray(postings[0]) ? (postings as Posting[]).flat() : (postings as number[]);
}

const MAX_POSTINGS = 256;

/**
 * A term in at least this share of archived messages has idf ≤ 0.115 once there are
 * COMMON_MIN_DOCS of them, so it adds at most idf × (k1 + 1) ≈ 0.25 to any message's score —
 * it cannot decide what clears recall.min_score (1 by default) — yet its postings are the longest
 * to read and score. The order id a whole conversation is about is the typical case.
 */
const COMMON_SHARE = 0.9;
const COMMON_MIN_DOCS = 50;
const MAX_COMMON = 32;

// Okapi BM25 with the usual constants (Robertson & Zaragoza, 2009).
const K1 = 1.2;
const B = 0.75;
const MAX_TERM_LENGTH = 40;
const STOPWORDS = new Set(
  (
    'a an and are as at be but by can could did do does for from had has have how i if in into is it its me my no not of on or our ' +
    'please so that the their them then there these they this to too was we were what whats when where which who why will with would ' +
    'you your yes ok okay hi hello thanks thank s t'
  ).split(' '),
);

/** Lower-cased word and number tokens, without stopwords; unicode letters count as word characters. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const term = match[0];
    if (term.length > MAX_TERM_LENGTH || STOPWORDS.has(term)) continue;
    out.push(term);
  }
  return out;
}

export function indexedText(stored: StoredMessage): string {
  const calls = (stored.message.tool_calls ?? []).map((call) => `${call.function?.name ?? ''} ${call.function?.arguments ?? ''}`);
  return [contentText(stored.message.content), ...calls].join(' ');
}

/**
 * Adds newly archived messages to the session's inverted index: one side
 * record per term, so a query reads only its own terms' postings — never the
 * whole archive. Returns the statistics delta for the head.
 */
export async function indexArchived(
  store: SessionStore,
  sessionKey: string,
  messages: Array<{ index: number; stored: StoredMessage }>,
): Promise<{ docs: number; length: number; frequencies: Array<[string, number]> }> {
  const additions = new Map<string, number[]>();
  let length = 0;
  for (const { index, stored } of messages) {
    const words = terms(indexedText(stored));
    length += words.length;
    const counts = new Map<string, number>();
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
    for (const [term, tf] of counts) {
      const list = additions.get(term) ?? [];
      list.push(index, tf, words.length);
      additions.set(term, list);
    }
  }
  const reindexed = new Set(messages.map((message) => message.index));
  const names = [...additions.keys()].map((term) => `t:${term}`);
  const existing = await store.readAux<TermRecord>(sessionKey, names);
  const frequencies: Array<[string, number]> = [];
  await store.writeAux(
    sessionKey,
    names.map((name, position) => {
      const record = existing[position];
      const previous = flatPostings(record);
      const kept: number[] = [];
      for (let at = 0; at < previous.length; at += 3) {
        if (!reindexed.has(previous[at]!)) kept.push(previous[at]!, previous[at + 1]!, previous[at + 2]!);
      }
      const added = additions.get(name.slice(2))!;
      const df = (record?.df ?? 0) - (previous.length - kept.length) / 3 + added.length / 3;
      frequencies.push([name.slice(2), df]);
      return { name, value: { df, postings: [...kept, ...added].slice(-MAX_POSTINGS * 3) } satisfies TermRecord };
    }),
  );
  return { docs: messages.length, length, frequencies };
}

/**
 * The session's common terms after an index update: the previous list with the updated terms'
 * document frequencies applied, kept while a term is in COMMON_SHARE of `docs` archived messages.
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
  index: number;
  score: number;
}

/** The archived messages (indices below `archivedUpTo`) that best match `query`, best first. */
export async function searchArchive(
  store: SessionStore,
  sessionKey: string,
  meta: SessionMeta,
  query: string,
  options: { topK: number; minScore: number; archivedUpTo: number },
): Promise<RecallHit[]> {
  const { docs, length, common } = meta.memory.recall;
  const skip = new Set(common?.map(([term]) => term));
  const queryTerms = [...new Set(terms(query))].filter((term) => !skip.has(term));
  if (docs === 0 || queryTerms.length === 0 || options.topK === 0) return [];
  const records = await store.readAux<TermRecord>(
    sessionKey,
    queryTerms.map((term) => `t:${term}`),
  );
  const averageLength = length / docs || 1;
  const scores = new Map<number, number>();
  for (const record of records) {
    const postings = flatPostings(record);
    let live = 0;
    for (let at = 0; at < postings.length; at += 3) if (postings[at]! < options.archivedUpTo) live++;
    if (live === 0) continue;
    const df = Math.max(record!.df, live);
    const idf = Math.log(1 + (docs - df + 0.5) / (df + 0.5));
    for (let at = 0; at < postings.length; at += 3) {
      const index = postings[at]!;
      if (index >= options.archivedUpTo) continue;
      const tf = postings[at + 1]!;
      const score = (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * postings[at + 2]!) / averageLength));
      scores.set(index, (scores.get(index) ?? 0) + score);
    }
  }
  return [...scores.entries()]
    .map(([index, score]) => ({ index, score }))
    .filter((hit) => hit.score >= options.minScore)
    .sort((a, b) => b.score - a.score || b.index - a.index)
    .slice(0, options.topK);
}
