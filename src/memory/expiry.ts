import type { Logger } from 'pino';
import type { SessionStore } from '../store/types.js';

/**
 * Erases sessions idle longer than the TTL, on a timer. Sessions are also
 * expired lazily when next touched, so the sweep only bounds how long an
 * abandoned session's data lingers.
 */
export class IdleSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly deps: { store: SessionStore; logger: Logger; now: () => number; onExpired: () => void },
    private readonly settings: () => { idleTtlMs: number; intervalMs: number },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.settings().intervalMs);
    this.timer.unref();
  }

  /** One pass over every session; resolves with how many were erased. */
  sweep(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<number> {
    const { idleTtlMs } = this.settings();
    if (idleTtlMs === 0) return 0;
    const cutoff = this.deps.now() - idleTtlMs;
    const idle: string[] = [];
    try {
      for await (const { sessionKey, meta } of this.deps.store.listSessions('')) if (meta.updatedAt < cutoff) idle.push(sessionKey);
      for (const sessionKey of idle) {
        if (await this.deps.store.delete(sessionKey)) this.deps.onExpired();
      }
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'idle-session sweep failed; will retry on the next interval');
    }
    return idle.length;
  }
}
