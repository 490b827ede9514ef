import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/store/memory-backend.js';
import { ChunkedKeyvStore } from '../../src/store/chunked-keyv-store.js';

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

describe('the register of side records', () => {
  const store = () => {
    const backend = new MemoryBackend();
    return {
      backend,
      store: new ChunkedKeyvStore(backend, { backend: 'memory', networked: false, scan: (prefix) => backend.keys(prefix) as never }),
    };
  };

  it('appends only the names a write adds, so registering costs what the write adds, not what the session holds', async () => {
    const { backend, store: sessions } = store();
    await sessions.writeAux('a', [
      { name: 'p1:tea', value: 1 },
      { name: 'p1:cup', value: 2 },
    ]);
    await sessions.writeAux('a', [
      { name: 'p1:tea', value: 3 },
      { name: 'p1:pot', value: 4 },
    ]);
    await sessions.writeAux('a', [{ name: 'p1:cup', value: 5 }]);
    expect(await backend.get('s:{a}:x:_names')).toEqual({ segments: 2 });
    expect(await backend.get('s:{a}:x:_names:1')).toEqual(['p1:tea', 'p1:cup']);
    expect(await backend.get('s:{a}:x:_names:2')).toEqual(['p1:pot']);
  });

  it('keeps every name when two instances append to one session in turn', async () => {
    const backend = new MemoryBackend();
    const options = { backend: 'memory', networked: false, scan: (prefix: string) => backend.keys(prefix) as never };
    const [one, two] = [new ChunkedKeyvStore(backend, options), new ChunkedKeyvStore(backend, options)];
    await one.commit('c', 0, { keep: 0, append: [] });
    await one.writeAux('c', [{ name: 'p1:a', value: 1 }]);
    await two.writeAux('c', [{ name: 'p1:b', value: 2 }]);
    await one.writeAux('c', [{ name: 'p1:c', value: 3 }]);
    const snapshot = await two.snapshot('c');
    expect(
      snapshot!.records
        .map((record) => record.key)
        .filter((key) => key.includes(':x:p1:'))
        .sort(),
    ).toEqual(['s:{c}:x:p1:a', 's:{c}:x:p1:b', 's:{c}:x:p1:c']);
  });

  it("reads an older store's single list, and erases what it names", async () => {
    const { backend, store: sessions } = store();
    await sessions.commit('b', 0, { keep: 0, append: [] });
    await backend.setMany([
      { key: 's:{b}:x:_names', value: ['p1:old'] },
      { key: 's:{b}:x:p1:old', value: { df: 1 } },
    ]);
    await sessions.writeAux('b', [{ name: 'p1:new', value: { df: 2 } }]);
    expect(await backend.get('s:{b}:x:_names')).toEqual({ segments: 2 });
    expect(await sessions.delete('b')).toBe(true);
    expect([...backend.keys('s:{b}')]).toEqual([]);
  });
});
