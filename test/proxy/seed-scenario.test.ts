import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, system, user, type Harness } from '../support/harness.js';

describe('the seed scenario: a stateless support bot remembers the order', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());

  it('sends turn 1 and its reply upstream with turn 2, though the client sent only turn 2', async () => {
    const first = await harness.chat('seed-1', {
      messages: [system('You are a support bot.'), user('My order #7890 is stuck, can you help?')],
    });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-mnemo-memory')).toBe('miss');
    const firstReply = (await first.json()).choices[0].message.content;

    const second = await harness.chat('seed-1', {
      messages: [system('You are a support bot.'), user("What's the estimated delivery date?")],
    });
    expect(second.status).toBe(200);
    expect(second.headers.get('x-mnemo-memory')).toBe('hit');
    expect(second.headers.get('x-mnemo-session')).toBe('seed-1');

    expect(harness.provider.lastChat.body.messages).toEqual([
      { role: 'system', content: 'You are a support bot.' },
      { role: 'user', content: 'My order #7890 is stuck, can you help?' },
      { role: 'assistant', content: firstReply },
      { role: 'user', content: "What's the estimated delivery date?" },
    ]);
  });

  it('keeps sessions apart', async () => {
    await harness.chat('seed-other', { messages: [user('Hello from another conversation')] });
    expect(harness.provider.lastChat.body.messages).toEqual([{ role: 'user', content: 'Hello from another conversation' }]);
  });
});
