import { eraseSession } from './erase.js';
import type { Logger } from 'pino';
import { PeriodicTask } from '../periodic-task.js';
import type { SessionStore } from '../store/types.js';

/**
 * Erases sessions idle longer than the retention period, on a timer. Sessions
 * are also expired lazily when next touched, so the sweep only bounds how long
 * an abandoned session's data lingers. With a cold tier, it sweeps both tiers.
 */
export class IdleSweeper {
  private readonly task: PeriodicTask;

  constructor(
    private readonly deps: { store: SessionStore; logger: Logger; now: () => number; onExpired: () => void },
    private readonly settings: () => { retentionMs: number; intervalMs: number },
  ) {
    this.task = new PeriodicTask(
      () => this.pass(),
      (error) => deps.logger.warn({ err: error }, 'idle-session sweep failed; will retry on the next interval'),
    );
  }

  start(): void {
    this.task.start(this.settings().intervalMs);
  }

  /** One pass over every session; resolves with how many were erased. */
  sweep(): Promise<number> {
    return this.task.run();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async pass(): Promise<number> {
    const { retentionMs } = this.settings();
    if (retentionMs === 0) return 0;
    const cutoff = this.deps.now() - retentionMs;
    const idle: Array<{ sessionKey: string; lastActive: number }> = [];
    for await (const { sessionKey, meta } of this.deps.store.listSessions('')) {
      if (meta.updatedAt < cutoff) idle.push({ sessionKey, lastActive: meta.updatedAt });
    }
    let erased = 0;
    for (const { sessionKey, lastActive } of idle) {
      // Tombstoned as of its last activity: a turn begun since (the one finding it expired) may start it anew.
      if (await eraseSession(this.deps.store, sessionKey, lastActive)) {
        erased++;
        this.deps.onExpired();
      }
    }
    return erased;
  }
}
