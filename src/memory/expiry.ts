import { eraseSession, sweepTombstones } from './erase.js';
import type { Logger } from 'pino';
import { PeriodicTask } from '../periodic-task.js';
import type { SessionStore } from '../store/types.js';

/** How often tombstones are swept, per tombstone lifetime (daily at the default 7 days). */
const TOMBSTONE_SWEEPS_A_LIFETIME = 7;

/**
 * On a timer: erases sessions idle longer than the retention period, then deletes tombstones older
 * than their lifetime (erase.ts). Sessions are also expired lazily when next touched, so the sweep
 * only bounds how long an abandoned session's data lingers. With a cold tier, it sweeps both tiers.
 */
export class IdleSweeper {
  private readonly task: PeriodicTask;
  /** When this process last swept tombstones (0: not yet). */
  private tombstonesSweptAt = 0;

  constructor(
    private readonly deps: {
      store: SessionStore;
      logger: Logger;
      now: () => number;
      onExpired: () => void;
      onTombstonesSwept?: (count: number) => void;
    },
    private readonly settings: () => { retentionMs: number; tombstoneTtlMs: number; intervalMs: number },
  ) {
    this.task = new PeriodicTask(
      () => this.pass(),
      (error) => deps.logger.warn({ err: error }, 'idle-session sweep failed; will retry on the next interval'),
    );
  }

  start(): void {
    this.task.start(this.settings().intervalMs);
  }

  /** One pass; resolves with how many idle sessions were erased. */
  sweep(): Promise<number> {
    return this.task.run();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async pass(): Promise<number> {
    const { retentionMs, tombstoneTtlMs } = this.settings();
    const erased = retentionMs > 0 ? await this.expire(this.deps.now() - retentionMs) : 0;
    // Listing tombstones scans the store (SCAN on Redis), on every instance: a few times a
    // lifetime is enough, since one outliving its lifetime by a seventh only costs a few bytes.
    const now = this.deps.now();
    if (now - this.tombstonesSweptAt >= tombstoneTtlMs / TOMBSTONE_SWEEPS_A_LIFETIME) {
      this.tombstonesSweptAt = now;
      const swept = await sweepTombstones(this.deps.store, now - tombstoneTtlMs);
      if (swept > 0) this.deps.onTombstonesSwept?.(swept);
    }
    return erased;
  }

  private async expire(cutoff: number): Promise<number> {
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
