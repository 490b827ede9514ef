import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { outputCall, outputMessage, respond } from '../support/fake-provider.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('the Responses API through mnemo, with the official openai client', () => {
  let harness: Harness;
  let client: OpenAI;
  const session = (id: string) => ({ headers: { 'X-Session-Id': id } });
  const stored = async (id: string) =>
    (await (await harness.admin(`/mnemo/sessions/${id}`)).json()) as { messages: any[]; version: number };
  const sentText = () => JSON.stringify(harness.provider.lastResponse.body.input);

  beforeAll(async () => {
    harness = await startHarness();
    client = new OpenAI({ apiKey: 'sk-test', baseURL: harness.baseURL, maxRetries: 0 });
  });
  beforeEach(() => harness.provider.reset());
  afterAll(() => harness.close());

  it('passes the seed scenario: turn 2, sent alone, still knows the order', async () => {
    const first = await client.responses.create(
      { model: 'gpt-4o-mini', input: 'My order #7890 is stuck, can you help?' },
      session('r-seed'),
    );
    expect(first.output_text).toBe('Reply to: My order #7890 is stuck, can you help?');
    const second = await client.responses
      .create({ model: 'gpt-4o-mini', input: "What's the estimated delivery date?" }, session('r-seed'))
      .withResponse();
    expect(second.response.headers.get('x-mnemo-memory')).toBe('hit');
    expect(harness.provider.lastResponse.body.input).toEqual([
      { type: 'message', role: 'user', content: 'My order #7890 is stuck, can you help?' },
      { type: 'message', role: 'assistant', content: 'Reply to: My order #7890 is stuck, can you help?' },
      { type: 'message', role: 'user', content: "What's the estimated delivery date?" },
    ]);
    expect(harness.provider.rejected).toEqual([]);
  });

  it('keeps instructions as instructions: forwarded every turn, never stored', async () => {
    await client.responses.create({ model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'hello' }, session('r-instr'));
    await client.responses.create({ model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'again' }, session('r-instr'));
    expect(harness.provider.lastResponse.body.instructions).toBe('Be brief.');
    expect(sentText()).not.toContain('Be brief.');
    expect((await stored('r-instr')).messages.map((message) => message.content)).toEqual([
      'hello',
      'Reply to: hello',
      'again',
      'Reply to: again',
    ]);
  });

  it('relays a stream untouched and commits it on response.completed', async () => {
    const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'stream me a story', stream: true }, session('r-stream'));
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(types.at(-1)).toBe('response.completed');
    expect(text).toBe('Reply to: stream me a story');
    await client.responses.create({ model: 'gpt-4o-mini', input: 'and then?' }, session('r-stream'));
    expect(sentText()).toContain('Reply to: stream me a story');
  });

  it('commits nothing for a failed or incomplete response', async () => {
    harness.provider.next(respond(() => [outputMessage('partial')], 'incomplete'));
    await client.responses.create({ model: 'gpt-4o-mini', input: 'will be cut off' }, session('r-incomplete'));
    expect((await harness.admin('/mnemo/sessions/r-incomplete')).status).toBe(404);
    harness.provider.next(respond(() => [], 'failed'));
    const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'will fail', stream: true }, session('r-incomplete'));
    for await (const _event of stream) void _event;
    expect((await harness.admin('/mnemo/sessions/r-incomplete')).status).toBe(404);
  });

  it('round-trips a function call when the client sends only the function_call_output', async () => {
    const tools = [{ type: 'function' as const, name: 'lookup_order', parameters: { type: 'object', properties: {} }, strict: false }];
    harness.provider.next(respond(() => [outputCall('call_1', 'lookup_order', '{"order_id":"7890"}')]));
    const first = await client.responses.create({ model: 'gpt-4o-mini', tools, input: 'Where is order 7890?' }, session('r-tools'));
    expect(first.output[0]).toMatchObject({ type: 'function_call', call_id: 'call_1' });
    const second = await client.responses.create(
      { model: 'gpt-4o-mini', tools, input: [{ type: 'function_call_output', call_id: 'call_1', output: '{"status":"in transit"}' }] },
      session('r-tools'),
    );
    expect(second.output_text).toMatch(/^Reply to:/);
    expect(harness.provider.rejected).toEqual([]);
    expect(harness.provider.lastResponse.body.input.slice(-2)).toEqual([
      { type: 'function_call', call_id: 'call_1', name: 'lookup_order', arguments: '{"order_id":"7890"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"status":"in transit"}' },
    ]);
  });

  it('stores nothing twice for a client that resends every item, its own outputs included', async () => {
    const input: any[] = [{ role: 'user', content: 'first question' }];
    const first = await client.responses.create({ model: 'gpt-4o-mini', input }, session('r-full'));
    input.push(...first.output.map(({ id: _id, ...item }: any) => item), { role: 'user', content: 'second question' });
    await client.responses.create({ model: 'gpt-4o-mini', input }, session('r-full'));
    expect((await stored('r-full')).messages.map((message) => message.content)).toEqual([
      'first question',
      'Reply to: first question',
      'second question',
      'Reply to: second question',
    ]);
  });

  it('continues one session across chat completions and the Responses API, both ways', async () => {
    await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'My order #7890 is stuck' }] },
      session('r-cross'),
    );
    await client.responses.create({ model: 'gpt-4o-mini', input: 'Which order was it?' }, session('r-cross'));
    expect(sentText()).toContain('My order #7890 is stuck');
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'And now?' }] }, session('r-cross'));
    const chat = JSON.stringify(harness.provider.lastChat.body.messages);
    expect(chat).toContain('My order #7890 is stuck');
    expect(chat).toContain('Which order was it?');
    expect(harness.provider.rejected).toEqual([]);
  });

  it('lets previous_response_id through as sent and records the turn, so a later call without it has memory', async () => {
    const first = await client.responses.create({ model: 'gpt-4o-mini', input: 'Remember the code word: heron.' }, session('r-prev'));
    harness.provider.reset();
    await client.responses.create(
      { model: 'gpt-4o-mini', previous_response_id: first.id, input: 'What is it?', store: true },
      session('r-prev'),
    );
    expect(harness.provider.lastResponse.body).toMatchObject({ previous_response_id: first.id, input: 'What is it?', store: true });
    await client.responses.create({ model: 'gpt-4o-mini', input: 'Say it once more.' }, session('r-prev'));
    expect(sentText()).toContain('heron');
    expect(sentText()).toContain('What is it?');
  });

  it('keeps a reasoning item with the function call it came with', async () => {
    const reasoning = { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' };
    harness.provider.next(respond(() => [reasoning, outputCall('call_r', 'lookup_order', '{}')]));
    await client.responses.create({ model: 'o4-mini', input: 'Look it up' }, session('r-reason'));
    await client.responses.create(
      { model: 'o4-mini', input: [{ type: 'function_call_output', call_id: 'call_r', output: 'found' }] },
      session('r-reason'),
    );
    const input = harness.provider.lastResponse.body.input;
    const at = input.findIndex((item: any) => item.type === 'reasoning');
    expect(input[at]).toEqual(reasoning);
    expect(input[at + 1]).toMatchObject({ type: 'function_call', call_id: 'call_r' });
    expect(harness.provider.rejected).toEqual([]);
  });

  it('answers an item type it cannot keep with an OpenAI-shaped 400, and stores nothing', async () => {
    const error = await client.responses
      .create({ model: 'gpt-4o-mini', input: [{ type: 'item_reference', id: 'msg_1' } as any] }, session('r-bad'))
      .catch((caught: unknown) => caught);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('unsupported_input_item');
    expect((await harness.admin('/mnemo/sessions/r-bad')).status).toBe(404);
  });
});
