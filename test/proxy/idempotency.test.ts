import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, user, type Harness } from '../support/harness.js';

describe('Idempotency-Key', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());

  const turns = async (id: string) => (await (await harness.admin(`/mnemo/sessions/${id}`)).json()).message_count;

  it('answers a retry of a completed request with the stored answer, without calling the provider or recording twice', async () => {
    const first = await harness.chat('idem-1', { messages: [user('Where is order 7890?')] }, { 'idempotency-key': 'req-1' });
    const firstBody = await first.text();
    const calls = harness.provider.calls.length;
    const retry = await harness.chat('idem-1', { messages: [user('Where is order 7890?')] }, { 'idempotency-key': 'req-1' });
    expect(retry.status).toBe(200);
    expect(retry.headers.get('x-mnemo-idempotent-replay')).toBe('true');
    expect(await retry.text()).toBe(firstBody);
    expect(harness.provider.calls.length).toBe(calls);
    expect(await turns('idem-1')).toBe(2);
  });

  it('replays a streamed answer as the same event stream', async () => {
    const first = await (
      await harness.chat('idem-2', { stream: true, messages: [user('stream it')] }, { 'idempotency-key': 'req-2' })
    ).text();
    const retry = await harness.chat('idem-2', { stream: true, messages: [user('stream it')] }, { 'idempotency-key': 'req-2' });
    expect(retry.headers.get('content-type')).toBe('text/event-stream');
    expect(await retry.text()).toBe(first);
    expect(await turns('idem-2')).toBe(2);
  });

  it('records a turn once when retries race the first attempt', async () => {
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => harness.chat('idem-3', { messages: [user('only once please')] }, { 'idempotency-key': 'req-3' })),
    );
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await turns('idem-3')).toBe(2);
    // A new key is a new turn.
    await harness.chat('idem-3', { messages: [user('only once please')] }, { 'idempotency-key': 'req-4' });
    expect(await turns('idem-3')).toBe(4);
  });

  it('rejects a malformed key', async () => {
    const response = await harness.chat('idem-4', { messages: [user('x')] }, { 'idempotency-key': 'x'.repeat(300) });
    expect(response.status).toBe(400);
    expect((await response.json()).error.code).toBe('invalid_idempotency_key');
  });
});
