import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FACT_EXTRACTORS, PLANTED, questionAt, userMessage } from '../support/conversation.js';
import { startHarness, system, type Harness } from '../support/harness.js';

const TURNS = 420;
const PROMPT_BUDGET = 6_000;

describe(`a ${TURNS}-turn conversation from a stateless client`, () => {
  let harness: Harness;
  const turns: Array<{ baseline: number; sent: number; body: string; asked?: string }> = [];

  beforeAll(async () => {
    harness = await startHarness({ memory: { budget: { prompt_tokens: PROMPT_BUDGET }, facts: { extractors: FACT_EXTRACTORS } } });
    for (let turn = 0; turn < TURNS; turn++) {
      const response = await harness.chat('long-1', {
        messages: [system('You are a support bot.'), { role: 'user', content: userMessage(turn, TURNS) }],
      });
      expect(response.status).toBe(200);
      await response.text();
      turns.push({
        baseline: Number(response.headers.get('x-mnemo-tokens-baseline')),
        sent: Number(response.headers.get('x-mnemo-tokens-sent')),
        body: JSON.stringify(harness.provider.lastChat.body.messages),
        asked: questionAt(turn, TURNS)?.expected,
      });
      // Let the background fold (if one started) land, so the run is deterministic.
      await harness.mnemo.folds.drain();
    }
  }, 120_000);
  afterAll(() => harness.close());

  it('keeps every prompt within the budget', () => {
    const overhead = 100; // the system prompt, the new message and framing come on top of the budget
    for (const turn of turns) expect(turn.sent).toBeLessThanOrEqual(PROMPT_BUDGET + overhead);
  });

  it('sends at most half the baseline over the last 100 turns', () => {
    const last = turns.slice(-100);
    const sent = last.reduce((total, turn) => total + turn.sent, 0);
    const baseline = last.reduce((total, turn) => total + turn.baseline, 0);
    expect(sent / baseline).toBeLessThanOrEqual(0.5);
  });

  it('summarized in large steps, not every turn', () => {
    const folds = harness.provider.summaryCalls.length;
    expect(folds).toBeGreaterThan(3);
    expect(folds).toBeLessThan(TURNS / 10);
  });

  it.each(PLANTED.map((fact) => [fact.expected, fact]))('gets %s to the provider when asked about it late', (_expected, fact) => {
    const asked = turns.find((turn) => turn.asked === fact.expected)!;
    expect(asked.body).toContain(fact.expected);
  });

  it('passes the seed scenario at turn 300: the order number is still sent', () => {
    expect(turns[300]!.body).toContain('order_id: 7890');
  });
});
