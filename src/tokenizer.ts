import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken';
import { audioTokens, fileTokens, imageTokens } from './media-tokens.js';
import { contentText, type ChatMessage } from './memory/messages.js';

/** Counts tokens the way the provider bills them; the seam lets tests or other vendors swap it. */
export interface Tokenizer {
  count(text: string, model: string): number;
  countMessage(message: ChatMessage, model: string): number;
}

// OpenAI's accounting for chat messages (cookbook "How to count tokens"):
// every message costs 3 tokens of framing, a name 1 more, a reply is primed with 3.
const PER_MESSAGE = 3;
export const MESSAGE_FRAMING = PER_MESSAGE;
const PER_NAME = 1;
export const REPLY_PRIMING = 3;

export function encodingForModel(model: string): TiktokenEncoding {
  const name = model.toLowerCase().replace(/^.*\//, '');
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o\d)/.test(name)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5|text-embedding-(ada|3))/.test(name)) return 'cl100k_base';
  return 'o200k_base';
}

/** Texts up to this long are remembered whole (see EncodingCounts.texts); longer ones are counted by word each time. */
const CACHE_MAX_TEXT = 16_384;

// Loading an encoding's ranks takes ~350 ms (o200k_base) and the result is immutable, so every
// tokenizer in the process shares one instance per encoding.
const encodings = new Map<TiktokenEncoding, Tiktoken>();

function loadEncoding(name: TiktokenEncoding): Tiktoken {
  let encoding = encodings.get(name);
  if (!encoding) {
    encoding = get_encoding(name);
    encodings.set(name, encoding);
  }
  return encoding;
}

/**
 * BPE merges are quadratic in the length of one pre-tokenized piece: 200,000 × "a" (one piece)
 * took 44 s, while 177 KB of words takes 31 ms. So text is encoded in segments of at most
 * SEGMENT characters, cut before a single space between two words (the pre-tokenizer splits
 * there anyway: " word" is one piece) and, inside longer runs, hard at SEGMENT. Ordinary text counts exactly; a long run counts at most one token more per cut,
 * an upper bound, which is what a budget needs. Cost: linear (512-character runs measured at
 * ~0.6 µs per character).
 */
const SEGMENT = 512;

/**
 * Counts by word. A cut before a single space between two words is a boundary of the
 * pre-tokenizer, so a text's count is the sum of its words' counts (" delivery", " order?"), and
 * words repeat: natural language draws on a vocabulary of tens of thousands of them. Each word's
 * count is remembered (see WordTable), so counting a new message is one scan that hashes its words
 * as it goes and a table probe a word, and the BPE runs only for words this process has not seen (a
 * word longer than WORD_MAX, such as a run without spaces, is counted in segments, as below). Exact,
 * like the rest.
 */
const WORD_MAX = 48;

class EncodingCounts {
  private readonly words = new HashCounts(WORD_SLOTS);
  /**
   * Whole texts counted before (system prompts, the memory block, fact lines come back every
   * turn), by the same hashes. A Map keyed by the text kept every text counted alive, so each new
   * message was copied out of the young generation by the collector.
   */
  private readonly texts = new HashCounts(TEXT_SLOTS);

  constructor(private readonly encoding: Tiktoken) {}

  count(text: string): number {
    if (text.length > CACHE_MAX_TEXT) return this.countWords(text);
    let first = FNV_OFFSET;
    let second = SECOND_SEED;
    for (let at = 0; at < text.length; at++) {
      const code = text.charCodeAt(at);
      first = Math.imul(first ^ code, FNV_PRIME);
      second = Math.imul(second ^ code, SECOND_PRIME) ^ (second >>> 15);
    }
    let tokens = this.texts.get(first, second, text.length);
    if (tokens < 0) {
      tokens = this.countWords(text);
      this.texts.set(first, second, text.length, tokens);
    }
    return tokens;
  }

  private countWords(text: string): number {
    let tokens = 0;
    let start = 0;
    let first = FNV_OFFSET;
    let second = SECOND_SEED;
    for (let at = 0; at < text.length; at++) {
      const code = text.charCodeAt(at);
      if (at > 0 && code === 32 && isWordStart(text, at)) {
        tokens += this.word(text, start, at, first, second);
        start = at;
        first = FNV_OFFSET;
        second = SECOND_SEED;
      }
      first = Math.imul(first ^ code, FNV_PRIME);
      second = Math.imul(second ^ code, SECOND_PRIME) ^ (second >>> 15);
    }
    return tokens + this.word(text, start, text.length, first, second);
  }

  /** The word text[start, end), whose hashes are `first` and `second`. */
  private word(text: string, start: number, end: number, first: number, second: number): number {
    if (end - start > WORD_MAX) return countPieces(this.encoding, text.slice(start, end));
    let tokens = this.words.get(first, second, end - start);
    if (tokens < 0) {
      tokens = this.encoding.encode_ordinary(text.slice(start, end)).length;
      this.words.set(first, second, end - start, tokens);
    }
    return tokens;
  }
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const SECOND_SEED = 0x3c6ef372 | 0;
const SECOND_PRIME = 0x5bd1e995;

/** Slots a generation of the word and text tables holds (powers of two); each turns over half full. */
const WORD_SLOTS = 1 << 17;
const TEXT_SLOTS = 1 << 15;

/**
 * Token counts by two 32-bit hashes of a word (or text) and its length, in flat typed arrays:
 * looking one up allocates nothing (no slice, no string key) and touches one cache line, where
 * a Map of strings cost a slice, a string hash and several pointer hops a word (a message's
 * count in a server, caches cold, was 54 µs). Two strings share an entry only if both hashes and
 * the length agree: about one chance in 10^19 a lookup. Two generations, as in GenerationalCache:
 * entries go into the newer; when it is half full the older is dropped whole, and an entry found
 * in the older moves to the newer. Holds up to `slots` entries.
 */
class HashCounts {
  // [first hash, second hash, length, tokens] a slot; length 0 marks an empty slot.
  private newer: Int32Array;
  private older: Int32Array;
  private used = 0;

  constructor(private readonly slots: number) {
    this.newer = new Int32Array(slots * 4);
    this.older = new Int32Array(slots * 4);
  }

  /** The word's count, or -1 when it is not here. */
  get(first: number, second: number, length: number): number {
    const found = probe(this.newer, this.slots, first, second, length);
    if (this.newer[found + 2] === length) return this.newer[found + 3]!;
    const old = probe(this.older, this.slots, first, second, length);
    if (this.older[old + 2] !== length) return -1;
    const tokens = this.older[old + 3]!;
    this.set(first, second, length, tokens);
    return tokens;
  }

  set(first: number, second: number, length: number, tokens: number): void {
    if (this.used >= this.slots / 2) {
      const dropped = this.older;
      this.older = this.newer;
      this.newer = dropped.fill(0);
      this.used = 0;
    }
    const slot = probe(this.newer, this.slots, first, second, length);
    if (this.newer[slot + 2] !== length) this.used++;
    this.newer[slot] = first;
    this.newer[slot + 1] = second;
    this.newer[slot + 2] = length;
    this.newer[slot + 3] = tokens;
  }
}

/** The slot holding the word, or the empty slot where it would go (linear probing; a table is at most half full). */
function probe(table: Int32Array, slots: number, first: number, second: number, length: number): number {
  const mask = slots - 1;
  for (let index = first & mask; ; index = (index + 1) & mask) {
    const slot = index * 4;
    const stored = table[slot + 2]!;
    if (stored === 0 || (stored === length && table[slot] === first && table[slot + 1] === second)) return slot;
  }
}

function countPieces(encoding: Tiktoken, text: string): number {
  // encode_ordinary: user text that happens to contain "<|endoftext|>" is text, not a special token.
  if (text.length <= SEGMENT) return encoding.encode_ordinary(text).length;
  let tokens = 0;
  let start = 0;
  while (text.length - start > SEGMENT) {
    let cut = start + SEGMENT;
    while (cut > start && !isWordStart(text, cut)) cut--;
    // No word start in this stretch: one long run, cut hard (not inside a surrogate pair).
    if (cut === start) cut = isLowSurrogate(text.charCodeAt(start + SEGMENT)) ? start + SEGMENT - 1 : start + SEGMENT;
    tokens += encoding.encode_ordinary(text.slice(start, cut)).length;
    start = cut;
  }
  return tokens + encoding.encode_ordinary(text.slice(start)).length;
}

/** `text[at]` is one space between non-space characters: the start of a " word" piece. */
function isWordStart(text: string, at: number): boolean {
  return text.charCodeAt(at) === 32 && !isSpace(text.charCodeAt(at - 1)) && !isSpace(text.charCodeAt(at + 1));
}

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13) || code === 160 || code === 0x2028 || code === 0x2029 || code === 0x3000;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Model names whose encoding is remembered (names come from clients: bounded). */
const MODELS_REMEMBERED = 256;

export class TiktokenTokenizer implements Tokenizer {
  private readonly byEncoding = new Map<TiktokenEncoding, EncodingCounts>();
  private readonly byModel = new Map<string, EncodingCounts>();

  /** Loads the encoding `model` uses now, so the first request does not pay for it. */
  preload(model: string): void {
    loadEncoding(encodingForModel(model));
  }

  count(text: string, model: string): number {
    return text.length === 0 ? 0 : this.counterFor(model).count(text);
  }

  private counterFor(model: string): EncodingCounts {
    let counter = this.byModel.get(model);
    if (counter) return counter;
    const encoding = encodingForModel(model);
    counter = this.byEncoding.get(encoding);
    if (!counter) {
      counter = new EncodingCounts(loadEncoding(encoding));
      this.byEncoding.set(encoding, counter);
    }
    if (this.byModel.size < MODELS_REMEMBERED) this.byModel.set(model, counter);
    return counter;
  }

  countMessage(message: ChatMessage, model: string): number {
    let tokens = PER_MESSAGE + this.count(contentText(message.content), model);
    if (Array.isArray(message.content)) {
      for (const part of message.content) {
        if (part?.type === 'image_url' || part?.type === 'input_image') tokens += imageTokens(part);
        else if (part?.type === 'input_audio') tokens += audioTokens(part);
        else if (part?.type === 'file') tokens += fileTokens(part);
      }
    }
    if (typeof message.name === 'string') tokens += PER_NAME + this.count(message.name, model);
    if (typeof message.refusal === 'string') tokens += this.count(message.refusal, model);
    for (const call of message.tool_calls ?? []) {
      tokens += PER_MESSAGE + this.count(`${call?.function?.name ?? ''}${call?.function?.arguments ?? ''}`, model);
    }
    return tokens;
  }
}
