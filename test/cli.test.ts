import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunk, FakeProvider, sse, streamParts } from './support/fake-provider.js';
import { startHarness, user } from './support/harness.js';
import { freePort } from './support/redis-server.js';
import { spawnMnemo } from './support/mnemo-process.js';

describe('the mnemo process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-cli-'));
  const database = join(dir, 'mnemo.db');
  const config = join(dir, 'mnemo.yaml');
  let provider: FakeProvider;
  const writeConfig = (patterns: string[]) =>
    writeFileSync(
      config,
      [
        'server: { host: 127.0.0.1, shutdown_grace_ms: 10000 }',
        'log: { pretty: false }',
        `upstream: { url: ${provider.url} }`,
        `store: { url: "sqlite://${database}" }`,
        `memory: { rules: [{ kind: drop_matching, patterns: [${patterns.map((pattern) => JSON.stringify(pattern)).join(', ')}] }] }`,
      ].join('\n'),
    );
  const chat = (url: string, session: string, content: string, stream = false) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': session, authorization: 'Bearer sk-test' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [user(content)] }),
    });

  beforeAll(async () => {
    provider = await new FakeProvider().start();
    writeConfig(['nothing']);
  });
  afterAll(() => provider.stop());

  it('reloads its rules on SIGHUP', async () => {
    const mnemo = await spawnMnemo(config, await freePort());
    try {
      await (await chat(mnemo.url, 'hup-1', 'thanks!')).text();
      await (await chat(mnemo.url, 'hup-1', 'question one')).text();
      const contents = () => provider.lastChat.body.messages.map((message: { content: string }) => message.content);
      expect(contents()).toContain('thanks!');
      writeConfig(['thanks!?']);
      mnemo.child.kill('SIGHUP');
      await new Promise((resolve) => setTimeout(resolve, 500));
      await (await chat(mnemo.url, 'hup-1', 'question two')).text();
      expect(contents()).not.toContain('thanks!');
    } finally {
      mnemo.child.kill('SIGTERM');
      await mnemo.exited;
    }
  }, 30_000);

  it('killed mid-stream (SIGKILL), leaves no partial turn behind', async () => {
    const port = await freePort();
    const mnemo = await spawnMnemo(config, port);
    await (await chat(mnemo.url, 'kill-1', 'first question')).text();
    provider.next(
      streamParts([
        { data: sse([chunk({ role: 'assistant', content: 'half an ans' })]) },
        { delayMs: 2_000, data: sse([chunk({ content: 'wer' }), chunk({}, 'stop'), '[DONE]']) },
      ]),
    );
    const response = await chat(mnemo.url, 'kill-1', 'second question', true);
    const reader = response.body!.getReader();
    await reader.read();
    mnemo.child.kill('SIGKILL');
    await mnemo.exited;
    await reader.read().catch(() => undefined);

    const again = await spawnMnemo(config, port);
    try {
      const session = await (
        await fetch(`${again.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-session-id': 'kill-1', authorization: 'Bearer sk-test' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [user('third question')] }),
        })
      ).text();
      expect(session).toContain('Reply to: third question');
      const contents = provider.lastChat.body.messages.map((message: { content: string }) => message.content);
      expect(contents).toEqual(['first question', 'Reply to: first question', 'third question']);
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  }, 30_000);

  it('on SIGTERM finishes a stream in flight, commits it, and exits 0', async () => {
    const mnemo = await spawnMnemo(config, await freePort());
    const slow = streamParts([
      { data: sse([chunk({ role: 'assistant', content: 'Your parcel' })]) },
      { delayMs: 1_000, data: sse([chunk({ content: ' arrives Friday.' }), chunk({}, 'stop'), '[DONE]']) },
    ]);
    provider.next(slow);
    const response = await chat(mnemo.url, 'term-1', 'When does order #7890 arrive?', true);
    const reader = response.body!.getReader();
    await reader.read();
    mnemo.child.kill('SIGTERM');
    let text = '';
    for (let part = await reader.read(); !part.done; part = await reader.read()) text += new TextDecoder().decode(part.value);
    expect(text).toContain('[DONE]');
    expect(await mnemo.exited).toBe(0);

    // The turn is on disk: a new mnemo on the same SQLite file sees it.
    const after = await startHarness({ store: { url: `sqlite://${database}` } }, provider);
    try {
      const session = await (await after.admin(`/mnemo/sessions/term-1`)).json();
      expect(session.messages.map((message: { content: string }) => message.content)).toEqual([
        'When does order #7890 arrive?',
        'Your parcel arrives Friday.',
      ]);
    } finally {
      await after.close();
    }
  }, 30_000);
});
