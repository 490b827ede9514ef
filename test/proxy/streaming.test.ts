import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunk, sse, streamParts } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';

describe('streaming through mnemo', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());

  const sessionMessages = async (id: string) => {
    const response = await harness.admin(`/mnemo/sessions/${id}`);
    return response.status === 404 ? [] : (await response.json()).messages;
  };

  it('forwards the first chunk before the provider sends the rest (no buffering)', async () => {
    const provider = streamParts([
      { data: sse([chunk({ role: 'assistant', content: 'first' })]) },
      { delayMs: 500, data: sse([chunk({ content: ' second' }), chunk({}, 'stop'), '[DONE]']) },
    ]);
    harness.provider.next(provider);
    const response = await harness.chat('stream-1', { stream: true, messages: [user('go')] });
    const reader = response.body!.getReader();
    const first = await reader.read();
    // Ordering, not timing: the client holds the first chunk while the provider is still waiting.
    expect(new TextDecoder().decode(first.value)).toContain('"first"');
    expect(provider.partsSent).toBe(1);
    let rest = '';
    for (let part = await reader.read(); !part.done; part = await reader.read()) rest += new TextDecoder().decode(part.value);
    expect(provider.partsSent).toBe(2);
    expect(rest).toContain('[DONE]');
    expect((await sessionMessages('stream-1')).map((message: { content: string }) => message.content)).toEqual(['go', 'first second']);
  });

  it('aborts the provider call when the client disconnects, and commits nothing', async () => {
    harness.provider.next(
      streamParts([
        { data: sse([chunk({ role: 'assistant', content: 'partial' })]) },
        { delayMs: 2_000, data: sse([chunk({}, 'stop'), '[DONE]']) },
      ]),
    );
    const response = await harness.chat('stream-2', { stream: true, messages: [user('go')] });
    const reader = response.body!.getReader();
    await reader.read();
    const call = harness.provider.lastChat;
    await reader.cancel();
    await expect(
      Promise.race([call.aborted.then(() => 'aborted'), new Promise((resolve) => setTimeout(() => resolve('still open'), 1_500))]),
    ).resolves.toBe('aborted');
    expect(await sessionMessages('stream-2')).toEqual([]);
  });

  it('commits nothing for a stream that ends without finish_reason and [DONE]', async () => {
    harness.provider.next(streamParts([{ data: sse([chunk({ role: 'assistant', content: 'cut off' })]) }]));
    const response = await harness.chat('stream-3', { stream: true, messages: [user('go')] });
    await response.text();
    expect(await sessionMessages('stream-3')).toEqual([]);
  });

  it('rebuilds streamed tool calls from their deltas', async () => {
    harness.provider.next(
      streamParts([
        {
          data: sse([
            chunk({
              role: 'assistant',
              content: null,
              tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'lookup', arguments: '' } }],
            }),
            chunk({ tool_calls: [{ index: 0, function: { arguments: '{"order_id":' } }] }),
            chunk({ tool_calls: [{ index: 0, function: { arguments: '"7890"}' } }] }),
            chunk({}, 'tool_calls'),
            '[DONE]',
          ]),
        },
      ]),
    );
    await (await harness.chat('stream-4', { stream: true, messages: [user('where is 7890')] })).text();
    const [, reply] = await sessionMessages('stream-4');
    expect(reply.tool_calls).toEqual([{ id: 'call_9', type: 'function', function: { name: 'lookup', arguments: '{"order_id":"7890"}' } }]);
  });
});
