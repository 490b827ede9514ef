import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { completion, json } from '../support/fake-provider.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('the official openai client through mnemo', () => {
  let harness: Harness;
  let client: OpenAI;
  const session = (id: string) => ({ headers: { 'X-Session-Id': id } });

  beforeAll(async () => {
    harness = await startHarness();
    client = new OpenAI({ apiKey: 'sk-test', baseURL: harness.baseURL, maxRetries: 0 });
  });
  beforeEach(() => harness.provider.reset());
  afterAll(() => harness.close());

  it('returns a non-streamed completion unchanged and remembers it', async () => {
    const reply = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi, I am Ada.' }] },
      session('sdk-plain'),
    );
    expect(reply.choices[0]?.message.content).toBe('Reply to: Hi, I am Ada.');
    await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'What is my name?' }] },
      session('sdk-plain'),
    );
    expect(harness.provider.lastChat.body.messages.map((message: { content: string }) => message.content)).toEqual([
      'Hi, I am Ada.',
      'Reply to: Hi, I am Ada.',
      'What is my name?',
    ]);
  });

  it('assembles a streamed reply and puts it in the next turn', async () => {
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Stream me something' }] },
      session('sdk-stream'),
    );
    let text = '';
    let usageChunks = 0;
    for await (const part of stream) {
      text += part.choices[0]?.delta?.content ?? '';
      if (part.usage) usageChunks++;
    }
    expect(text).toBe('Reply to: Stream me something');
    // mnemo asked for usage itself, so the client must not see the extra chunk.
    expect(harness.provider.lastChat.body.stream_options).toEqual({ include_usage: true });
    expect(usageChunks).toBe(0);

    await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'And again?' }] },
      session('sdk-stream'),
    );
    expect(harness.provider.lastChat.body.messages).toEqual([
      { role: 'user', content: 'Stream me something' },
      { role: 'assistant', content: 'Reply to: Stream me something' },
      { role: 'user', content: 'And again?' },
    ]);
  });

  it('passes the usage chunk through when the client asked for it', async () => {
    const stream = await client.chat.completions.create(
      {
        model: 'gpt-4o-mini',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'usage please' }],
      },
      session('sdk-usage'),
    );
    let usage: unknown;
    for await (const part of stream) if (part.usage) usage = part.usage;
    expect(usage).toEqual({ prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 }); // 'Reply to: usage please', ~4 characters a token
  });

  it('round-trips tool calls: assistant tool_calls, tool result, answer', async () => {
    const toolCall = { id: 'call_1', type: 'function', function: { name: 'lookup_order', arguments: '{"order_id":"7890"}' } };
    harness.provider.next(json(completion({ content: null, tool_calls: [toolCall] })));
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'lookup_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } },
      },
    ];
    const first = await client.chat.completions.create(
      { model: 'gpt-4o-mini', tools, messages: [{ role: 'user', content: 'Where is order 7890?' }] },
      session('sdk-tools'),
    );
    expect(first.choices[0]?.message.tool_calls).toEqual([toolCall]);

    // A stateless client sends only the tool result; mnemo supplies the call it answers.
    await client.chat.completions.create(
      {
        model: 'gpt-4o-mini',
        tools,
        messages: [{ role: 'tool', tool_call_id: 'call_1', content: '{"status":"in transit","eta":"2026-12-01"}' }],
      },
      session('sdk-tools'),
    );
    expect(harness.provider.lastChat.body.messages).toEqual([
      { role: 'user', content: 'Where is order 7890?' },
      { role: 'assistant', content: null, tool_calls: [toolCall] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"status":"in transit","eta":"2026-12-01"}' },
    ]);
  });

  it('runs a second tool round trip in a session with kept tool results, in an order OpenAI accepts', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'lookup_order', parameters: { type: 'object', properties: {} } } }];
    const round = async (id: string, question: string, result: string) => {
      const toolCall = { id, type: 'function', function: { name: 'lookup_order', arguments: '{"order_id":"7890"}' } };
      harness.provider.next(json(completion({ content: null, tool_calls: [toolCall] })));
      await client.chat.completions.create(
        { model: 'gpt-4o-mini', tools, messages: [{ role: 'user', content: question }] },
        session('sdk-tools-2'),
      );
      // The tool result alone: mnemo adds the call, and its kept context (the first round's result).
      return client.chat.completions.create(
        { model: 'gpt-4o-mini', tools, messages: [{ role: 'tool', tool_call_id: id, content: result }] },
        session('sdk-tools-2'),
      );
    };
    await round('call_a', 'Where is order 7890?', '{"status":"in transit"}');
    const second = await round('call_b', 'And the order 7890 delivery date?', '{"order_id":"7890","eta":"2026-12-01"}');
    expect(second.choices[0]?.message.content).toMatch(/^Reply to:/);
    expect(harness.provider.rejected).toEqual([]);
    const sent = harness.provider.lastChat.body.messages;
    expect(sent.slice(-2).map((message: { role: string }) => message.role)).toEqual(['assistant', 'tool']);
    expect(JSON.stringify(sent)).toContain('in transit');
  });

  it.each([
    [429, 'RateLimitError', { 'retry-after': '7', 'x-ratelimit-remaining-requests': '0' }],
    [500, 'InternalServerError', {}],
  ])('passes a provider %i through with its headers and body, and records nothing', async (status, errorName, headers) => {
    const body = { error: { message: `provider says ${status}`, type: 'provider_error', param: null, code: 'upstream_code' } };
    harness.provider.next(json(body, status, headers));
    const error = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'will fail' }] }, session(`sdk-${status}`))
      .catch((caught: unknown) => caught);
    expect((error as Error).constructor.name).toBe(errorName);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((error as InstanceType<typeof OpenAI.APIError>).error).toEqual(body.error);
    for (const [name, value] of Object.entries(headers))
      expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get(name)).toBe(value);

    const stored = await harness.admin(`/mnemo/sessions/sdk-${status}`);
    expect(stored.status).toBe(404);
  });
});
