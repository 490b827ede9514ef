import { MESSAGE_FRAMING } from '../tokenizer.js';
import { contentText, type StoredMessage } from './messages.js';

/**
 * Recall's unit: a passage, one line or paragraph of a message (long ones cut
 * at sentence ends). A long message holds several things; recalling only the
 * part a question is about leaves budget for more of them. Passages are
 * derived from the stored message, never stored themselves, and numbered
 * `index × MAX_PASSAGES + position`, so a passage id names its message.
 */
export const MAX_PASSAGES = 32;
/**
 * The last position holds no text of the message: it is the turn's keys, short keywords and
 * paraphrases the summarizer wrote for it (memory.recall.llm_keys), indexed like a passage so a
 * later question in other words still finds the turn. A hit on it recalls the message's first passage.
 */
export const KEYS_POSITION = MAX_PASSAGES - 1;
const MAX_CHARS = 600;
const MIN_CHARS = 40;

export interface Passage {
  /** index × MAX_PASSAGES + position. */
  doc: number;
  /** The message's transcript index. */
  index: number;
  text: string;
}

/** The text recall looks at: content, plus the name and arguments of tool calls (where ids often hide). */
export function indexedText(stored: StoredMessage): string {
  const calls = (stored.message.tool_calls ?? []).map((call) => `${call.function?.name ?? ''} ${call.function?.arguments ?? ''}`);
  return [contentText(stored.message.content), ...calls].join('\n');
}

export function docOf(index: number, position: number): number {
  return index * MAX_PASSAGES + position;
}

export function messageOf(doc: number): number {
  return Math.floor(doc / MAX_PASSAGES);
}

// Stored messages are immutable and a long session's recall reads the same ones turn after turn
// (the chunk cache hands back the same objects): their pieces are cut once.
const piecesOf = new WeakMap<StoredMessage, string[]>();

/** The message's passages, in order. Linear in its length. */
export function passagesOf(stored: StoredMessage, index: number): Passage[] {
  let pieces = piecesOf.get(stored);
  if (!pieces) piecesOf.set(stored, (pieces = cutIntoPieces(stored)));
  return pieces.map((text, position) => ({ doc: docOf(index, position), index, text }));
}

function cutIntoPieces(stored: StoredMessage): string[] {
  const pieces: string[] = [];
  let pending = '';
  for (const raw of indexedText(stored).split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    for (const piece of cut(line)) {
      // A very short line ("[date]", "ok") joins the next one instead of standing alone.
      pending = pending === '' ? piece : `${pending} ${piece}`;
      if (pending.length >= MIN_CHARS) {
        pieces.push(pending);
        pending = '';
      }
    }
  }
  if (pending !== '') {
    if (pieces.length > 0 && pending.length < MIN_CHARS) pieces[pieces.length - 1] += ` ${pending}`;
    else pieces.push(pending);
  }
  if (pieces.length > KEYS_POSITION) pieces.splice(KEYS_POSITION - 1, Infinity, pieces.slice(KEYS_POSITION - 1).join(' '));
  return pieces;
}

/** A line cut into pieces of at most MAX_CHARS, at sentence ends where there are any, else at spaces. */
function cut(line: string): string[] {
  if (line.length <= MAX_CHARS) return [line];
  const out: string[] = [];
  let start = 0;
  while (line.length - start > MAX_CHARS) {
    const window = line.slice(start, start + MAX_CHARS);
    let end = Math.max(window.lastIndexOf('. '), window.lastIndexOf('? '), window.lastIndexOf('! ')) + 1;
    if (end < MAX_CHARS / 3) end = window.lastIndexOf(' ');
    if (end <= 0) end = MAX_CHARS;
    out.push(line.slice(start, start + end).trim());
    start += end;
  }
  const rest = line.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}

const textLengths = new WeakMap<StoredMessage, number>();

// "assistant: " and the line break: 2 tokens at most in o200k and cl100k (the break usually merges
// with the line's last punctuation). The time a line was said heads its group of lines, not every line.
const LINE_FRAMING = 2;
/** "[2023-05-08 13:56]" and its line break: 12 tokens in o200k and cl100k. */
export const STAMP_TOKENS = 12;

/**
 * A recalled line's tokens, derived from its message's stored count (less the message's framing)
 * by the passage's share of the message's text, 5% over to stay on the safe side of the budget,
 * rather than by tokenizing it: recalled lines differ from turn to turn, and tokenizing them cost a
 * fifth of a turn's CPU.
 */
export function passageTokens(passage: { text: string; stored: StoredMessage }): number {
  let length = textLengths.get(passage.stored);
  if (length === undefined) textLengths.set(passage.stored, (length = indexedText(passage.stored).length));
  const share = passage.text.length / Math.max(1, length);
  const textTokens = Math.max(0, passage.stored.tokens - MESSAGE_FRAMING);
  return Math.ceil(Math.min(1, share) * textTokens * 1.05) + LINE_FRAMING;
}
