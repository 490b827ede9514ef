import { setImmediate as nextTurnOfLoop } from 'node:timers/promises';

/**
 * Background memory work (index runs, folds) waits for the event loop's next turn at the start of
 * a job and between its steps, so the response that scheduled it ends first and requests that
 * arrived meanwhile run before it. With an in-process store (memory, SQLite) every await in a job
 * resolves at once: a job ran as one block of CPU and held back the next request (bench: streaming
 * time to first byte +0.70–0.76 ms over a bare proxy with index runs interleaved, +0.42–0.45 ms
 * without any).
 */
export function yieldToRequests(): Promise<void> {
  return nextTurnOfLoop();
}
