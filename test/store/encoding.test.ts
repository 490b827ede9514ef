import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStore } from '../../src/store/factory.js';
import { startRedis } from '../support/redis-server.js';

const dir = mkdtempSync(join(tmpdir(), 'mnemo-encoding-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stored message encoding', () => {
  it('writes plain text messages as compact tuples with time deltas, and reads every field back', async () => {
    const url = `sqlite://${join(dir, 'compact.db')}`;
    const store = buildStore(url);
    const messages = [
      { id: 'a1', message: { role: 'user', content: 'My order #7890 is stuck' }, tokens: 9, hash: 'h1', at: 1_700_000_000_000 },
      {
        id: 'a2',
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'track', arguments: '{}' } }],
        },
        tokens: 7,
        hash: 'h2',
        at: 1_700_000_000_450,
      },
      { id: 'a3', message: { role: 'tool', tool_call_id: 'c1', content: 'in transit' }, tokens: 4, hash: 'h3', at: 1_700_000_000_450 },
    ];
    await store.commit('t:compact', 0, { keep: 0, append: messages });
    const meta = (await store.getMeta('t:compact'))!;
    expect(await store.readMessages('t:compact', meta, 0, 3)).toEqual(messages);

    const raw = new Database(join(dir, 'compact.db'), { readonly: true });
    const row = raw.prepare(`SELECT value FROM keyv WHERE key LIKE '%t:compact}:head'`).get() as { value: string } | undefined;
    expect(JSON.parse(row!.value).value.tail[0]).toEqual(['a1', 9, 'h1', 1_700_000_000_000, 1, 'My order #7890 is stuck']);
    expect(JSON.parse(row!.value).value.tail[1].slice(0, 5)).toEqual(['a2', 7, 'h2', 450, 0]);
    raw.close();
    await store.close();
  });

  it('still reads sessions written in the earlier forms, and rewrites them on the next commit', async () => {
    const url = `sqlite://${join(dir, 'legacy.db')}`;
    // The table exactly as @keyv/sqlite (mnemo's SQLite driver before better-sqlite3) created it.
    const raw = new Database(join(dir, 'legacy.db'));
    raw.exec('CREATE TABLE IF NOT EXISTS keyv(key VARCHAR(255) PRIMARY KEY, value TEXT )');
    const legacyHead = {
      v: 1,
      n: 2,
      sealed: 0,
      gens: [],
      c: 1_700_000_000_000,
      u: 1_700_000_000_500,
      tail: [
        ['old1', 5, 'h1', 1_700_000_000_000, { role: 'user', content: 'hello' }],
        { id: 'old2', message: { role: 'assistant', content: 'hi' }, tokens: 3, hash: 'h2', at: 1_700_000_000_500 },
      ],
    };
    raw.prepare('INSERT INTO keyv (key, value) VALUES (?, ?)').run('mnemo:s:{t:legacy}:head', JSON.stringify({ value: legacyHead }));
    raw.close();

    const store = buildStore(url);
    const meta = (await store.getMeta('t:legacy'))!;
    const read = await store.readMessages('t:legacy', meta, 0, 2);
    expect(read.map((stored) => [stored.id, stored.message.content, stored.at])).toEqual([
      ['old1', 'hello', 1_700_000_000_000],
      ['old2', 'hi', 1_700_000_000_500],
    ]);
    const next = { id: 'new3', message: { role: 'user', content: 'again' }, tokens: 4, hash: 'h3', at: 1_700_000_001_000 };
    await store.commit('t:legacy', 1, { keep: 2, append: [next] });
    const after = (await store.getMeta('t:legacy'))!;
    expect((await store.readMessages('t:legacy', after, 0, 3)).map((stored) => stored.at)).toEqual([
      1_700_000_000_000, 1_700_000_000_500, 1_700_000_001_000,
    ]);
    await store.close();
  });

  it('on Redis, commits against heads in any field order, and after the server forgot its scripts', async () => {
    const redis = await startRedis();
    const cli = (...args: string[]) => execFileSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' }).trim();
    const store = buildStore(redis.url);
    try {
      // The version is read off the front of the head; a head written with other fields first still works.
      const head = { n: 1, sealed: 0, gens: [], c: 1, u: 1, tail: [['x1', 2, 'h1', 1, 1, 'hello']], v: 1 };
      cli('SET', 'mnemo::s:{t:order}:head', JSON.stringify({ value: head }));
      const next = { id: 'x2', message: { role: 'user', content: 'again' }, tokens: 2, hash: 'h2', at: 2 };
      expect(await store.commit('t:order', 0, { keep: 1, append: [next] })).toEqual({ ok: false, reason: 'conflict' });
      expect(await store.commit('t:order', 1, { keep: 1, append: [next] })).toMatchObject({ ok: true, meta: { version: 2, count: 2 } });
      expect(cli('GET', 'mnemo::s:{t:order}:head')).toMatch(/^\{"value":\{"v":2,/);

      // A restarted or flushed server answers NOSCRIPT once; the commit still lands, and so do the next ones.
      cli('SCRIPT', 'FLUSH');
      const third = { ...next, id: 'x3', hash: 'h3', message: { role: 'user', content: 'third' } };
      expect(await store.commit('t:order', 2, { keep: 2, append: [third] })).toMatchObject({ ok: true, meta: { version: 3 } });
      expect(await store.commit('t:order', 2, { keep: 2, append: [third] })).toEqual({ ok: false, reason: 'conflict' });
      const meta = (await store.getMeta('t:order'))!;
      expect((await store.readMessages('t:order', meta, 0, 3)).map((stored) => stored.message.content)).toEqual([
        'hello',
        'again',
        'third',
      ]);
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});
