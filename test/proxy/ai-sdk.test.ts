import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

/**
 * The Vercel AI SDK's default OpenAI provider, `openai(model)`, speaks the Responses API: a team
 * using it changes the base URL, adds the header, and its bot remembers.
 */
describe('the AI SDK default provider through mnemo', () => {
  let harness: Harness;
  let openai: ReturnType<typeof createOpenAI>;
  beforeAll(async () => {
    harness = await startHarness();
    openai = createOpenAI({ apiKey: 'sk-test', baseURL: harness.baseURL, headers: { 'X-Session-Id': 'ai-sdk-1' } });
  });
  afterAll(() => harness.close());

  it('remembers the order across generateText calls that send only the new message', async () => {
    const first = await generateText({ model: openai('gpt-4o-mini'), prompt: 'My order #7890 is stuck, can you help?' });
    expect(first.text).toBe('Reply to: My order #7890 is stuck, can you help?');
    expect(harness.provider.lastResponse.path).toMatch(/\/responses$/);
    await generateText({ model: openai('gpt-4o-mini'), prompt: "What's the estimated delivery date?" });
    expect(JSON.stringify(harness.provider.lastResponse.body.input)).toContain('#7890');
    expect(harness.provider.rejected).toEqual([]);
  });

  it('remembers streamed turns too', async () => {
    const result = streamText({ model: openai('gpt-4o-mini'), prompt: 'Note the code word heron.' });
    expect(await result.text).toBe('Reply to: Note the code word heron.');
    await generateText({ model: openai('gpt-4o-mini'), prompt: 'Which code word?' });
    expect(JSON.stringify(harness.provider.lastResponse.body.input)).toContain('heron');
  });
});
