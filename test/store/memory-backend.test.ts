import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/store/memory-backend.js';

describe('the in-process backend', () => {
  it('hands back the value written, without a JSON round trip', async () => {
    const backend = new MemoryBackend();
    const value = { v: 3, tail: [[1, 12, 'h', 0, 1, 'hello']], mem: { summary: null } };
    await backend.set('s:{a}:head', value);
    expect(await backend.get('s:{a}:head')).toBe(value);
    expect(await backend.getMany(['s:{a}:head', 'missing'])).toEqual([value, undefined]);
  });

  it('freezes what it stores, deeply: a reader cannot change a record every later reader sees', async () => {
    const backend = new MemoryBackend();
    await backend.setMany([{ key: 'k', value: { postings: [1, 2, 3], nested: { list: [{ at: 1 }] } } }]);
    const read = await backend.get<{ postings: number[]; nested: { list: Array<{ at: number }> } }>('k');
    expect(() => read!.postings.push(4)).toThrow(TypeError);
    expect(() => {
      read!.nested.list[0]!.at = 2;
    }).toThrow(TypeError);
    expect(await backend.get('k')).toEqual({ postings: [1, 2, 3], nested: { list: [{ at: 1 }] } });
  });

  it('deletes one or many, and lists keys by prefix', async () => {
    const backend = new MemoryBackend();
    await backend.setMany([
      { key: 's:{a}:head', value: 1 },
      { key: 's:{a}:c:0:0', value: 2 },
      { key: 's:{b}:head', value: 3 },
    ]);
    expect([...backend.keys('s:{a}:')].sort()).toEqual(['s:{a}:c:0:0', 's:{a}:head']);
    expect(await backend.deleteMany(['s:{a}:head', 's:{a}:c:0:0'])).toBe(true);
    expect(await backend.delete('s:{a}:head')).toBe(false);
    expect([...backend.keys('s:')]).toEqual(['s:{b}:head']);
  });
});
