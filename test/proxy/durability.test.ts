import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeProvider } from '../support/fake-provider.js';
import { startHarness, user } from '../support/harness.js';

describe('durability on the embedded SQLite store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-durable-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('continues a conversation after mnemo stops and starts again', async () => {
    const provider = await new FakeProvider().start();
    const store = { url: `sqlite://${join(dir, 'mnemo.db')}` };
    try {
      const first = await startHarness({ store }, provider);
      await first.chat('durable-1', { messages: [user('My order #7890 is stuck, can you help?')] });
      await first.close();

      const second = await startHarness({ store }, provider);
      const response = await second.chat('durable-1', { messages: [user("What's the estimated delivery date?")] });
      expect(response.headers.get('x-mnemo-memory')).toBe('hit');
      expect(provider.lastChat.body.messages.map((message: { content: string }) => message.content)).toEqual([
        'My order #7890 is stuck, can you help?',
        'Reply to: My order #7890 is stuck, can you help?',
        "What's the estimated delivery date?",
      ]);
      await second.close();
    } finally {
      await provider.stop();
    }
  });
});
