import { parseConfig } from '../../src/config/load.js';
import type { MemoryConfig } from '../../src/config/schema.js';
import type { AssemblyInput, Indexed } from '../../src/memory/assemble.js';
import { messageHash, type ChatMessage, type StoredMessage } from '../../src/memory/messages.js';
import { docOf } from '../../src/memory/passages.js';
import type { Recollection } from '../../src/memory/recall.js';
import { emptyMemory } from '../../src/memory/state.js';
import { TiktokenTokenizer } from '../../src/tokenizer.js';

export const tokenizer = new TiktokenTokenizer();
const model = 'gpt-4o-mini';

export function stored(message: ChatMessage, index = 0): StoredMessage {
  return {
    id: `id-${index}`,
    message,
    tokens: tokenizer.countMessage(message, model),
    hash: messageHash(message),
    at: Date.UTC(2026, 10, 1) + index * 60_000,
  };
}

export function indexed(messages: ChatMessage[], offset = 0): Indexed[] {
  return messages.map((message, position) => ({ index: offset + position, stored: stored(message, offset + position) }));
}

/** Each message as one recalled passage (no neighbours), best first in the given order. */
export function recollections(messages: ChatMessage[], offset = 0): Recollection[] {
  return indexed(messages, offset).map(({ index, stored }) => ({
    passage: { doc: docOf(index, 0), index, stored, text: String(stored.message.content) },
    neighbours: [],
  }));
}

export function memoryConfig(overrides: Record<string, unknown> = {}): MemoryConfig {
  return parseConfig({ memory: overrides }).memory;
}

export function input(overrides: Partial<AssemblyInput> & { window?: Indexed[] }): AssemblyInput {
  const window = overrides.window ?? [];
  return {
    instructions: [],
    fresh: [stored({ role: 'user', content: 'new question' }, 10_000)],
    memory: emptyMemory(),
    recalled: [],
    storedTokens: window.reduce((total, item) => total + item.stored.tokens, 0),
    contextWindow: 128_000,
    completionReserve: 4_096,
    config: memoryConfig(),
    countMessage: (message) => tokenizer.countMessage(message, model),
    countText: (text) => tokenizer.count(text, model),
    ...overrides,
    window,
  };
}

export const u = (content: string): ChatMessage => ({ role: 'user', content });
export const a = (content: string): ChatMessage => ({ role: 'assistant', content });
export const call = (id: string, name = 'lookup_order', args = '{"order_id":"7890"}'): ChatMessage => ({
  role: 'assistant',
  content: null,
  tool_calls: [{ id, type: 'function', function: { name, arguments: args } }],
});
export const result = (id: string, content: string): ChatMessage => ({ role: 'tool', tool_call_id: id, content });
