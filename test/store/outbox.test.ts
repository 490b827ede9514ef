import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/factory.js';
import { FaultyStore } from '../support/faulty-store.js';
import { FakeProvider, streamParts, chunk, sse } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';

/**
 * No acknowledged turn is ever lost: a turn the provider answered whose commit fails goes to the
 * outbox and lands once the store is back, exactly once, in order; an erased session stays erased.
 */
describe('the outbox, on a real SQLite store with faults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-outbox-'));
  let harness: Harness | undefined;
  let file = 0;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function start(provider?: FakeProvider, outbox = join(dir, `outbox-${++file}.db`), db = join(dir, `mnemo-${file}.db`)) {
    const store = new FaultyStore(await createStore({ url: `sqlite://${db}`, timeoutMs: 1_000 }));
    harness = await startHarness({ store: { outbox, outbox_interval_ms: 50 } }, provider, { store });
    return { store, harness, outbox, db };
  }
  const contents = async (h: Harness, id: string) =>
    ((await (await h.admin(`/mnemo/sessions/${id}`)).json()).messages ?? []).map((message: { content: string }) => message.content);
  const streamed = (h: Harness, id: string, content: string) =>
    h.chat(id, { stream: true, messages: [user(content)] }).then(async (response) => ({ response, text: await response.text() }));

  it('queues streamed and non-streamed turns whose commit fails, and replays them once, in order', async () => {
    const { store, harness: h } = await start();
    await h.chat('o-1', { messages: [user('turn 1')] });
    store.failCommits = true;
    const second = await h.chat('o-1', { messages: [user('turn 2')] });
    expect(second.status).toBe(200);
    expect(second.headers.get('x-mnemo-memory')).toBe('queued');
    const third = await streamed(h, 'o-1', 'turn 3');
    expect(third.text).toContain('[DONE]');
    // While turn 2 cannot land, it is shown from the outbox: the conversation does not skip.
    expect(JSON.stringify(h.provider.lastChat.body.messages)).toContain('turn 2');
    const ready = await (await fetch(`${h.mnemo.url}/readyz`)).json();
    expect(ready.outbox).toMatchObject({ depth: 2, draining: true });
    expect(await (await fetch(`${h.mnemo.url}/metrics`)).text()).toMatch(/mnemo_outbox_depth 2/);

    store.failCommits = false;
    await h.mnemo.outbox!.replayer.drain();
    expect(await contents(h, 'o-1')).toEqual(['turn 1', 'Reply to: turn 1', 'turn 2', 'Reply to: turn 2', 'turn 3', 'Reply to: turn 3']);
    expect(h.mnemo.outbox!.box.depth().depth).toBe(0);
  });

  it("replays a session's waiting turns before its next turn on this instance", async () => {
    const { store, harness: h } = await start();
    await h.chat('o-2', { messages: [user('My order #7890 is stuck')] });
    store.failCommits = true;
    await h.chat('o-2', { messages: [user('It was due Monday')] });
    store.failCommits = false;
    await h.chat('o-2', { messages: [user('Any news?')] });
    expect(JSON.stringify(h.provider.lastChat.body.messages)).toContain('It was due Monday');
    expect(await contents(h, 'o-2')).toEqual([
      'My order #7890 is stuck',
      'Reply to: My order #7890 is stuck',
      'It was due Monday',
      'Reply to: It was due Monday',
      'Any news?',
      'Reply to: Any news?',
    ]);
  });

  it('records once a commit that timed out but was applied late', async () => {
    const { store, harness: h } = await start();
    store.lateCommits = true;
    const response = await h.chat('o-3', { messages: [user('only once')] });
    expect(response.headers.get('x-mnemo-memory')).toBe('queued');
    store.lateCommits = false;
    await Promise.all(store.late);
    await h.mnemo.outbox!.replayer.drain();
    expect(await contents(h, 'o-3')).toEqual(['only once', 'Reply to: only once']);
  });

  it('keeps waiting turns across a restart of the instance', async () => {
    const provider = await new FakeProvider().start();
    try {
      const first = await start(provider);
      await first.harness.chat('o-4', { messages: [user('before the crash')] });
      first.store.down = true;
      first.store.failCommits = true;
      // The store fails after the read: the answered turn goes to the outbox file.
      first.store.down = false;
      await first.harness.chat('o-4', { messages: [user('answered while the store failed')] });
      expect(first.harness.mnemo.outbox!.box.depth().depth).toBe(1);
      first.store.down = true; // and stays down through shutdown: the entry stays on disk
      await first.harness.close();
      harness = undefined;

      const second = await start(provider, first.outbox, first.db);
      await second.harness.mnemo.outbox!.replayer.drain();
      expect(await contents(second.harness, 'o-4')).toEqual([
        'before the crash',
        'Reply to: before the crash',
        'answered while the store failed',
        'Reply to: answered while the store failed',
      ]);
    } finally {
      await harness?.close();
      harness = undefined;
      await provider.stop();
    }
  });

  it('keeps turns answered while the store could not even be read (on_store_error: pass_through)', async () => {
    const store = new FaultyStore(await createStore({ url: `sqlite://${join(dir, 'pass.db')}`, timeoutMs: 1_000 }));
    harness = await startHarness({ store: { outbox: join(dir, 'pass-outbox.db'), on_store_error: 'pass_through' } }, undefined, { store });
    await harness.chat('o-5', { messages: [user('first')] });
    store.down = true;
    const degraded = await harness.chat('o-5', { messages: [user('during the outage')] });
    expect(degraded.headers.get('x-mnemo-memory')).toBe('degraded');
    store.down = false;
    await harness.mnemo.outbox!.replayer.drain();
    expect(await contents(harness, 'o-5')).toEqual(['first', 'Reply to: first', 'during the outage', 'Reply to: during the outage']);
  });

  it('notices a deleted SQLite file: writes fail loudly into the outbox, and /readyz fails', async () => {
    const { harness: h, db } = await start();
    await h.chat('o-6', { messages: [user('stored before')] });
    // The first turn's background work is done before the file goes: else it may be the first
    // to notice, and the next turn's read would fail (503) rather than its write (queued).
    await h.mnemo.folds.drain();
    unlinkSync(db);
    const response = await h.chat('o-6', { messages: [user('after the file went')] });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-mnemo-memory')).toBe('queued');
    expect((await fetch(`${h.mnemo.url}/readyz`)).status).toBe(503);
  });
});

describe('erasure wins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-erase-race-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a turn in flight when its session is erased does not bring it back', async () => {
    const harness = await startHarness({ store: { url: `sqlite://${join(dir, 'race.db')}` } });
    try {
      await harness.chat('e-1', { messages: [user('secret: 4242')] });
      const slow = streamParts([
        { data: sse([chunk({ role: 'assistant', content: '' })]) },
        { delayMs: 300, data: sse([chunk({ content: 'late answer' }), chunk({}, 'stop'), '[DONE]']) },
      ]);
      harness.provider.next(slow);
      const inFlight = harness.chat('e-1', { stream: true, messages: [user('and one more')] }).then((response) => response.text());
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await harness.admin('/mnemo/sessions/e-1', { method: 'DELETE' })).status).toBe(200);
      expect(await inFlight).toContain('[DONE]');
      expect((await harness.admin('/mnemo/sessions/e-1')).status).toBe(404);
      const next = await harness.chat('e-1', { messages: [user('hello?')] });
      expect(next.headers.get('x-mnemo-memory')).toBe('miss');
      expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('4242');
    } finally {
      await harness.close();
    }
  });

  it('a turn begun before an erase cannot start the session again, even one it never saw', async () => {
    const harness = await startHarness({ store: { url: `sqlite://${join(dir, 'tomb.db')}` } });
    try {
      const slow = streamParts([
        { data: sse([chunk({ role: 'assistant', content: '' })]) },
        { delayMs: 300, data: sse([chunk({ content: 'late answer' }), chunk({}, 'stop'), '[DONE]']) },
      ]);
      harness.provider.next(slow);
      // A begins while the session does not exist yet; B creates it; then it is erased.
      const first = harness.chat('e-3', { stream: true, messages: [user('from before the erase')] }).then((response) => response.text());
      await new Promise((resolve) => setTimeout(resolve, 50));
      await harness.chat('e-3', { messages: [user('secret: 4242')] });
      expect((await harness.admin('/mnemo/sessions/e-3', { method: 'DELETE' })).status).toBe(200);
      expect(await first).toContain('[DONE]');
      expect((await harness.admin('/mnemo/sessions/e-3')).status).toBe(404);
      // A session started after the erase is new, and starts empty.
      await harness.chat('e-3', { messages: [user('hello again')] });
      expect(harness.provider.lastChat.body.messages).toEqual([user('hello again')]);
    } finally {
      await harness.close();
    }
  });

  it('an outbox replay for an erased session is dropped', async () => {
    const store = new FaultyStore(await createStore({ url: `sqlite://${join(dir, 'erase.db')}`, timeoutMs: 1_000 }));
    const harness = await startHarness({ store: { outbox: join(dir, 'erase-outbox.db') } }, undefined, { store });
    try {
      await harness.chat('e-2', { messages: [user('secret: 4242')] });
      store.failCommits = true;
      await harness.chat('e-2', { messages: [user('queued turn')] });
      store.failCommits = false;
      expect((await harness.admin('/mnemo/sessions/e-2', { method: 'DELETE' })).status).toBe(200);
      await harness.mnemo.outbox!.replayer.drain();
      expect(harness.mnemo.outbox!.box.depth().depth).toBe(0);
      expect((await harness.admin('/mnemo/sessions/e-2')).status).toBe(404);
    } finally {
      await harness.close();
    }
  });

  it('an outbox replay older than the tombstones last cannot create a session: an erase would no longer show', async () => {
    let clock = Date.UTC(2026, 11, 7);
    const store = new FaultyStore(await createStore({ url: `sqlite://${join(dir, 'old.db')}`, timeoutMs: 1_000, now: () => clock }));
    const harness = await startHarness(
      { store: { outbox: join(dir, 'old-outbox.db') }, session: { tombstone_ttl_ms: 3_600_000 } },
      undefined,
      { store, now: () => clock },
    );
    try {
      store.failCommits = true;
      expect((await harness.chat('e-5', { messages: [user('first words of a new session')] })).headers.get('x-mnemo-memory')).toBe(
        'queued',
      );
      store.failCommits = false;
      // Replayed within the hour, a new session's first turn lands; replayed later, it is dropped.
      await harness.mnemo.outbox!.replayer.drain();
      expect(harness.mnemo.outbox!.box.depth().depth).toBe(0);
      expect((await harness.admin('/mnemo/sessions/e-5')).status).toBe(200);
      store.failCommits = true;
      expect((await harness.chat('e-6', { messages: [user('a third new session')] })).headers.get('x-mnemo-memory')).toBe('queued');
      store.failCommits = false;
      clock += 3_600_001;
      await harness.mnemo.outbox!.replayer.drain();
      expect(harness.mnemo.outbox!.box.depth().depth).toBe(0);
      expect((await harness.admin('/mnemo/sessions/e-6')).status).toBe(404);
    } finally {
      await harness.close();
    }
  });
});
