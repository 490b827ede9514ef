import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sqliteStore } from '../../src/store/sql-backend.js';
import { TieredStore } from '../../src/store/tiered-store.js';
import type { MovableStore } from '../../src/store/types.js';

const message = (text: string) => ({ id: text, tokens: 3, hash: text, at: 0, message: { role: 'user', content: text } });

/**
 * The race behind "a session kept only its turns from #18 on": a promotion copies a session back
 * to hot, a demotion (the copy idled past a short TTL on a loaded machine) copies it to cold again
 * and evicts hot, and then the promotion evicts "its" cold copy — the only one left. Evictions now
 * name the exact copy (version and touch stamp), so the promotion's eviction is refused.
 */
describe('a promotion racing a demotion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-tier-race-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('never evicts a copy written since it read its own, whatever the interleaving (50 runs)', async () => {
    const hot = sqliteStore(`sqlite://${join(dir, 'hot.db')}`);
    const coldStore = sqliteStore(`sqlite://${join(dir, 'cold.db')}`);
    // The stores stamp updates with the real time; the tiers' clock runs ahead of it.
    let clock = Date.now() + 60_000;
    let between: (() => Promise<void>) | undefined;
    // The demotion runs right before the promotion's eviction of the cold copy: the worst moment.
    const cold: MovableStore = Object.assign(Object.create(coldStore), {
      evict: async (key: string, snapshot: Parameters<MovableStore['evict']>[1]) => {
        const hook = between;
        between = undefined;
        await hook?.();
        return coldStore.evict(key, snapshot);
      },
    });
    const tiers = new TieredStore({ hot, cold, hotTtlMs: () => 30, now: () => clock });
    try {
      for (let run = 0; run < 50; run++) {
        const id = `race-${run}`;
        await tiers.commit(id, 0, { keep: 0, append: [message(`${id}#seed`)] });
        const first = (await tiers.getMeta(id))!;
        await tiers.commit(id, first.version, { keep: first.count, append: [message(`${id}#1`)] });
        clock += 1_000;
        expect(await tiers.demote(id, clock)).toBe(true); // now only in cold
        between = async () => {
          clock += 1_000;
          await tiers.demote(id, clock); // the promoted copy idles out at once
        };
        await tiers.getMeta(id); // promote
        const meta = await tiers.getMeta(id);
        expect(meta, `run ${run}: the session must survive in one tier or both`).toBeDefined();
        const texts = (await tiers.readMessages(id, meta!, 0, meta!.count)).map((stored) => stored.message.content);
        expect(texts).toEqual([`${id}#seed`, `${id}#1`]);
      }
    } finally {
      await hot.close();
      await coldStore.close();
    }
  });
});
