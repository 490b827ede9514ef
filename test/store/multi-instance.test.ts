import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';
import { startRedis, type RedisProcess } from '../support/redis-server.js';

describe('several mnemo instances on one Redis', () => {
  let redis: RedisProcess;
  let provider: FakeProvider;
  let instances: Harness[];
  beforeAll(async () => {
    redis = await startRedis();
    provider = await new FakeProvider().start();
    instances = await Promise.all([1, 2, 3].map(() => startHarness({ store: { url: redis.url } }, provider)));
  });
  afterAll(async () => {
    for (const instance of instances) await instance.close();
    await provider.stop();
    await redis.stop();
  });

  it('stores every concurrent turn exactly once, each reply right after its question', async () => {
    const sessions = ['race-0', 'race-1', 'race-2', 'race-3', 'race-4'];
    const turns = Array.from({ length: 300 }, (_, index) => ({ session: sessions[index % sessions.length]!, text: `turn ${index}` }));
    const responses = await Promise.all(
      turns.map((turn, index) =>
        instances[index % instances.length]!.chat(turn.session, { messages: [user(turn.text)] }).then((response) => response.status),
      ),
    );
    expect(responses.every((status) => status === 200)).toBe(true);
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
