import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres } from '../support/postgres-server.js';
import { startRedis } from '../support/redis-server.js';
import { startHarness, user, type Harness } from '../support/harness.js';

interface Server {
  url: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const servers: Record<string, () => Promise<Server>> = {
  Redis: () => startRedis({ durable: true }),
  PostgreSQL: () => startPostgres({ durable: true }),
};

/**
 * The store SIGKILLed and restarted under mixed streamed and non-streamed load: every turn a
 * client got a complete answer for is in its session once the store is back, exactly once.
 */
describe.each([
  ['Redis', 'fail'],
  ['Redis', 'pass_through'],
  ['PostgreSQL', 'fail'],
  ['PostgreSQL', 'pass_through'],
] as const)('%s killed under load (on_store_error: %s)', (backend, mode) => {
  let redis: Server;
  let harness: Harness;
  beforeAll(async () => {
    redis = await servers[backend]!();
    harness = await startHarness({ store: { url: redis.url, timeout_ms: 300, on_store_error: mode, outbox_interval_ms: 100 } });
  });
  afterAll(async () => {
    await harness.close();
    await redis.stop();
  });

  it('loses no acknowledged turn and records none twice', async () => {
    const sessions = 6;
    const rounds = 12;
    const acknowledged = new Map<string, string[]>();
    let degradedOrQueued = 0;
    const turn = async (session: string, round: number) => {
      const content = `${session} turn ${round}`;
      const stream = round % 2 === 0;
      try {
        const response = await harness.chat(session, { stream, messages: [user(content)] });
        const text = await response.text();
        const complete = response.status === 200 && (stream ? text.includes('[DONE]') : text.includes('Reply to:'));
        if (!complete) return;
        if (['degraded', 'queued'].includes(response.headers.get('x-mnemo-memory') ?? '')) degradedOrQueued++;
        acknowledged.set(session, [...(acknowledged.get(session) ?? []), content]);
      } catch {
        // A cut connection is not an acknowledgement.
      }
    };
    const load = Promise.all(
      Array.from({ length: sessions }, async (_, index) => {
        for (let round = 0; round < rounds; round++) {
          await turn(`k-${index}`, round);
          await new Promise((resolve) => setTimeout(resolve, 40));
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 800));
    await redis.restart();
    await load;
    // The outbox drains once Redis answers again.
    for (let attempt = 0; attempt < 100 && harness.mnemo.outbox!.box.depth().depth > 0; attempt++) {
      await harness.mnemo.outbox!.replayer.drain();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(harness.mnemo.outbox!.box.depth().depth).toBe(0);

    let lost = 0;
    let duplicated = 0;
    for (const [session, contents] of acknowledged) {
      const stored = (await (await harness.admin(`/mnemo/sessions/${session}`)).json()).messages.map(
        (message: { content: string }) => message.content,
      );
      for (const content of contents) {
        const copies = stored.filter((text: string) => text === content).length;
        if (copies === 0) lost++;
        if (copies > 1) duplicated++;
      }
      // And in the order they were answered.
      const order = stored.filter((text: string) => contents.includes(text));
      expect(order).toEqual(contents);
    }
    const total = [...acknowledged.values()].reduce((sum, list) => sum + list.length, 0);
    console.log(
      `${backend}, on_store_error ${mode}: ${total} acknowledged, ${lost} lost, ${duplicated} duplicated, ${degradedOrQueued} answered degraded/queued`,
    );
    expect(total).toBeGreaterThan(sessions * rounds * 0.5);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
  }, 60_000);
});
