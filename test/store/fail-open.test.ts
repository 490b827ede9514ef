import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, user, type Harness } from '../support/harness.js';
import { startRedis, type RedisProcess } from '../support/redis-server.js';

describe('on_store_error: pass_through', () => {
  let redis: RedisProcess;
  let harness: Harness;
  beforeAll(async () => {
    redis = await startRedis();
    harness = await startHarness({ store: { url: redis.url, timeout_ms: 500, on_store_error: 'pass_through' } });
  });
  afterAll(async () => {
    await harness.close();
    await redis.stop();
  });

  it('answers without memory while Redis is down, bounded by the store timeout, and resumes when it is back', async () => {
    await harness.chat('open-1', { messages: [user('My order #7890 is stuck')] });

    await redis.kill();
    const degraded = await Promise.all([1, 2, 3].map(() => harness.chat('open-1', { messages: [user('Any news?')] })));
    for (const response of degraded) {
      expect(response.status).toBe(200);
      expect(response.headers.get('x-mnemo-memory')).toBe('degraded');
    }
    // The request went as the client sent it.
    expect(harness.provider.lastChat.body.messages).toEqual([user('Any news?')]);

    // Under load: Redis dies while requests are in flight; none hangs, none fails.
    await redis.restart();
    const load = Array.from({ length: 60 }, async (_, index) => {
      await new Promise((resolve) => setTimeout(resolve, index * 5));
      const started = Date.now();
      const response = await harness.chat(`load-${index % 6}`, { messages: [user(`load ${index}`)] });
      await response.text();
      return { status: response.status, memory: response.headers.get('x-mnemo-memory'), ms: Date.now() - started };
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await redis.kill();
    const outcomes = await Promise.all(load);
    expect(outcomes.every((outcome) => outcome.status === 200)).toBe(true);
    expect(outcomes.some((outcome) => outcome.memory === 'degraded')).toBe(true);
    // A hang check, not a latency goal: every store call is bounded by store.timeout_ms (500 ms here).
    expect(Math.max(...outcomes.map((outcome) => outcome.ms))).toBeLessThan(5_000);

    await redis.restart(); // no persistence: Redis comes back empty, as after a crash
    let memory: string | null = null;
    for (let attempt = 0; attempt < 50 && memory !== 'hit'; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      memory = (await harness.chat('open-2', { messages: [user(`attempt ${attempt}`)] })).headers.get('x-mnemo-memory');
    }
    expect(memory).toBe('hit');
    const metrics = await (await fetch(`${harness.mnemo.url}/metrics`)).text();
    expect(metrics).toMatch(/mnemo_memory_degraded_total\{reason="store_unavailable"\} [1-9]/);
  }, 30_000);
});
