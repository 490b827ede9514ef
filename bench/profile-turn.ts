/**
 * npm run bench:profile — a CPU profile of mnemo serving memory-on turns (memory store, 50-turn
 * sessions, 16 in flight), and the functions with the most self time. Writes the .cpuprofile to
 * bench/profiles/ for a flame graph (Chrome DevTools or speedscope).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { request } from 'undici';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const STORE = process.env.BENCH_STORE ?? 'memory://';
const dir = join(import.meta.dirname, 'profiles');
mkdirSync(dir, { recursive: true });

async function serve(args: string[], script: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...args, '--import', 'tsx', script, ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (data: Buffer) => resolve(JSON.parse(data.toString()).port)));
  return { child, url: `http://127.0.0.1:${port}` };
}

const provider = await serve([], 'bench/fast-provider.ts');
const before = new Set(readdirSync(dir));
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', 'bench/mnemo-server.ts', `${provider.url}/v1`, STORE], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise<number>((resolve) => child.stdout!.once('data', (data: Buffer) => resolve(JSON.parse(data.toString()).port)));
const url = `http://127.0.0.1:${port}`;
const body = (content: string) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });

const sessions = Array.from({ length: 200 }, (_, index) => `p-${index}`);
for (const id of sessions) {
  for (let turn = 0; turn < 25; turn++) {
    const response = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': id },
      body: body(`Turn ${turn}: a question about order ${1000 + turn} and its delivery.`),
    });
    await response.body.text();
  }
}
let next = 0;
const result = await autocannon({
  url: `${url}/v1/chat/completions`,
  method: 'POST',
  connections: 16,
  duration: SECONDS,
  headers: { 'content-type': 'application/json' },
  body: body('What is the estimated delivery date of my order?'),
  requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-session-id': sessions[next++ % sessions.length]! } }) }],
});
console.log(`${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms`);
const exited = new Promise((resolve) => child.once('exit', resolve));
child.kill('SIGTERM');
await exited;
provider.child.kill('SIGTERM');

// Self time per function, from this run's main-thread profile (tsx's loader thread writes a small one too).
const file = readdirSync(dir)
  .filter((name) => name.endsWith('.cpuprofile') && !before.has(name))
  .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0]!;
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
};
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
for (const sample of profile.samples) {
  const frame = byId.get(sample)!.callFrame;
  const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\//, '').replace(/^.*\/work\/main\//, '')}:${frame.lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + 1);
}
const total = profile.samples.length;
console.log(`profile: bench/profiles/${file}`);
for (const [name, count] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40)))
  console.log(`${((count / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
