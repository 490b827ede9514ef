import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken';
import { GenerationalCache } from './generational-cache.js';
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

/** Texts counted again and again (system prompts, the memory block, fact lines) are cached. */
const CACHE_LIMIT = 20_000;
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
 * count is remembered (up to WORD_LIMIT words, see GenerationalCache), so counting a new message is a scan and a few
 * map lookups, and the BPE runs only for words this process has not seen (a word longer than
 * WORD_MAX, such as a run without spaces, is counted in segments, as below). Exact, like the rest.
 */
const WORD_LIMIT = 100_000;
const WORD_MAX = 48;

class WordCounts {
  private readonly words = new GenerationalCache<string, number>(WORD_LIMIT);

  constructor(private readonly encoding: Tiktoken) {}

  count(text: string): number {
    let tokens = 0;
    let start = 0;
    for (let at = 1; at < text.length; at++) {
      if (text.charCodeAt(at) !== 32 || !isWordStart(text, at)) continue;
      tokens += this.word(text.slice(start, at));
      start = at;
    }
    return tokens + this.word(text.slice(start));
  }

  private word(word: string): number {
    if (word.length > WORD_MAX) return countPieces(this.encoding, word);
    let tokens = this.words.get(word);
    if (tokens === undefined) {
      tokens = this.encoding.encode_ordinary(word).length;
      this.words.set(word, tokens);
    }
    return tokens;
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

export class TiktokenTokenizer implements Tokenizer {
  private readonly counts = new GenerationalCache<string, number>(CACHE_LIMIT);
  private readonly byWord = new Map<TiktokenEncoding, WordCounts>();

  /** Loads the encoding `model` uses now, so the first request does not pay for it. */
  preload(model: string): void {
    loadEncoding(encodingForModel(model));
  }

  count(text: string, model: string): number {
    if (text.length === 0) return 0;
    const encoding = encodingForModel(model);
    const key = text.length <= CACHE_MAX_TEXT ? `${encoding}\u0000${text}` : undefined;
    const cached = key === undefined ? undefined : this.counts.get(key);
    if (cached !== undefined) return cached;
    let words = this.byWord.get(encoding);
    if (!words) this.byWord.set(encoding, (words = new WordCounts(loadEncoding(encoding))));
    const tokens = words.count(text);
    if (key !== undefined) this.counts.set(key, tokens);
    return tokens;
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
