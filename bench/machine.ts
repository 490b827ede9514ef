import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

/** One line naming the machine a benchmark ran on. */
export function machine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}/${process.arch}`;
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU time (user + system, ms) process `pid` has used so far, from /proc. */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1000) / CLOCK_TICKS;
}

/**
 * Resolves once the mnemo at `url` has no background work moving: its fold and index-run
 * counters in /metrics hold still for a second. A load's CPU is read after this, so the index runs
 * and folds its turns set off count in its own figures, not in the next load's or in none.
 */
export async function backgroundDrained(url: string): Promise<void> {
  const work = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return [...text.matchAll(/^mnemo_(?:folds|index_runs)_total\{[^}]*\} (\d+)/gm)].reduce((total, match) => total + Number(match[1]), 0);
  };
  let previous = -1;
  for (let current = await work(); current !== previous; current = await work()) {
    previous = current;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}
