import { afterEach, describe, expect, it } from 'vitest';
import { completion, defaultReply, json, type ReceivedCall } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';

const memory = {
  summary: { trigger_tokens: 200, retry_base_ms: 50 },
  window: { min_tokens: 100, step_tokens: 100, cache_prefix_tokens: 0 },
};
const long = (turn: number) => `Turn ${turn}: here is a detailed message about parcel ${1000 + turn} and what happened to it on the way.`;

/** Background work starts after the response: wait (generously) until it got somewhere. */
async function eventually(check: () => boolean): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > 5_000) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function stored(harness: Harness, id: string) {
  return (await harness.admin(`/mnemo/sessions/${id}`)).json();
}

describe('background summary folds', () => {
  let harness: Harness;
  afterEach(() => harness.close());

  it('folds old turns into the summary after the response, and uses it', async () => {
    harness = await startHarness({ memory });
    for (let turn = 0; turn < 8; turn++) await (await harness.chat('fold-1', { messages: [user(long(turn))] })).text();
    await harness.mnemo.folds.drain();
    expect(harness.provider.summaryCalls.length).toBeGreaterThan(0);
    const summaryCall = harness.provider.summaryCalls[0]!;
    expect(summaryCall.body.model).toBe('gpt-4o-mini');
    expect(summaryCall.headers.authorization).toBe('Bearer sk-test');

    await harness.chat('fold-1', { messages: [user('and now?')] });
    const sent = harness.provider.lastChat.body.messages;
    expect(sent[0].role).toBe('system');
    expect(sent[0].content).toContain('Summary of earlier turns:');
    expect(sent[0].content).toContain('parcel 1000');
    // The folded turn is no longer sent as a message of its own.
    expect(sent.some((message: { content: string }) => message.content === long(0))).toBe(false);
    const session = await stored(harness, 'fold-1');
    expect(session.message_count).toBe(18);
  });

  it('never delays a response: a 5 s summarizer is still running when the turn has answered', async () => {
    harness = await startHarness({ memory });
    let summarizerStarted = 0;
    let summarizerFinished = 0;
    harness.provider.summaryReply = async (call: ReceivedCall, res) => {
      summarizerStarted++;
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      summarizerFinished++;
      return defaultReply(call, res);
    };
    for (let turn = 0; turn < 6; turn++) await (await harness.chat('fold-2', { messages: [user(long(turn))] })).text();
    await eventually(() => summarizerStarted === 1);
    // Turns keep being answered while the summary call is outstanding.
    const response = await harness.chat('fold-2', { messages: [user('still there?')] });
    expect(response.status).toBe(200);
    await response.text();
    expect(summarizerFinished).toBe(0);
    expect(summarizerStarted).toBe(1); // at most one fold per session at a time
    await harness.mnemo.folds.drain();
    expect(summarizerFinished).toBe(1);
  }, 20_000);

  it('loses nothing when the summarizer fails, and retries later with backoff', async () => {
    harness = await startHarness({ memory });
    harness.provider.summaryReply = json({ error: { message: 'overloaded', type: 'server_error', param: null, code: null } }, 503);
    for (let turn = 0; turn < 6; turn++) await (await harness.chat('fold-3', { messages: [user(long(turn))] })).text();
    await harness.mnemo.folds.drain();
    const failures = harness.provider.summaryCalls.length;
    expect(failures).toBeGreaterThan(0);
    const session = await stored(harness, 'fold-3');
    expect(session.message_count).toBe(12);

    // Nothing was folded: no summary, and every turn is still there for recall.
    expect(session.summary).toBeNull();
    await harness.chat('fold-3', { messages: [user('What happened to parcel 1000?')] });
    expect(JSON.stringify(harness.provider.lastChat.body.messages)).toContain('Turn 0:');

    // After the backoff, a working summarizer folds.
    harness.provider.summaryReply = (call, res) => defaultReply(call, res);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await (await harness.chat('fold-3', { messages: [user('once more')] })).text();
    await harness.mnemo.folds.drain();
    await harness.chat('fold-3', { messages: [user('and now?')] });
    expect(harness.provider.lastChat.body.messages[0].content).toContain('Summary of earlier turns:');
  });

  it('keeps turns that arrive while a fold runs', async () => {
    harness = await startHarness({ memory });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    harness.provider.summaryReply = async (call, res) => {
      await gate;
      return json(completion({ content: 'Summary: parcels 1000-1005 discussed.' }))(call, res);
    };
    for (let turn = 0; turn < 6; turn++) await (await harness.chat('fold-4', { messages: [user(long(turn))] })).text();
    await eventually(() => harness.provider.summaryCalls.length === 1);
    for (let turn = 6; turn < 9; turn++) await (await harness.chat('fold-4', { messages: [user(`during the fold ${turn}`)] })).text();
    release();
    await harness.mnemo.folds.drain();
    const session = await stored(harness, 'fold-4');
    expect(session.message_count).toBe(18);
    expect(session.messages.filter((message: { content: string }) => message.content.startsWith('during the fold'))).toHaveLength(3);
    await harness.chat('fold-4', { messages: [user('after')] });
    const sent = JSON.stringify(harness.provider.lastChat.body.messages);
    expect(sent).toContain('Summary: parcels 1000-1005 discussed.');
    expect(sent).toContain('during the fold 8');
  });

  it('records summarizer token usage on the session', async () => {
    harness = await startHarness({ memory });
    for (let turn = 0; turn < 6; turn++) await (await harness.chat('fold-5', { messages: [user(long(turn))] })).text();
    await harness.mnemo.folds.drain();
    const session = await stored(harness, 'fold-5');
    expect(session.usage.side_input_tokens).toBeGreaterThan(0);
    expect(session.usage.side_output_tokens).toBeGreaterThan(0);
    expect(session.summary.text).toContain('parcel');
  });
});
