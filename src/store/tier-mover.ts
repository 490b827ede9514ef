import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { PeriodicTask } from '../periodic-task.js';
import type { TieredStore } from './tiered-store.js';

/**
 * Runs demotion passes on a timer. Every instance runs its own: moves are
 * conditional, so two instances demoting the same session cost a wasted copy,
 * never a lost turn.
 */
export class TierMover {
  private readonly task: PeriodicTask;

  constructor(tiers: TieredStore, logger: Logger, metrics: Metrics) {
    this.task = new PeriodicTask(
      () => tiers.demoteIdle(),
      (error) => {
        metrics.tierPassFailures.inc();
        logger.warn({ err: error }, 'demotion pass failed; will retry on the next interval');
      },
    );
  }

  start(intervalMs: number): void {
    this.task.start(intervalMs);
  }

  /** One pass now; resolves with the number of sessions moved cold. */
  runOnce(): Promise<number> {
    return this.task.run();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }
}
