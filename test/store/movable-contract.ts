import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStore } from '../../src/store/factory.js';
import type { MovableStore, SessionStore } from '../../src/store/types.js';
import { message } from './store-contract.js';

const contents = async (store: SessionStore, id: string) => {
  const meta = (await store.getMeta(id))!;
  return (await store.readMessages(id, meta, 0, meta.count)).map((stored) => stored.message.content);
};

/**
 * What a tier move relies on, for every backend that can be a tier: a session
 * copies out and in whole, and both halves of a move are conditional on versions.
 */
export function movableContract(name: string, makeStore: () => Promise<MovableStore>, teardown: () => Promise<void> = async () => {}) {
  describe(`${name} as a tier`, () => {
    let store: MovableStore;
    const source = buildStore('memory://');
    const key = () => `tenant:move-${Math.random().toString(36).slice(2)}`;

    /** A 70-message session (two sealed chunks and a tail) with side records, in the memory store. */
    async function seeded(id: string) {
      await source.commit(id, 0, { keep: 0, append: Array.from({ length: 70 }, (_, index) => message(`m${index}`)) });
      await source.writeAux(id, [
        { name: 'postings', value: { tea: [3, 9] } },
        { name: 'merged-away', value: { tea: [1] } },
      ]);
      // Registered, then deleted: a snapshot moves what is there.
      await source.deleteAux(id, ['merged-away']);
      return (await source.snapshot(id))!;
    }

    beforeAll(async () => {
      store = await makeStore();
    });
    afterAll(async () => {
      await store.close();
      await teardown();
    });

    it('restores a snapshot whole: messages, version, times and side records', async () => {
      const id = key();
      const snapshot = await seeded(id);
      expect(await store.restore(id, snapshot)).toBe(true);
      expect(await contents(store, id)).toEqual(await contents(source, id));
      expect(await store.getMeta(id)).toEqual(await source.getMeta(id));
      expect(await store.readAux(id, ['postings', 'merged-away'])).toEqual([{ tea: [3, 9] }, undefined]);
    });

    it('keeps a session it holds at a newer version, and overwrites an older or equal one', async () => {
      const id = key();
      const old = await seeded(id);
      await source.commit(id, old.version, { keep: 70, append: [message('newer')] });
      const newer = (await source.snapshot(id))!;
      expect(await store.restore(id, newer)).toBe(true);
      expect(await store.restore(id, old)).toBe(false);
      expect((await contents(store, id)).at(-1)).toBe('newer');
      expect(await store.restore(id, newer)).toBe(true);
    });

    it('marks a restored copy active for tiering without changing its updatedAt', async () => {
      const id = key();
      const snapshot = await seeded(id);
      await store.restore(id, snapshot, snapshot.activeAt + 60_000);
      expect((await store.getMeta(id))!.updatedAt).toBe((await source.getMeta(id))!.updatedAt);
      expect((await store.snapshot(id))!.activeAt).toBe(snapshot.activeAt + 60_000);
    });

    it('evicts only at the snapshot version, and then leaves nothing behind', async () => {
      const id = key();
      const snapshot = await seeded(id);
      await store.restore(id, snapshot);
      const meta = (await store.getMeta(id))!;
      await store.commit(id, meta.version, { keep: meta.count, append: [message('late turn')] });
      expect(await store.evict(id, snapshot)).toBe(false);
      expect((await contents(store, id)).at(-1)).toBe('late turn');

      const current = (await store.snapshot(id))!;
      expect(await store.evict(id, current)).toBe(true);
      expect(await store.getMeta(id)).toBeUndefined();
      expect(await store.readAux(id, ['postings'])).toEqual([undefined]);
      // delete() scans the session's key prefix: nothing is left for it to find.
      expect(await store.delete(id)).toBe(false);
    });
  });
}
