import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';
import { startRedis, type RedisProcess } from '../support/redis-server.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';

describe.each(['redis', 'redis cluster'] as const)('several mnemo instances on one %s', (kind) => {
  let redis: RedisProcess | RedisCluster;
  let provider: FakeProvider;
  let instances: Harness[];
  beforeAll(async () => {
    redis = kind === 'redis' ? await startRedis() : await startRedisCluster();
    provider = await new FakeProvider().start();
    instances = await Promise.all([1, 2, 3].map(() => startHarness({ store: { url: redis.url, timeout_ms: 5_000 } }, provider)));
  });
  afterAll(async () => {
    for (const instance of instances) await instance.close();
    await provider.stop();
    await redis.stop();
  });

  it('stores every concurrent turn exactly once, each reply right after its question, despite client retries', async () => {
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
        instances[index % instances.length]!.chat(turn.session, { messages: [user(turn.text)] }, { 'idempotency-key': turn.key }).then(
          async (response) => {
            await response.text();
            return `${response.status} ${response.headers.get('x-mnemo-memory') ?? ''}`;
          },
        ),
      ),
    );
    expect(responses.filter((outcome) => !outcome.startsWith('200') || outcome.endsWith('degraded'))).toEqual([]);
    for (const session of sessions) {
      const stored = await (await instances[0]!.admin(`/mnemo/sessions/${session}`)).json();
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
