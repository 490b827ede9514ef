import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addToIndex,
  Block,
  EMPTY_STATS,
  indexMessages,
  LANDING_DEADLINE_MS,
  searchPassages,
  terms,
  readBlock,
  type IndexStats,
  type PackedBlock,
} from '../../src/memory/lexical-index.js';
import { docOf, passagesOf } from '../../src/memory/passages.js';
import { asksSomething, withoutRepeats } from '../../src/memory/recall.js';
import { createStore } from '../../src/store/factory.js';
import type { SessionStore } from '../../src/store/types.js';
import { startHarness, system, user, type Harness } from '../support/harness.js';
import { FaultyStore } from '../support/faulty-store.js';

/** A user message as the index sees it: its transcript index and the stored message. */
const message = (index: number, content: string) => ({
  index,
  stored: { id: `m${index}`, tokens: 9, hash: `h${index}`, at: index, message: { role: 'user', content } },
});

describe('recall of archived turns', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      memory: { summary: { trigger_tokens: 300 }, window: { min_tokens: 150, step_tokens: 150, cache_prefix_tokens: 0 } },
    });
    // The summarizer here keeps nothing, so only recall can bring the detail back.
    harness.provider.summaryReply = async (call, res) => {
      const { completion, json } = await import('../support/fake-provider.js');
      return json(completion({ content: 'The user chatted about several topics.' }))(call, res);
    };
    const filler = ['weather in spring', 'favourite books', 'music for running', 'coffee brewing', 'garden tools', 'board games'];
    await harness.chat('recall-1', { messages: [user('The spare key is hidden under the blue flowerpot by the kitchen door.')] });
    for (let turn = 0; turn < 30; turn++) {
      await (
        await harness.chat('recall-1', { messages: [user(`Let us talk about ${filler[turn % filler.length]} for a while, turn ${turn}.`)] })
      ).text();
      await harness.mnemo.folds.drain();
    }
  }, 60_000);
  afterAll(() => harness.close());

  it('adds the relevant archived turn, with its date, when the new message asks about it', async () => {
    await harness.chat('recall-1', { messages: [system('Be brief.'), user('Where did I say the spare key is hidden?')] });
    const messages = harness.provider.lastChat.body.messages;
    const recall = messages.find((message: { content: string }) => message.content.startsWith('[mnemo recall]'));
    expect(recall.content).toMatch(/\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\]\nuser: The spare key is hidden under the blue flowerpot/);
    // Late in the prompt: right before the new message, after the cache-stable prefix.
    expect(messages.indexOf(recall)).toBe(messages.length - 2);
  });

  it('recalls for a question more readily than for a statement with the same words', async () => {
    // Both share "blue flowerpot" with the archived turn and other words with other turns, so the best
    // passage covers part of them: enough for a question (trigger_coverage), not for a statement,
    // which must reach statement_trigger_coverage to pay for a recall block.
    await harness.chat('recall-1', { messages: [user('I painted the blue flowerpot while brewing coffee and playing board games.')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('[mnemo recall]');
    await harness.chat('recall-1', { messages: [user('Did I paint the blue flowerpot while brewing coffee and playing board games?')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).toContain('blue flowerpot by the kitchen door');
  });

  it('adds nothing when the new message is unrelated', async () => {
    await harness.chat('recall-1', { messages: [user('Quantum chromodynamics?')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('[mnemo recall]');
  });

  it('tells a message that asks something from one that does not, in any script', () => {
    expect(asksSomething('Where is my order?')).toBe(true);
    expect(asksSomething('注文はどこですか？')).toBe(true);
    expect(asksSomething('أين طلبي؟')).toBe(true);
    expect(asksSomething('My order is late.')).toBe(false);
  });

  it('tokenizes words and numbers, dropping stopwords, and stems words (Porter)', () => {
    expect(terms("What's the status of order #7890, Zoë?")).toEqual(['statu', 'order', '7890', 'zoë']);
    expect(terms('She painted; he paints; painting')).toEqual(['she', 'paint', 'he', 'paint', 'paint']);
  });
});

describe("terms in a large share of the session's passages", () => {
  const archive = (count: number, from = 0) =>
    Array.from({ length: count }, (_, offset) =>
      message(
        from + offset,
        from + offset === 17 ? 'Order 7890: the courier left it with the neighbour' : `Order 7890 update number ${from + offset}`,
      ),
    );
  const options = { limit: 2, belowIndex: 1_000, minCoverage: 0.2 };

  it('do not count in a search, which still finds the passage the distinctive words point to', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    await indexMessages(store, 't:common', 1, archive(60));
    const { hits } = await searchPassages(store, 't:common', 1, 'Did the courier leave order 7890 with a neighbour?', options);
    expect(hits[0]?.doc).toBe(docOf(17, 0));
    // A query made only of common terms recalls nothing.
    expect((await searchPassages(store, 't:common', 1, 'order 7890?', options)).hits).toEqual([]);
    await store.close();
  });

  it('count once there are 50 passages, and count again once they are in under 40% of them', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    await indexMessages(store, 's', 1, archive(40));
    // Too few passages to judge: "7890" is searched.
    expect((await searchPassages(store, 's', 1, 'order 7890?', options)).hits).toHaveLength(2);
    await indexMessages(store, 's', 1, archive(20, 40));
    expect((await searchPassages(store, 's', 1, 'order 7890?', options)).hits).toEqual([]);
    // 100 passages without them: 60 of 160 is under 40%.
    await indexMessages(
      store,
      's',
      1,
      Array.from({ length: 100 }, (_, offset) => message(60 + offset, `courier route ${offset}`)),
    );
    expect((await searchPassages(store, 's', 1, 'order 7890?', options)).hits).toHaveLength(2);
    await store.close();
  });
});

describe('index blocks', () => {
  const texts = ['parcel', 'courier', 'Lyon', 'Paris', 'refund', 'invoice', 'Monday', 'garden', 'flowerpot', 'key'];
  // Messages sharing words in varied combinations, so rankings have ties to break and long lists.
  const chat = (count: number) =>
    Array.from({ length: count }, (_, index) =>
      message(index, `${texts[index % 10]} ${texts[(index * 7) % 10]} ${texts[(index * 3 + 1) % 10]} note ${index % 13} item ${index}`),
    );
  const queries = ['parcel to Lyon?', 'refund invoice on Monday?', 'the key under the flowerpot?', 'note 7 about the courier?', 'item 12?'];
  const ranked = async (store: SessionStore, key: string, belowIndex: number) =>
    Promise.all(queries.map(async (query) => (await searchPassages(store, key, 1, query, { limit: 20, belowIndex, minCoverage: 0 })).hits));

  it('are written one a run; four of a tier merge into one, so a long session holds a few, and ranks as one index would', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const messages = chat(600);
    // 300 runs of two messages, against one run of all 600.
    let stats = EMPTY_STATS;
    for (let run = 0; run < 300; run++) stats = await indexMessages(store, 'runs', 1, messages.slice(run * 2, run * 2 + 2));
    const whole = await indexMessages(store, 'whole', 1, messages);
    expect(whole.blocks).toHaveLength(1);
    expect([stats.docs, stats.length, stats.indexedUpTo]).toEqual([whole.docs, whole.length, whole.indexedUpTo]);
    // Tiers of 32, 128, 512 passages: at most three blocks a tier (and one being added).
    expect(stats.blocks.length).toBeLessThanOrEqual(10);
    expect(stats.blocks.reduce((total, { docs }) => total + docs, 0)).toBe(600);
    const merged = await ranked(store, 'runs', 600);
    expect(merged.every((hits) => hits.length > 0)).toBe(true);
    expect(merged).toEqual(await ranked(store, 'whole', 600));
    await store.close();
  });

  it('merged away are deleted only once no run that read the older list can still be landing it', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const messages = chat(8);
    const start = 1_000_000;
    for (let run = 0; run < 3; run++) await indexMessages(store, 's', 1, [messages[run]!], start);
    const [three] = await store.readAux<IndexStats>('s', ['x1']);
    const first = three!.blocks.map(({ name }) => name);
    const before = await ranked(store, 's', 3);
    const merged = await indexMessages(store, 's', 1, [messages[3]!], start);
    expect(merged.blocks).toHaveLength(1);
    expect(merged.retired?.map(({ name }) => name)).toEqual(first);
    // A run on another instance that read the three-block list lands after the merge: its list still reads.
    await store.writeAux('s', [{ name: 'x1', value: three }]);
    expect(await ranked(store, 's', 3)).toEqual(before);
    expect(before.flat().length).toBeGreaterThan(0);
    expect((await store.readAux('s', first)).every((record) => record !== undefined)).toBe(true);
    await store.writeAux('s', [{ name: 'x1', value: merged }]);
    // Ten minutes on, the next run deletes them.
    await indexMessages(store, 's', 1, [messages[4]!], start + 10 * 60_000);
    expect(await store.readAux('s', first)).toEqual([undefined, undefined, undefined]);
    await store.close();
  });

  it('racing runs (two instances, the same messages) leave stats that name each message once', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const messages = chat(6);
    await indexMessages(store, 's', 1, messages.slice(0, 4));
    const [before] = await store.readAux<IndexStats>('s', ['x1']);
    await indexMessages(store, 's', 1, messages.slice(4, 6));
    // The other instance read the stats before that run landed, and indexes the same two messages.
    const update = await addToIndex(
      store,
      's',
      1,
      before!,
      messages
        .slice(4, 6)
        .map(({ index, stored }) => passagesOf(stored, index))
        .flat(),
      0,
    );
    await store.writeAux('s', [...update.writes, { name: 'x1', value: { ...update.stats, indexedUpTo: 6 } }]);
    await indexMessages(store, 'whole', 1, messages);
    expect(await ranked(store, 's', 6)).toEqual(await ranked(store, 'whole', 6));
    await store.close();
  });

  it('find words that name properties of every JavaScript object, and only where they were said', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    await indexMessages(store, 's', 1, [message(0, 'the parcel left Lyon'), message(1, 'my constructor job starts Monday')]);
    const search = async (query: string) =>
      (await searchPassages(store, 's', 1, query, { limit: 5, belowIndex: 2, minCoverage: 0 })).hits.map((hit) => hit.doc);
    expect(await search('which constructor?')).toEqual([docOf(1, 0)]);
    expect(await search('hasOwnProperty toString?')).toEqual([]);
    await store.close();
  });

  it('go to a JSON store packed in three strings, and read back as they were built', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mnemo-blocks-')), 'blocks.db');
    const sqlite = await createStore({ url: `sqlite://${file}`, timeoutMs: 5_000 });
    const memory = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    // Questions weigh half: fractional term frequencies must survive the trip too.
    const messages = [...chat(40), message(40, 'Where did the parcel go? Lyon or Paris?')];
    const [stored, built] = await Promise.all(
      [sqlite, memory].map(async (store) => {
        const stats = await indexMessages(store, 's', 1, messages);
        return (await store.readAux<Block | PackedBlock>('s', [stats.blocks[0]!.name]))[0]!;
      }),
    );
    expect(Object.values(stored!).map((value) => typeof value)).toEqual(['string', 'string', 'string']);
    expect(built).toBeInstanceOf(Block);
    const read = readBlock(stored!);
    expect([read.terms, read.meta, read.postings, read.bytes]).toEqual([
      (built as Block).terms,
      (built as Block).meta,
      (built as Block).postings,
      (built as Block).bytes,
    ]);
    // A question's words weigh half (see informationWeight): a term only the question holds, once, has
    // a highest tf of one half (kept in halves: maxTf is every fifth number from the second).
    expect(read.meta.some((value, at) => at % 5 === 1 && value === 1)).toBe(true);
    await Promise.all([sqlite.close(), memory.close()]);
  });

  it('are read once, then served from memory', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const reads: string[][] = [];
    const counting: SessionStore = Object.assign(Object.create(store), {
      readAux: (key: string, names: string[]) => {
        reads.push(names);
        return store.readAux(key, names);
      },
    });
    const messages = chat(3);
    for (const entry of messages) await indexMessages(store, 's', 1, [entry]);
    const stats = (await store.readAux<IndexStats>('s', ['x1']))[0]!;
    // Blocks written by this process are decoded as they are built: a search reads only the stats.
    await ranked(counting, 's', 3);
    expect(reads.flat()).toEqual(queries.map(() => 'x1'));
    expect(stats.blocks).toHaveLength(3);
  });
});

describe('passages', () => {
  it('are indexed one line at a time, so a hit names the line that matches', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const text = [
      'Jon: I lost my job as a banker yesterday, so I am starting my own business.',
      'Jon: Also the weather here has been lovely and sunny all week long.',
    ].join('\n');
    const stats = await indexMessages(store, 's', 1, [message(3, text)]);
    expect(stats.docs).toBe(2);
    const { hits } = await searchPassages(store, 's', 1, 'Which job did Jon lose?', { limit: 5, belowIndex: 4, minCoverage: 0.3 });
    expect(hits.map((hit) => hit.doc)).toEqual([docOf(3, 0)]);
    await store.close();
  });

  it('only searches below the window: passages of messages the prompt shows anyway are not recalled', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    await indexMessages(store, 's', 1, [message(0, 'the parcel went to Lyon'), message(5, 'the parcel went to Paris')]);
    const { hits } = await searchPassages(store, 's', 1, 'where did the parcel go?', { limit: 5, belowIndex: 5, minCoverage: 0 });
    expect(hits.map((hit) => hit.doc)).toEqual([docOf(0, 0)]);
    await store.close();
  });
});

describe('index runs', () => {
  it.each([
    ['without summaries', { enabled: false }],
    // Folds are due on most turns here: their jobs must not bring an index run along each time.
    ['while summaries fold often', { enabled: true, trigger_tokens: 80 }],
  ])('come once a window step of turns is committed, and index all that left the window (%s)', async (_, summary) => {
    const step = 150;
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const harness = await startHarness(
      { memory: { summary, window: { min_tokens: 60, step_tokens: step, cache_prefix_tokens: 0 } } },
      undefined,
      { store },
    );
    try {
      const runs = async () => {
        const text = await (await fetch(`${harness.mnemo.url}/metrics`)).text();
        return Number(/^mnemo_index_runs_total\{outcome="indexed"\} (\d+)/m.exec(text)?.[1] ?? 0);
      };
      const folds = async () => {
        const text = await (await fetch(`${harness.mnemo.url}/metrics`)).text();
        return Number(/^mnemo_folds_total\{outcome="folded"\} (\d+)/m.exec(text)?.[1] ?? 0);
      };
      const tokens = async () => {
        for await (const { meta } of store.listSessions('')) return meta.memory.tokens;
        return 0;
      };
      await (
        await harness.chat('batched', { messages: [user('The spare key is hidden under the blue flowerpot by the kitchen door.')] })
      ).text();
      await harness.mnemo.folds.drain();
      const first = await runs();
      const before = await tokens();
      for (let turn = 0; turn < 24; turn++) {
        await (
          await harness.chat('batched', { messages: [user(`Let us talk about the garden for a while, this is turn ${turn}.`)] })
        ).text();
        await harness.mnemo.folds.drain();
      }
      // One run each time the transcript passes a multiple of the step, several turns apart.
      const boundaries = Math.floor((await tokens()) / step) - Math.floor(before / step);
      expect(boundaries).toBeGreaterThanOrEqual(3);
      expect((await runs()) - first).toBe(boundaries);
      if (summary.enabled) expect(await folds()).toBeGreaterThanOrEqual(boundaries);
      await harness.chat('batched', { messages: [user('Where is the spare key hidden?')] });
      const messages: Array<{ role: string; content: string }> = harness.provider.lastChat.body.messages;
      // Out of the window, and back through recall.
      expect(messages.filter((entry) => entry.role === 'user' && entry.content.includes('blue flowerpot'))).toEqual([]);
      expect(messages.find((entry) => entry.content.startsWith('[mnemo recall]'))?.content).toContain('blue flowerpot');
    } finally {
      await harness.close();
    }
  });
});

describe('an index run', () => {
  it('that lands too late to trust the stats it read (a minute after) writes nothing, and the next run redoes it', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    let clock = 1_000_000;
    let slow = false;
    // A run reads the stats, then the messages: a slow read here makes the run late.
    const slowing: SessionStore = Object.assign(Object.create(store) as SessionStore, {
      readMessages: async (...args: Parameters<SessionStore['readMessages']>) => {
        if (slow) clock += LANDING_DEADLINE_MS + 1;
        return store.readMessages(...args);
      },
    });
    const harness = await startHarness(
      { memory: { summary: { enabled: false }, window: { min_tokens: 60, step_tokens: 150, cache_prefix_tokens: 0 } } },
      undefined,
      { store: slowing, now: () => clock },
    );
    try {
      const indexed = async () => {
        for await (const { sessionKey, meta } of store.listSessions('')) {
          const [stats] = await store.readAux<IndexStats>(sessionKey, [`x${meta.memory.recall.generation}`]);
          return stats?.indexedUpTo ?? 0;
        }
        return 0;
      };
      slow = true;
      await (
        await harness.chat('late', { messages: [user('The spare key is hidden under the blue flowerpot by the kitchen door.')] })
      ).text();
      await harness.mnemo.folds.drain();
      expect(await indexed()).toBe(0);
      slow = false;
      for (let turn = 0; turn < 8; turn++) {
        await (await harness.chat('late', { messages: [user(`Let us talk about the garden for a while, this is turn ${turn}.`)] })).text();
        await harness.mnemo.folds.drain();
      }
      expect(await indexed()).toBeGreaterThan(2);
    } finally {
      await harness.close();
    }
  });
});

describe('the recall trigger', () => {
  it('decides as scoring every query term would, though a statement skips the lists of its commonest terms', async () => {
    // Zipf-like draws from a small vocabulary, so some terms are in most passages and some in few.
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const vocabulary = Array.from({ length: 300 }, (_, rank) => `word${rank}x`);
    const text = (words: number) =>
      Array.from({ length: words }, () => vocabulary[Math.floor(vocabulary.length * random() ** 3)]).join(' ');
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const archive = Array.from({ length: 300 }, (_, index) => message(index, text(12 + (index % 20))));
    await indexMessages(store, 's', 1, archive);
    // New texts, near-repeats of archived ones (which reach a high trigger), and part-repeats
    // (which land on either side of it: where a bound too tight would decide wrongly).
    const part = (content: string, share: number) =>
      content
        .split(' ')
        .slice(0, Math.ceil(content.split(' ').length * share))
        .join(' ');
    const queries = [
      ...Array.from({ length: 40 }, () => text(15)),
      ...archive.slice(0, 40).map(({ stored }) => `${stored.message.content} ${text(2)}`),
      ...archive.slice(40, 120).map(({ stored }, index) => `${part(stored.message.content as string, 0.5 + (index % 5) / 10)} ${text(3)}`),
    ];
    let recalled = 0;
    const listsRead = { every: 0, statements: 0 };
    for (const [position, query] of queries.entries()) {
      // New texts: the statements of a chat, which recall nothing.
      const fresh = position < 40;
      for (const triggerCoverage of [0.2, 0.5, 0.9]) {
        const options = { limit: 20, belowIndex: 300, minCoverage: 0.1 };
        const full = await searchPassages(store, 's', 1, query, options);
        const every = full.hits;
        if (fresh && triggerCoverage === 0.9) listsRead.every += full.termsRead;
        const best = Math.max(0, ...every.map((hit) => hit.coverage));
        const search = await searchPassages(store, 's', 1, query, { ...options, triggerCoverage });
        const gated = search.hits;
        if (fresh && triggerCoverage === 0.9) listsRead.statements += search.termsRead;
        expect(gated).toEqual(best >= triggerCoverage ? every : []);
        if (triggerCoverage === 0.9 && gated.length > 0) recalled++;
      }
    }
    expect(listsRead.statements).toBeLessThan(0.5 * listsRead.every);
    // Both outcomes occur at the statement trigger.
    expect(recalled).toBeGreaterThan(0);
    expect(recalled).toBeLessThan(queries.length);
    await store.close();
  });
});

describe('posting lists', () => {
  it('of a run already indexed are not added twice', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    await indexMessages(store, 's', 1, [message(0, 'the parcel left Lyon on Monday')]);
    await indexMessages(store, 's', 1, [message(1, 'the parcel reached Paris on Tuesday')]);
    const again = await indexMessages(store, 's', 1, [message(1, 'the parcel reached Paris on Tuesday')]);
    expect([again.docs, again.blocks.length]).toEqual([2, 2]);
    const { hits } = await searchPassages(store, 's', 1, 'where is the parcel?', { limit: 10, belowIndex: 2, minCoverage: 0 });
    expect(hits.map((hit) => hit.doc)).toEqual([docOf(1, 0), docOf(0, 0)]);
    await store.close();
  });

  it("of a term in over 5% of the session's passages are scored for its 64 newest mentions only", async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    // 400 passages; "parcel" in 100 of them (25%: frequent, not common), indexed over many runs.
    const archive = Array.from({ length: 400 }, (_, index) =>
      message(index, index % 4 === 0 ? `parcel note ${index}` : `weather note ${index}`),
    );
    for (let run = 0; run < 40; run++) await indexMessages(store, 's', 1, archive.slice(run * 10, run * 10 + 10));
    const { hits } = await searchPassages(store, 's', 1, 'parcel?', { limit: 400, belowIndex: 400, minCoverage: 0 });
    expect(hits).toHaveLength(64);
    expect(Math.min(...hits.map((hit) => hit.doc))).toBe(docOf(400 - 64 * 4, 0));
    await store.close();
  });

  it('of an older mnemo (a record per term) are not read: the next run rebuilds the index from the first message, keeping the vectors', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const older = { docs: 1, length: 3, indexedUpTo: 1, embeddedUpTo: 1, segments: ['e1:0'], common: [] };
    await store.writeAux('s', [
      { name: 'x1', value: older },
      { name: 'p1:lyon', value: { df: 1, postings: [docOf(0, 0), 1, 5] } },
    ]);
    const search = async () =>
      (await searchPassages(store, 's', 1, 'Lyon?', { limit: 10, belowIndex: 2, minCoverage: 0 })).hits.map((hit) => hit.doc);
    expect(await search()).toEqual([]);
    const stats = await indexMessages(store, 's', 1, [message(0, 'the parcel left Lyon'), message(1, 'back in Lyon again')]);
    expect([stats.indexedUpTo, stats.embeddedUpTo, stats.segments]).toEqual([2, 1, ['e1:0']]);
    expect(await search()).toEqual([docOf(1, 0), docOf(0, 0)]);
    await store.close();
  });
});

describe('a cache-stable prompt', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      upstream: { prompt_cache_key: true },
      memory: { summary: { trigger_tokens: 400 }, window: { min_tokens: 150, step_tokens: 300, cache_prefix_tokens: 0 } },
    });
  });
  afterAll(() => harness.close());

  it('only grows at its end between window steps and folds, and sends prompt_cache_key', async () => {
    // The part of each prompt before the per-request blocks: instructions, memory block, window.
    const stable: string[][] = [];
    for (let turn = 0; turn < 40; turn++) {
      await (
        await harness.chat('prefix-1', {
          messages: [system('You are a support bot.'), user(`Question ${turn} about parcel ${4000 + turn} and its route.`)],
        })
      ).text();
      await harness.mnemo.folds.drain();
      const body = harness.provider.lastChat.body;
      expect(body.prompt_cache_key).toMatch(/^mnemo-[\w-]{24}$/);
      const messages = body.messages
        .slice(0, -1)
        .filter((message: { content: string }) => !/^\[mnemo (recall|context)\]/.test(message.content));
      stable.push(messages.map((message: unknown) => JSON.stringify(message)));
    }
    const breaks = stable.slice(1).filter((prompt, turn) => stable[turn]!.some((message, position) => prompt[position] !== message));
    // ~40 turns of ~70 tokens are ~2,800 tokens: about 9 window steps of 300 and a few folds.
    expect(breaks.length).toBeGreaterThan(0);
    expect(breaks.length).toBeLessThanOrEqual(14);
  });
});

describe('recall by embeddings', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      memory: {
        summary: { trigger_tokens: 300 },
        window: { min_tokens: 150, step_tokens: 150, cache_prefix_tokens: 0 },
        recall: { method: 'embeddings', embeddings: { min_similarity: 0.3 } },
      },
    });
    harness.provider.summaryReply = async (call, res) => {
      const { completion, json } = await import('../support/fake-provider.js');
      return json(completion({ content: 'The user chatted about several topics.' }))(call, res);
    };
    const filler = ['weather in spring', 'favourite books', 'music for running', 'coffee brewing', 'garden tools', 'board games'];
    await harness.chat('embed-1', { messages: [user('The spare key is hidden under the blue flowerpot by the kitchen door.')] });
    await (await harness.chat('embed-1', { messages: [user('Could you remind me to water the tomatoes on Sunday?')] })).text();
    for (let turn = 0; turn < 20; turn++) {
      await (
        await harness.chat('embed-1', { messages: [user(`Let us talk about ${filler[turn % filler.length]} for a while, turn ${turn}.`)] })
      ).text();
      await harness.mnemo.folds.drain();
    }
  }, 60_000);
  afterAll(() => harness.close());

  it('embeds archived turns at fold time and the new message per request, through /v1/embeddings', async () => {
    const before = harness.provider.calls.filter((call) => call.path.endsWith('/embeddings')).length;
    expect(before).toBeGreaterThan(0);
    await harness.chat('embed-1', { messages: [user('Where is the spare key hidden?')] });
    const embeddingCalls = harness.provider.calls.filter((call) => call.path.endsWith('/embeddings'));
    expect(embeddingCalls.length).toBe(before + 1);
    expect(embeddingCalls.at(-1)!.body).toMatchObject({
      model: 'text-embedding-3-small',
      dimensions: 256,
      input: ['Where is the spare key hidden?'],
    });
    const recall = harness.provider.lastChat.body.messages.find((message: { content: string }) =>
      message.content.startsWith('[mnemo recall]'),
    );
    expect(recall.content).toContain('blue flowerpot');
  });

  it('embeds what was said, not what was asked: a question sits nearest other questions, not its answer', () => {
    const archived = harness.provider.calls
      .filter((call) => call.path.endsWith('/embeddings') && call.body.input.length > 1)
      .flatMap((call) => call.body.input as string[]);
    expect(archived.some((text) => text.includes('blue flowerpot'))).toBe(true);
    expect(archived.some((text) => text.includes('water the tomatoes'))).toBe(false);
  });

  it('counts index runs and the embedding tokens they spend in /metrics', async () => {
    const text = await (await fetch(`${harness.mnemo.url}/metrics`)).text();
    expect(Number(/^mnemo_index_runs_total\{outcome="indexed"\} (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^mnemo_indexed_messages_total (\d+)/m.exec(text)?.[1])).toBeGreaterThan(20);
    expect(Number(/^mnemo_side_tokens_total\{[^}]*purpose="embedding"[^}]*\} (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it('falls back to bm25 when the embeddings call fails', async () => {
    const { json } = await import('../support/fake-provider.js');
    // The next scripted reply answers the request-path embeddings call with a 500.
    harness.provider.next(json({ error: { message: 'down', type: 'server_error', param: null, code: null } }, 500));
    const response = await fetch(`${harness.mnemo.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': 'embed-1', authorization: 'Bearer sk-test' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [user('spare key flowerpot?')] }),
    });
    expect(response.status).toBe(200);
    const recall = harness.provider.lastChat.body.messages.find((message: { content: string }) =>
      message.content.startsWith('[mnemo recall]'),
    );
    expect(recall.content).toContain('blue flowerpot');
  });
});

describe('repeats', () => {
  const hit = (doc: number, text: string) => ({
    passage: {
      doc,
      index: doc,
      text,
      stored: { id: `m${doc}`, tokens: 10, hash: `h${doc}`, at: 0, message: { role: 'user', content: text } },
    },
    neighbours: [],
  });

  it('keep the best of passages that say the same thing, and everything that says something else', () => {
    const kept = withoutRepeats([
      hit(9, 'Any news on my refund for order 7890? Please check.'),
      hit(5, 'Any news on my refund for order 7890? Please check!'),
      hit(3, 'The courier left the parcel with the neighbour at number 12.'),
    ]);
    expect(kept.map((entry) => entry.passage.doc)).toEqual([9, 3]);
  });
});

describe('hybrid recall', () => {
  let harness: Harness;
  const recallBlock = () =>
    harness.provider.lastChat.body.messages.find((message: { content: string }) => message.content.startsWith('[mnemo recall]'))?.content ??
    '';
  /** Says `lines` (one passage each) as one user message with a scripted reply, then enough small talk to push it out of the window. */
  const archive = async (session: string, lines: string[], reply: string) => {
    const { completion, json } = await import('../support/fake-provider.js');
    harness.provider.next(json(completion({ content: reply })));
    await (await harness.chat(session, { messages: [user(lines.join('\n'))] })).text();
    const filler = ['weather in spring', 'favourite books', 'music for running', 'coffee brewing', 'garden tools', 'board games'];
    for (let turn = 0; turn < 24; turn++) {
      await (await harness.chat(session, { messages: [user(`Let us talk about ${filler[turn % filler.length]}, turn ${turn}.`)] })).text();
      await harness.mnemo.folds.drain();
    }
  };

  describe.each([
    ['hybrid', true],
    ['bm25', false],
  ] as const)('with method %s', (method, filters) => {
    beforeAll(async () => {
      harness = await startHarness({
        memory: {
          summary: { trigger_tokens: 300 },
          window: { min_tokens: 150, step_tokens: 150, cache_prefix_tokens: 0 },
          recall: { method, neighbours: 1, min_hits: 0, embeddings: { batch_messages: 2 } },
        },
      });
      await archive(
        `nb-${method}`,
        ['The spare key is hidden under the blue flowerpot by the kitchen door.', 'Harbour sunsets were lovely yesterday evening.'],
        'Noted.',
      );
      await archive(`qa-${method}`, ['Where did I leave my passport?'], 'Inside the top drawer of the oak desk.');
    }, 60_000);
    afterAll(() => harness.close());

    it(`${filters ? 'leaves out' : 'brings'} a neighbour that shares nothing with the question`, async () => {
      await harness.chat(`nb-${method}`, { messages: [user('Where is the spare key hidden?')] });
      expect(recallBlock()).toContain('blue flowerpot');
      expect(recallBlock().includes('Harbour sunsets')).toBe(!filters);
    });

    it('always brings the reply to a recalled question, however unlike the new message it is', async () => {
      await harness.chat(`qa-${method}`, { messages: [user('My passport, where was it again?')] });
      expect(recallBlock()).toContain('Where did I leave my passport?');
      expect(recallBlock()).toContain('top drawer of the oak desk');
    });
  });

  it("decodes a session's vector segments once: later turns score them from the index cache, not the store", async () => {
    const store = new FaultyStore(await createStore({ url: 'memory://', timeoutMs: 2_000 }));
    const readAux = store.readAux;
    const segmentReads: string[] = [];
    store.readAux = (key, names) => {
      segmentReads.push(...names.filter((name) => /^e\d+:/.test(name)));
      return readAux(key, names);
    };
    harness = await startHarness(
      {
        memory: {
          summary: { trigger_tokens: 300 },
          window: { min_tokens: 150, step_tokens: 150, cache_prefix_tokens: 0 },
          recall: { method: 'hybrid', neighbours: 0, embeddings: { batch_messages: 2 } },
        },
      },
      undefined,
      { store },
    );
    try {
      await archive('segments', ['The spare key is hidden under the blue flowerpot by the kitchen door.'], 'Noted.');
      await harness.chat('segments', { messages: [user('Where is the spare key hidden?')] });
      expect(recallBlock()).toContain('blue flowerpot');
      expect(segmentReads.length).toBeGreaterThan(0);
      segmentReads.length = 0;
      await harness.chat('segments', { messages: [user('The spare key, under which flowerpot was it?')] });
      expect(recallBlock()).toContain('blue flowerpot');
      expect(segmentReads).toEqual([]);
    } finally {
      await harness.close();
    }
  }, 60_000);

  it('considers min_hits passages of the fused ranking when few share the words of the new message', async () => {
    harness = await startHarness({
      memory: {
        summary: { trigger_tokens: 300 },
        window: { min_tokens: 150, step_tokens: 150, cache_prefix_tokens: 0 },
        recall: { method: 'hybrid', neighbours: 0, min_hits: 6, embeddings: { batch_messages: 2 } },
      },
    });
    try {
      // The second line shares only words the lexical index drops (stopwords) with the question;
      // the test provider's embeddings are bags of words, stopwords included, so only they find it.
      await archive(
        'min-hits',
        ['The parcel went to the depot in town on Friday morning.', 'You were there with them all along, every single day.'],
        'Noted.',
      );
      await harness.chat('min-hits', { messages: [user('Where were you with them and the parcel?')] });
      expect(recallBlock()).toContain('parcel went to the depot in town');
      expect(recallBlock()).toContain('You were there with them all along, every single day.');
    } finally {
      await harness.close();
    }
  }, 60_000);
});
