import { describe, expect, it } from 'vitest';
import { ChunkCache, newEpoch } from '../../src/store/chunk-cache.js';
import { message } from './store-contract.js';

const chunk = (prefix: string, count = 4) => Array.from({ length: count }, (_, index) => message(`${prefix}${index}`));

describe('chunk cache', () => {
  it('keys entries by session epoch and chunk key', () => {
    const cache = new ChunkCache(1 << 20);
    cache.set('e1', 's:{a}:c:0:0', chunk('a'));
    expect(cache.get('e1', 's:{a}:c:0:0')?.map((stored) => stored.message.content)).toEqual(['a0', 'a1', 'a2', 'a3']);
    expect(cache.get('e2', 's:{a}:c:0:0')).toBeUndefined();
    expect(cache.get('e1', 's:{a}:c:0:1')).toBeUndefined();
  });

  it('drops the least recently used entries once over its size', () => {
    const one = new ChunkCache(1 << 20);
    one.set('e', 'k', chunk('x'));
    const perChunk = one.bytes;
    const cache = new ChunkCache(perChunk * 2);
    cache.set('e', 'first', chunk('x'));
    cache.set('e', 'second', chunk('x'));
    cache.get('e', 'first');
    cache.set('e', 'third', chunk('x'));
    expect(cache.get('e', 'second')).toBeUndefined();
    expect(cache.get('e', 'first')).toBeDefined();
    expect(cache.get('e', 'third')).toBeDefined();
    expect(cache.bytes).toBe(perChunk * 2);
  });

  it('keeps nothing larger than itself, and counts a replaced entry once', () => {
    const cache = new ChunkCache(100);
    cache.set('e', 'big', chunk('x', 10));
    expect(cache.get('e', 'big')).toBeUndefined();
    expect(cache.bytes).toBe(0);
    const roomy = new ChunkCache(1 << 20);
    roomy.set('e', 'k', chunk('x'));
    const size = roomy.bytes;
    roomy.set('e', 'k', chunk('y'));
    expect(roomy.bytes).toBe(size);
    expect(roomy.get('e', 'k')?.[0]?.message.content).toBe('y0');
  });

  it('freezes entries deeply, tool calls included', () => {
    const cache = new ChunkCache(1 << 20);
    const call = {
      ...message('call', 'assistant'),
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c', type: 'function' as const, function: { name: 'f', arguments: '{}' } }],
      },
    };
    cache.set('e', 'k', [call]);
    const [cached] = cache.get('e', 'k')!;
    expect(Object.isFrozen(cached!.message.tool_calls![0]!.function)).toBe(true);
    expect(() => (cache.get('e', 'k') as unknown as unknown[]).push(1)).toThrow(TypeError);
  });

  it('gives every new session its own epoch', () => {
    const epochs = new Set(Array.from({ length: 1000 }, newEpoch));
    expect(epochs.size).toBe(1000);
    for (const epoch of epochs) expect(epoch).toMatch(/^[\w-]{8}$/);
  });
});
