import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assistant, startHarness, system, user, type Harness } from '../support/harness.js';

describe('a client that resends its whole history', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());

  const storedContents = async (id: string) => {
    const session = await (await harness.admin(`/mnemo/sessions/${id}`)).json();
    return session.messages.map((message: { role: string; content: string }) => `${message.role}:${message.content}`);
  };

  it('sends and stores nothing twice', async () => {
    const history = [system('Be brief.'), user('one')];
    for (const next of ['two', 'three']) {
      const reply = (await (await harness.chat('full-1', { messages: history })).json()).choices[0].message;
      history.push(reply, user(next));
    }
    await harness.chat('full-1', { messages: history });
    // Same conversation, once: the stored reply stands in for the client's echo of it.
    expect(harness.provider.lastChat.body.messages).toEqual(history.map(({ role, content }) => ({ role, content })));
    expect(await storedContents('full-1')).toEqual([
      'user:one',
      'assistant:Reply to: one',
      'user:two',
      'assistant:Reply to: two',
      'user:three',
      'assistant:Reply to: three',
    ]);
  });

  it('forks at an edited earlier message: the client wins from there', async () => {
    await harness.chat('full-2', { messages: [user('my order is 111')] });
    await harness.chat('full-2', {
      messages: [user('my order is 111'), assistant('Reply to: my order is 111'), user('when will it arrive?')],
    });
    // The user edits their second message.
    const response = await harness.chat('full-2', {
      messages: [user('my order is 111'), assistant('Reply to: my order is 111'), user('cancel it instead')],
    });
    expect(response.status).toBe(200);
    expect(harness.provider.lastChat.body.messages.map((message: { content: string }) => message.content)).toEqual([
      'my order is 111',
      'Reply to: my order is 111',
      'cancel it instead',
    ]);
    expect(await storedContents('full-2')).toEqual([
      'user:my order is 111',
      'assistant:Reply to: my order is 111',
      'user:cancel it instead',
      'assistant:Reply to: cancel it instead',
    ]);
  });

  it('regenerates: resending history up to a user message replaces the answer after it', async () => {
    await harness.chat('full-3', { messages: [user('pick a color')] });
    await harness.chat('full-3', { messages: [user('pick a color'), assistant('Reply to: pick a color'), user('another')] });
    await harness.chat('full-3', { messages: [user('pick a color'), assistant('Reply to: pick a color'), user('another')] });
    expect(await storedContents('full-3')).toEqual([
      'user:pick a color',
      'assistant:Reply to: pick a color',
      'user:another',
      'assistant:Reply to: another',
    ]);
  });

  it('accepts a sliding window of recent messages without duplicating them', async () => {
    await harness.chat('full-4', { messages: [user('a')] });
    await harness.chat('full-4', { messages: [user('b')] });
    await harness.chat('full-4', { messages: [assistant('Reply to: b'), user('c')] });
    expect(await storedContents('full-4')).toEqual([
      'user:a',
      'assistant:Reply to: a',
      'user:b',
      'assistant:Reply to: b',
      'user:c',
      'assistant:Reply to: c',
    ]);
  });

  it('does not mistake a stateless client repeating its first words for a rewind', async () => {
    await harness.chat('full-5', { messages: [user('hi')] });
    await harness.chat('full-5', { messages: [user('hi')] });
    expect(await storedContents('full-5')).toEqual(['user:hi', 'assistant:Reply to: hi', 'user:hi', 'assistant:Reply to: hi']);
  });
});
