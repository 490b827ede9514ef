import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../src/memory/messages.js';
import type { SessionStore } from '../../src/store/types.js';

let counter = 0;
export function message(content: string, role = 'user'): StoredMessage {
  return { id: `m${++counter}`, message: { role, content }, tokens: 4, hash: `h-${content}`, at: 1_700_000_000_000 };
}

const contents = (messages: StoredMessage[]) => messages.map((stored) => stored.message.content);

/** The behaviour every backend must show; each backend's test file runs it against a real instance. */
export function storeContract(name: string, makeStore: () => Promise<SessionStore>, teardown: () => Promise<void> = async () => {}) {
  describe(`${name} store contract`, () => {
    let store: SessionStore;
    let session = 0;
    const key = () => `tenant:s${++session}-${Math.random().toString(36).slice(2)}`;

    beforeAll(async () => {
      store = await makeStore();
    });
    afterAll(async () => {
      await store.close();
      await teardown();
    });

    it('has no meta for an unknown session', async () => {
      expect(await store.getMeta(key())).toBeUndefined();
    });

    it('creates a session at version 0 and appends in order', async () => {
      const id = key();
      const first = await store.commit(id, 0, { keep: 0, append: [message('a'), message('b')] });
      expect(first).toMatchObject({ ok: true, meta: { version: 1, count: 2 } });
      await store.commit(id, 1, { keep: 2, append: [message('c')] });
      const meta = (await store.getMeta(id))!;
      expect(meta).toMatchObject({ version: 2, count: 3 });
      expect(contents(await store.readMessages(id, meta, 0, 3))).toEqual(['a', 'b', 'c']);
    });

    it('refuses a commit made against a stale version and changes nothing', async () => {
      const id = key();
      await store.commit(id, 0, { keep: 0, append: [message('a')] });
      expect(await store.commit(id, 0, { keep: 0, append: [message('x')] })).toEqual({ ok: false, reason: 'conflict' });
      const meta = (await store.getMeta(id))!;
      expect(meta.version).toBe(1);
      expect(contents(await store.readMessages(id, meta, 0, meta.count))).toEqual(['a']);
    });

    it('refuses a commit built on a meta that another commit has since replaced', async () => {
      const id = key();
      await store.commit(id, 0, { keep: 0, append: [message('a')] });
      const stale = (await store.getMeta(id))!;
      await store.commit(id, 1, { keep: 1, append: [message('b')], base: stale });
      expect(await store.commit(id, 1, { keep: 1, append: [message('x')], base: stale })).toEqual({ ok: false, reason: 'conflict' });
      const meta = (await store.getMeta(id))!;
      expect(contents(await store.readMessages(id, meta, 0, meta.count))).toEqual(['a', 'b']);
    });

    it('reads any range across sealed chunks and the open tail', async () => {
      const id = key();
      const all = Array.from({ length: 100 }, (_, index) => message(`m${index}`));
      let version = 0;
      for (let index = 0; index < all.length; index += 7) {
        const result = await store.commit(id, version, { keep: index, append: all.slice(index, index + 7) });
        if (!result.ok) throw new Error('conflict');
        version = result.meta.version;
      }
      const meta = (await store.getMeta(id))!;
      expect(meta.count).toBe(100);
      expect(contents(await store.readMessages(id, meta, 0, 100))).toEqual(contents(all));
      expect(contents(await store.readMessages(id, meta, 30, 70))).toEqual(contents(all.slice(30, 70)));
      expect(contents(await store.readMessages(id, meta, 95, 200))).toEqual(contents(all.slice(95)));
    });

    it('reads scattered messages by index, in the order asked, across chunks and the tail', async () => {
      const id = key();
      const all = Array.from({ length: 100 }, (_, index) => message(`m${index}`));
      await store.commit(id, 0, { keep: 0, append: all });
      const meta = (await store.getMeta(id))!;
      const read = await store.readMessagesAt(id, meta, [97, 3, 40, 4, 99, 100, -1]);
      expect(read.map((stored) => stored?.message.content)).toEqual(['m97', 'm3', 'm40', 'm4', 'm99', undefined, undefined]);
      expect(await store.readMessagesAt(id, meta, [])).toEqual([]);
    });

    it('forks inside sealed history without disturbing what is kept', async () => {
      const id = key();
      const all = Array.from({ length: 80 }, (_, index) => message(`m${index}`));
      await store.commit(id, 0, { keep: 0, append: all });
      const forked = await store.commit(id, 1, { keep: 40, append: [message('edit')] });
      expect(forked).toMatchObject({ ok: true, meta: { count: 41, version: 2 } });
      await store.commit(id, 2, { keep: 41, append: Array.from({ length: 40 }, (_, index) => message(`n${index}`)) });
      const meta = (await store.getMeta(id))!;
      const read = contents(await store.readMessages(id, meta, 0, meta.count));
      expect(read.slice(0, 41)).toEqual([...contents(all.slice(0, 40)), 'edit']);
      expect(read.slice(41)).toEqual(Array.from({ length: 40 }, (_, index) => `n${index}`));
    });

    it('keeps the message fields it was given', async () => {
      const id = key();
      const stored: StoredMessage = {
        id: 'x1',
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
        },
        tokens: 17,
        hash: 'hx',
        at: 1_700_000_000_123,
      };
      await store.commit(id, 0, { keep: 0, append: [stored] });
      const meta = (await store.getMeta(id))!;
      expect(await store.readMessages(id, meta, 0, 1)).toEqual([stored]);
    });

    it('deletes a session entirely', async () => {
      const id = key();
      await store.commit(id, 0, { keep: 0, append: Array.from({ length: 70 }, (_, index) => message(`m${index}`)) });
      expect(await store.delete(id)).toBe(true);
      expect(await store.getMeta(id)).toBeUndefined();
      expect(await store.delete(id)).toBe(false);
      const again = await store.commit(id, 0, { keep: 0, append: [message('fresh')] });
      expect(again).toMatchObject({ ok: true, meta: { count: 1 } });
    });

    it('erases every side record with the session, however many writes registered them', async () => {
      const id = key();
      await store.commit(id, 0, { keep: 0, append: [message('a')] });
      const names = Array.from({ length: 60 }, (_, index) => `p1:term${index}`);
      // Overlapping writes, as index batches touching old and new terms make them.
      for (let start = 0; start < 60; start += 5) {
        await store.writeAux(
          id,
          names.slice(Math.max(0, start - 5), start + 5).map((name) => ({ name, value: { df: start } })),
        );
      }
      expect((await store.readAux(id, names)).every((value) => value !== undefined)).toBe(true);
      expect(await store.delete(id)).toBe(true);
      expect((await store.readAux(id, names)).every((value) => value === undefined)).toBe(true);
    });

    it('deletes side records it no longer needs, and erases the session cleanly after', async () => {
      const id = key();
      await store.commit(id, 0, { keep: 0, append: [message('a')] });
      await store.writeAux(id, [
        { name: 'b1:old', value: { terms: ['tea'] } },
        { name: 'b1:kept', value: { terms: ['cup'] } },
      ]);
      await store.deleteAux(id, ['b1:old', 'b1:never-written']);
      expect(await store.readAux(id, ['b1:old', 'b1:kept'])).toEqual([undefined, { terms: ['cup'] }]);
      expect(await store.delete(id)).toBe(true);
      expect(await store.readAux(id, ['b1:kept'])).toEqual([undefined]);
    });

    it('reads its own history after being deleted and created again, never the one before', async () => {
      const id = key();
      const before = Array.from({ length: 70 }, (_, index) => message(`old${index}`));
      await store.commit(id, 0, { keep: 0, append: before });
      expect(contents(await store.readMessages(id, (await store.getMeta(id))!, 0, 70))).toEqual(contents(before));
      await store.delete(id);
      const after = Array.from({ length: 70 }, (_, index) => message(`new${index}`));
      await store.commit(id, 0, { keep: 0, append: after });
      const meta = (await store.getMeta(id))!;
      expect(contents(await store.readMessages(id, meta, 0, 70))).toEqual(contents(after));
      expect(contents((await store.readMessagesAt(id, meta, [5, 40])) as StoredMessage[])).toEqual(['new5', 'new40']);
    });

    it('lets exactly one of many concurrent commits at the same version win', async () => {
      const id = key();
      await store.commit(id, 0, { keep: 0, append: [message('base')] });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, index) => store.commit(id, 1, { keep: 1, append: [message(`w${index}`)] })),
      );
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect((await store.getMeta(id))!.count).toBe(2);
    });

    it('lists the sessions under a prefix, and only those', async () => {
      const tenant = `list${Math.random().toString(36).slice(2)}`;
      await store.commit(`${tenant}:a`, 0, { keep: 0, append: [message('a')] });
      await store.commit(`${tenant}:b`, 0, { keep: 0, append: [message('b'), message('c')] });
      await store.commit(`other${tenant}:c`, 0, { keep: 0, append: [message('x')] });
      const listed: Array<[string, number]> = [];
      for await (const { sessionKey, meta } of store.listSessions(`${tenant}:`)) listed.push([sessionKey, meta.count]);
      expect(listed.sort()).toEqual([
        [`${tenant}:a`, 1],
        [`${tenant}:b`, 2],
      ]);
    });

    it('keeps plain records', async () => {
      const id = `profile:${Math.random()}`;
      expect(await store.getRecord(id)).toBeUndefined();
      await store.setRecord(id, { text: 'likes tea' });
      expect(await store.getRecord(id)).toEqual({ text: 'likes tea' });
      expect(await store.deleteRecord(id)).toBe(true);
      expect(await store.getRecord(id)).toBeUndefined();
    });

    it("lists plain records by their key's prefix, and no session's keys", async () => {
      const prefix = `sweep-${Math.random().toString(36).slice(2)}:`;
      await store.setRecord(`${prefix}one`, { at: 1 });
      await store.setRecord(`${prefix}two_%`, { at: 2 });
      await store.setRecord(`other-${prefix}three`, { at: 3 });
      await store.commit(`${prefix}session`, 0, { keep: 0, append: [message('hello')] });
      const listed: string[] = [];
      for await (const key of store.listRecords(prefix)) listed.push(key);
      expect(listed.sort()).toEqual([`${prefix}one`, `${prefix}two_%`]);
      // A prefix with LIKE's and glob's wildcards in it matches them literally.
      const literal: string[] = [];
      for await (const key of store.listRecords(`${prefix}two_`)) literal.push(key);
      expect(literal).toEqual([`${prefix}two_%`]);
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
