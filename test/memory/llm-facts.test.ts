import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completion, json } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';

describe('facts extracted by the summarizer (memory.facts.llm)', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      memory: {
        summary: { trigger_tokens: 200 },
        window: { min_tokens: 100, step_tokens: 100, cache_prefix_tokens: 0 },
        facts: { llm: true },
      },
    });
    harness.provider.summaryReply = json(
      completion({
        content: JSON.stringify({
          summary: 'The user is moving house.',
          facts: [
            { name: 'new_city', value: 'Lyon' },
            { name: 'bad name!', value: 'x' },
          ],
        }),
      }),
    );
  });
  afterAll(() => harness.close());

  it('asks for a JSON-schema reply in the same call and keeps the facts it returns', async () => {
    for (let turn = 0; turn < 10; turn++) {
      await (
        await harness.chat('llm-facts', { messages: [user(`Turn ${turn}: we are moving to Lyon next month, lots of boxes to pack.`)] })
      ).text();
    }
    await harness.mnemo.folds.drain();
    const summaryCall = harness.provider.summaryCalls[0]!;
    expect(summaryCall.body.response_format).toMatchObject({ type: 'json_schema', json_schema: { strict: true } });
    const session = await (await harness.admin(`/mnemo/sessions/llm-facts`)).json();
    expect(session.summary.text).toBe('The user is moving house.');
    expect(session.facts.map((fact: { name: string; value: string }) => `${fact.name}=${fact.value}`)).toEqual(['new_city=Lyon']);
    await harness.chat('llm-facts', { messages: [user('which city again?')] });
    expect(harness.provider.lastChat.body.messages[0].content).toContain('new_city: Lyon');
  });
});
