import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commonTerms, indexArchived, searchArchive, terms } from '../../src/memory/recall.js';
import { emptyMemory } from '../../src/memory/state.js';
import { createStore } from '../../src/store/factory.js';
import type { SessionMeta, SessionStore } from '../../src/store/types.js';
import { startHarness, system, user, type Harness } from '../support/harness.js';

describe('recall of archived turns', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ memory: { summary: { trigger_tokens: 300 }, window: { keep_tokens: 150 } } });
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
    expect(recall.content).toMatch(/\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\] user: The spare key is hidden under the blue flowerpot/);
    // Late in the prompt: right before the new message, after the cache-stable prefix.
    expect(messages.indexOf(recall)).toBe(messages.length - 2);
  });

  it('adds nothing when the new message is unrelated', async () => {
    await harness.chat('recall-1', { messages: [user('Quantum chromodynamics?')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).not.toContain('[mnemo recall]');
  });

  it('tokenizes words and numbers, dropping stopwords', () => {
    expect(terms("What's the status of order #7890, Zoë?")).toEqual(['status', 'order', '7890', 'zoë']);
  });
});

describe('terms in nearly every archived message', () => {
  const archive = (count: number) =>
    Array.from({ length: count }, (_, index) => ({
      index,
      stored: {
        id: `m${index}`,
        tokens: 9,
        hash: `h${index}`,
        at: index,
        message: {
          role: 'user',
          content: index === 17 ? 'Order 7890: the courier left it with the neighbour' : `Order 7890 update number ${index}`,
        },
      },
    }));

  it('become common once there are 50 archived messages, and stop being common when they thin out', () => {
    expect(commonTerms(undefined, [['7890', 40]], 40)).toBeUndefined(); // too few messages to judge
    expect(
      commonTerms(
        undefined,
        [
          ['7890', 60],
          ['order', 59],
          ['courier', 1],
        ],
        60,
      ),
    ).toEqual([
      ['7890', 60],
      ['order', 59],
    ]);
    // Later folds archive messages without "order": its share falls below 90% and it is searched again.
    expect(
      commonTerms(
        [
          ['7890', 60],
          ['order', 59],
        ],
        [['7890', 100]],
        100,
      ),
    ).toEqual([['7890', 100]]);
  });

  it('are not read or scored by a search, which still finds the message the distinctive words point to', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    const read: string[] = [];
    const counting: SessionStore = Object.assign(Object.create(store), {
      readAux: (key: string, names: string[]) => {
        read.push(...names);
        return store.readAux(key, names);
      },
    });
    const stats = await indexArchived(store, 't:common', archive(60));
    const recall = { docs: stats.docs, length: stats.length, common: commonTerms(undefined, stats.frequencies, stats.docs) };
    expect(recall.common?.map(([term]) => term)).toEqual(['7890', 'order', 'number', 'update']);
    const meta: SessionMeta = { version: 1, count: 60, createdAt: 0, updatedAt: 0, memory: { ...emptyMemory(), recall } };
    const options = { topK: 2, minScore: 1, archivedUpTo: 60 };

    const hits = await searchArchive(counting, 't:common', meta, 'Did the courier leave order 7890 with a neighbour?', options);
    expect(hits[0]?.index).toBe(17);
    expect(read).toEqual(['t:courier', 't:leave', 't:neighbour']);
    // A query made only of common terms recalls nothing, as BM25 would rank nothing over min_score.
    read.length = 0;
    expect(await searchArchive(counting, 't:common', meta, 'order 7890?', options)).toEqual([]);
    expect(read).toEqual([]);
    await store.close();
  });
});

describe('term records', () => {
  it('are stored flat, and records written nested by earlier versions still search and are rewritten flat', async () => {
    const store = await createStore({ url: 'memory://', timeoutMs: 1_000 });
    await store.writeAux('t:legacy', [
      {
        name: 't:parcel',
        value: {
          df: 2,
          postings: [
            [0, 1, 5],
            [3, 2, 6],
          ],
        },
      },
    ]);
    const meta: SessionMeta = {
      version: 1,
      count: 10,
      createdAt: 0,
      updatedAt: 0,
      memory: { ...emptyMemory(), recall: { docs: 10, length: 60 } },
    };
    const hits = await searchArchive(store, 't:legacy', meta, 'parcel?', { topK: 1, minScore: 0, archivedUpTo: 10 });
    expect(hits.map((hit) => hit.index)).toEqual([3]);

    const stored = { id: 'm7', tokens: 3, hash: 'h7', at: 7, message: { role: 'user', content: 'parcel parcel' } };
    const stats = await indexArchived(store, 't:legacy', [{ index: 7, stored }]);
    expect(stats.frequencies).toEqual([['parcel', 3]]);
    expect(await store.readAux('t:legacy', ['t:parcel'])).toEqual([{ df: 3, postings: [0, 1, 5, 3, 2, 6, 7, 2, 2] }]);
    await store.close();
  });
});

describe('a stable prompt prefix between folds', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ memory: { summary: { trigger_tokens: 400 }, window: { keep_tokens: 100 } } });
  });
  afterAll(() => harness.close());

  it('keeps instructions + memory block byte-identical until the next fold, and sends prompt_cache_key', async () => {
    const prefixes: string[] = [];
    const folds: number[] = [];
    for (let turn = 0; turn < 30; turn++) {
      await (
        await harness.chat('prefix-1', {
          messages: [system('You are a support bot.'), user(`Question ${turn} about parcel ${4000 + turn} and its route.`)],
        })
      ).text();
      await harness.mnemo.folds.drain();
      const body = harness.provider.lastChat.body;
      expect(body.prompt_cache_key).toMatch(/^mnemo-[\w-]{24}$/);
      prefixes.push(JSON.stringify(body.messages.slice(0, 2)));
      folds.push(harness.provider.summaryCalls.length);
    }
    // The prefix changes only on turns right after a fold landed.
    for (let turn = 1; turn < prefixes.length; turn++) {
      if (folds[turn - 1] === folds[turn - 2]) expect(prefixes[turn], `turn ${turn}`).toBe(prefixes[turn - 1]);
    }
    const distinct = new Set(prefixes).size;
    expect(distinct).toBeLessThan(prefixes.length / 3);
  });
});

describe('recall by embeddings', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      memory: {
        summary: { trigger_tokens: 300 },
        window: { keep_tokens: 150 },
        recall: { method: 'embeddings', embeddings: { min_similarity: 0.3 } },
      },
    });
    harness.provider.summaryReply = async (call, res) => {
      const { completion, json } = await import('../support/fake-provider.js');
      return json(completion({ content: 'The user chatted about several topics.' }))(call, res);
    };
    const filler = ['weather in spring', 'favourite books', 'music for running', 'coffee brewing', 'garden tools', 'board games'];
    await harness.chat('embed-1', { messages: [user('The spare key is hidden under the blue flowerpot by the kitchen door.')] });
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
