import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { startMnemo, type RunningMnemo } from '../../src/main.js';
import { FakeProvider } from '../support/fake-provider.js';

describe('live config reload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-reload-'));
  const path = join(dir, 'mnemo.yaml');
  let provider: FakeProvider;
  let mnemo: RunningMnemo;
  const write = (patterns: string[]) =>
    writeFileSync(
      path,
      [
        'server: { host: 127.0.0.1, port: 0 }',
        'log: { level: silent }',
        `upstream: { url: ${provider.url} }`,
        'store: { url: "memory://" }',
        'memory:',
        '  rules:',
        '    - kind: drop_matching',
        `      patterns: [${patterns.map((pattern) => JSON.stringify(pattern)).join(', ')}]`,
      ].join('\n'),
    );
  const chat = (content: string) =>
    fetch(`${mnemo.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', 'x-session-id': 'reload-1' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }),
    }).then((response) => response.text());

  beforeAll(async () => {
    provider = await new FakeProvider().start();
    write(['nothing matches this']);
    mnemo = await startMnemo({
      config: loadConfig({ path, env: { MNEMO_OUTBOX: ':memory:' } }),
      configSource: { path, env: { MNEMO_OUTBOX: ':memory:' } },
    });
    await chat('thanks!');
  });
  afterAll(async () => {
    await mnemo.close(1_000);
    await provider.stop();
  });

  it('applies changed rules to the next request without a restart', async () => {
    await chat('first question');
    expect(provider.lastChat.body.messages.map((message: { content: string }) => message.content)).toContain('thanks!');
    write(['thanks!?']);
    expect(mnemo.config.reload()).toBe(true);
    await chat('second question');
    expect(provider.lastChat.body.messages.map((message: { content: string }) => message.content)).not.toContain('thanks!');
  });

  it('rejects a broken file and keeps the running config', async () => {
    writeFileSync(path, 'memory:\n  rules:\n    - kind: no_such_rule\n');
    expect(mnemo.config.reload()).toBe(false);
    expect(mnemo.config.current().memory.rules).toEqual([{ kind: 'drop_matching', patterns: ['thanks!?'], roles: ['user', 'assistant'] }]);
    await chat('third question');
    expect(provider.lastChat.body.messages.map((message: { content: string }) => message.content)).not.toContain('thanks!');
  });
});
