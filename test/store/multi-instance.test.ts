import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnMnemo, type MnemoProcess } from '../support/mnemo-process.js';
import { FakeProvider } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';
import { freePort, startRedis, type RedisProcess } from '../support/redis-server.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startPostgres, type PostgresProcess } from '../support/postgres-server.js';

describe.each(['redis', 'redis cluster', 'postgres'] as const)('three mnemo processes on one %s', (kind) => {
  let backend: RedisProcess | RedisCluster | PostgresProcess;
  let provider: FakeProvider;
  let processes: MnemoProcess[];
  let admin: Harness;
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-race-'));
  beforeAll(async () => {
    backend = kind === 'redis' ? await startRedis() : kind === 'postgres' ? await startPostgres() : await startRedisCluster();
    provider = await new FakeProvider().start();
    const config = join(dir, 'mnemo.yaml');
    writeFileSync(
      config,
      [
        'server: { host: 127.0.0.1 }',
        'log: { level: warn, pretty: false }',
        `upstream: { url: ${provider.url} }`,
        `store: { url: "${backend.url}", timeout_ms: 5000 }`,
      ].join('\n'),
    );
    processes = await Promise.all([1, 2, 3].map(async () => spawnMnemo(config, await freePort())));
    admin = await startHarness({ store: { url: backend.url, timeout_ms: 5_000 } }, provider);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(processes.map((process) => process.stop()));
    await admin.close();
    await provider.stop();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const chat = (url: string, session: string, content: string, key: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', 'x-session-id': session, 'idempotency-key': key },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [user(content)] }),
    });

  it('stores each of 1,000 concurrent turns exactly once, each reply right after its question, despite client retries', async () => {
    const sessions = Array.from({ length: 10 }, (_, index) => `race-${index}`);
    const turns = Array.from({ length: 600 }, (_, index) => ({
      session: sessions[index % sessions.length]!,
      text: `turn ${index}`,
      key: `key-${index}`,
    }));
    // Every third turn is sent twice (a client or load-balancer retry), to a different instance.
    const sends = turns.flatMap((turn, index) => (index % 3 === 0 ? [turn, turn] : [turn]));
    const responses = await Promise.all(
      sends.map((turn, index) =>
        chat(processes[index % processes.length]!.url, turn.session, turn.text, turn.key).then(async (response) => {
          await response.text();
          return `${response.status} ${response.headers.get('x-mnemo-memory') ?? ''}`;
        }),
      ),
    );
    expect(responses.filter((outcome) => !outcome.startsWith('200') || outcome.endsWith('degraded'))).toEqual([]);
    for (const session of sessions) {
      const stored = await (await admin.admin(`/mnemo/sessions/${session}`)).json();
      const questions = stored.messages
        .filter((message: { role: string }) => message.role === 'user')
        .map((message: { content: string }) => message.content);
      const expected = turns.filter((turn) => turn.session === session).map((turn) => turn.text);
      expect([...questions].sort()).toEqual([...expected].sort());
      for (let index = 0; index < stored.messages.length; index += 2) {
        expect(stored.messages[index + 1].content).toBe(`Reply to: ${stored.messages[index].content}`);
      }
    }
  }, 60_000);
});
