/**
 * A background pass on a timer that never overlaps itself: a pass still
 * running when the timer fires (or when `run` is called) is joined, not
 * doubled. Failures go to `onError`; the next interval tries again.
 */
export class PeriodicTask {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly pass: () => Promise<number>,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.run(), intervalMs);
    this.timer.unref();
  }

  /** Runs a pass now (or joins the one under way); resolves with what it counted, 0 after a failure. */
  run(): Promise<number> {
    this.running ??= this.pass()
      .catch((error) => {
        this.onError(error);
        return 0;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
