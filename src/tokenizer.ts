import { get_encoding, type Tiktoken, type TiktokenEncoding } from 'tiktoken';
import { contentText, type ChatMessage } from './memory/messages.js';

/** Counts tokens the way the provider bills them; the seam lets tests or other vendors swap it. */
export interface Tokenizer {
  count(text: string, model: string): number;
  countMessage(message: ChatMessage, model: string): number;
}

// OpenAI's accounting for chat messages (cookbook "How to count tokens"):
// every message costs 3 tokens of framing, a name 1 more, a reply is primed with 3.
const PER_MESSAGE = 3;
const PER_NAME = 1;
export const REPLY_PRIMING = 3;
// Images are billed by size and detail; 85 is the low-detail base cost, a floor.
const PER_IMAGE = 85;

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

export class TiktokenTokenizer implements Tokenizer {
  private readonly counts = new Map<string, number>();

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
    // encode_ordinary: user text that happens to contain "<|endoftext|>" is text, not a special token.
    const tokens = loadEncoding(encoding).encode_ordinary(text).length;
    if (key !== undefined) {
      if (this.counts.size >= CACHE_LIMIT) this.counts.delete(this.counts.keys().next().value!);
      this.counts.set(key, tokens);
    }
    return tokens;
  }

  countMessage(message: ChatMessage, model: string): number {
    let tokens = PER_MESSAGE + this.count(contentText(message.content), model);
    if (Array.isArray(message.content)) {
      tokens += message.content.filter((part) => part?.type === 'image_url' || part?.type === 'input_image').length * PER_IMAGE;
    }
    if (typeof message.name === 'string') tokens += PER_NAME + this.count(message.name, model);
    if (typeof message.refusal === 'string') tokens += this.count(message.refusal, model);
    for (const call of message.tool_calls ?? []) {
      tokens += PER_MESSAGE + this.count(`${call?.function?.name ?? ''}${call?.function?.arguments ?? ''}`, model);
    }
    return tokens;
  }
}
