import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completion, json } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';

/** Keys the summarizer writes for a folded turn find it by words it never used (memory.recall.llm_keys). */
describe('turn keys written by the summarizer', () => {
  const said = "I've been on my own since the breakup last spring, and honestly it suits me.";
  const filler = ['the weather in spring', 'favourite books', 'music for running', 'coffee brewing', 'garden tools', 'board games'];

  const startWith = async (llmKeys: boolean): Promise<Harness> => {
    const harness = await startHarness({
      memory: {
        summary: { trigger_tokens: 300 },
        window: { min_tokens: 120, step_tokens: 120, cache_prefix_tokens: 0 },
        recall: { llm_keys: llmKeys },
      },
    });
    harness.provider.summaryReply = async (call, res) => {
      // The summarizer numbers the turns; the stand-in answers with keys for the one that says it.
      const turns = String(call.body.messages[1].content);
      const number = /\[(\d+)\] user: I've been on my own/.exec(turns)?.[1];
      const keys = number ? [{ turn: Number(number), keys: 'relationship status: single, not dating' }] : [];
      const content = llmKeys
        ? JSON.stringify({ summary: 'The user chatted about several topics.', keys: [...keys, { turn: 999, keys: 'nothing' }] })
        : 'The user chatted about several topics.';
      return json(completion({ content }))(call, res);
    };
    await (await harness.chat('keys-1', { messages: [user(said)] })).text();
    for (let turn = 0; turn < 16; turn++) {
      await (
        await harness.chat('keys-1', { messages: [user(`Let us talk about ${filler[turn % filler.length]} for a while, turn ${turn}.`)] })
      ).text();
      await harness.mnemo.folds.drain();
    }
    return harness;
  };

  describe('with llm_keys on', () => {
    let harness: Harness;
    beforeAll(async () => {
      harness = await startWith(true);
    }, 60_000);
    afterAll(() => harness.close());

    it('asks for them in the summary call: numbered turns and a strict schema with keys', () => {
      const call = harness.provider.summaryCalls[0]!;
      expect(call.body.response_format.json_schema.schema.required).toEqual(['summary', 'keys']);
      expect(call.body.messages[1].content).toMatch(/\[1\] user: /);
    });

    it('recalls the turn for a question in other words, showing what was said', async () => {
      await (await harness.chat('keys-1', { messages: [user('What is my relationship status?')] })).text();
      const recall = harness.provider.lastChat.body.messages.find((message: { content: string }) =>
        message.content.startsWith('[mnemo recall]'),
      );
      expect(recall?.content).toContain('on my own since the breakup');
      expect(recall?.content).not.toContain('relationship status: single');
    });
  });

  describe('with llm_keys off (the default)', () => {
    let harness: Harness;
    beforeAll(async () => {
      harness = await startWith(false);
    }, 60_000);
    afterAll(() => harness.close());

    it('asks for a plain summary, and the same question finds nothing: no word of it was said', async () => {
      expect(harness.provider.summaryCalls[0]!.body.response_format).toBeUndefined();
      await (await harness.chat('keys-1', { messages: [user('What is my relationship status?')] })).text();
      const recall = harness.provider.lastChat.body.messages.find((message: { content: string }) =>
        message.content.startsWith('[mnemo recall]'),
      );
      expect(recall).toBeUndefined();
    });
  });
});
