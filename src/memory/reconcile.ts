import { toolGroupStart, type ChatMessage } from './messages.js';

/** The part of stored history reconcile may look at; entries outside the loaded ranges are undefined. */
export interface StoredView {
  count: number;
  at(index: number): { hash: string; role: string; tool_calls?: unknown } | undefined;
}

export type ReconcileMode = 'new' | 'stateless' | 'continuation' | 'overlap' | 'fork';

export interface Reconciliation {
  mode: ReconcileMode;
  /** Stored messages that stay, from the start. */
  keep: number;
  /** Index into the client's messages from which they are new. */
  from: number;
}

/**
 * Matches what a client sent (non-system messages, with their hashes) against
 * stored history. Rules, in order:
 * 1. Nothing stored: everything is new.
 * 2. The client's messages start at the stored start and include an assistant
 *    reply (so it is resending history, not saying the same thing twice):
 *    matched messages are kept, the client wins from the first difference
 *    (edit, regenerate, fork).
 * 3. The client's messages begin with the stored end (a sliding window, or a
 *    tool result sent after the echoed tool call): the overlap is skipped.
 * 4. The client sent history of its own (it contains an assistant message)
 *    that matches neither: it diverges at 0 and replaces the transcript.
 * 5. Otherwise the client is stateless and everything it sent is new.
 * A fork point is moved back to the start of a tool-call group so an
 * assistant tool_calls message and its results are never split.
 */
export function reconcile(stored: StoredView, incoming: ChatMessage[], hashes: string[]): Reconciliation {
  const n = stored.count;
  const k = incoming.length;
  if (n === 0) return { mode: 'new', keep: 0, from: 0 };
  const echoesHistory = incoming.some((message) => message.role === 'assistant');

  const prefix = matchedPrefix(stored, hashes);
  if (prefix > 0 && incoming.slice(0, prefix).some((message) => message.role === 'assistant')) {
    if (prefix === n) return { mode: 'continuation', keep: n, from: n };
    const keep = toolGroupStart(roles(stored, prefix), prefix);
    return { mode: 'fork', keep, from: keep };
  }

  const overlap = suffixOverlap(stored, hashes);
  if (overlap > 0) return { mode: 'overlap', keep: n, from: overlap };

  if (echoesHistory && k > 1) return { mode: 'fork', keep: 0, from: 0 };
  return { mode: 'stateless', keep: n, from: 0 };
}

/**
 * Ranges of stored history reconcile needs for the client's messages: the head
 * only if they echo an assistant reply (rule 2 needs one), the tail only as far
 * as an overlap can reach (rule 3). A stateless client's single new message
 * needs neither, so its turn reads no history for reconciling.
 */
export function rangesNeeded(storedCount: number, incoming: ChatMessage[]): Array<[number, number]> {
  const head = incoming.some((message) => message.role === 'assistant') ? Math.min(storedCount, incoming.length) : 0;
  const tail = Math.min(storedCount, incoming.length - 1);
  return [
    [0, head],
    [storedCount - Math.max(0, tail), storedCount],
  ];
}

function matchedPrefix(stored: StoredView, hashes: string[]): number {
  const limit = Math.min(stored.count, hashes.length);
  let index = 0;
  while (index < limit && stored.at(index)?.hash === hashes[index]) index++;
  return index;
}

/**
 * Longest j < hashes.length such that the client's first j messages equal the stored last j:
 * the longest prefix of the client's hashes that is a suffix of the stored ones, found with
 * Knuth–Morris–Pratt in time linear in the messages compared (trying every j was quadratic:
 * a resent 20,000-message history stalled the event loop 21 s).
 */
function suffixOverlap(stored: StoredView, hashes: string[]): number {
  const n = stored.count;
  const m = Math.min(n, hashes.length - 1);
  if (m <= 0) return 0;
  const failure = prefixFunction(hashes, m);
  let matched = 0;
  for (let index = n - m; index < n; index++) {
    const hash = stored.at(index)?.hash;
    while (matched > 0 && (matched === m || hashes[matched] !== hash)) matched = failure[matched - 1]!;
    if (hashes[matched] === hash && hash !== undefined) matched++;
  }
  return matched;
}

/** failure[i]: length of the longest proper prefix of hashes[0..i] that is also its suffix. */
function prefixFunction(hashes: string[], length: number): Int32Array {
  const failure = new Int32Array(length);
  for (let index = 1, matched = 0; index < length; index++) {
    while (matched > 0 && hashes[index] !== hashes[matched]) matched = failure[matched - 1]!;
    if (hashes[index] === hashes[matched]) matched++;
    failure[index] = matched;
  }
  return failure;
}

function roles(stored: StoredView, upTo: number): Array<{ role: string; tool_calls?: unknown }> {
  const out: Array<{ role: string; tool_calls?: unknown }> = [];
  for (let index = 0; index <= upTo && index < stored.count; index++) {
    const entry = stored.at(index);
    out.push(entry ? { role: entry.role, tool_calls: entry.tool_calls } : { role: 'unknown' });
  }
  return out;
}
