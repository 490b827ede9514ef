/**
 * npm run bench:profile — a CPU profile of mnemo serving memory-on turns (memory store, 50-turn
 * sessions, 16 in flight): self and inclusive time by source file and the hottest functions, in
 * bench/PROFILE.md. The .cpuprofile stays in bench/profiles/ for a flame graph (Chrome DevTools
 * or speedscope).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { request } from 'undici';
import { backgroundDrained, machine, processCpuMs } from './machine.js';
import { uniqueMessage } from './texts.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const STORE = process.env.BENCH_STORE ?? 'memory://';
// BENCH_SESSIONS=32 BENCH_TURNS=1000 profiles long sessions.
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 200);
const TURNS = Number(process.env.BENCH_TURNS ?? 25);
const dir = join(import.meta.dirname, 'profiles');
mkdirSync(dir, { recursive: true });

async function serve(args: string[], script: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...args, '--import', 'tsx', script, ...process.argv.slice(2)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve) =>
    child.stdout!.once('data', (data: Buffer) => resolve(JSON.parse(data.toString()).port)),
  );
  return { child, url: `http://127.0.0.1:${port}` };
}

const provider = await serve([], 'bench/fast-provider.ts');
// BENCH_MEMORY='{"recall":{"enabled":false}}' profiles with other memory settings.
const MEMORY = process.env.BENCH_MEMORY;
const child = spawn(
  process.execPath,
  ['--import', 'tsx', 'bench/mnemo-server.ts', `${provider.url}/v1`, STORE, ...(MEMORY ? [MEMORY] : [])],
  { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
);
/** Asks the server to start or stop its profiler (bench/mnemo-server.ts) and waits for it. */
const profiler = (message: { profile: 'start' | 'stop'; file?: string }) =>
  new Promise<void>((resolve) => {
    child.once('message', () => resolve());
    child.send(message);
  });
const port = await new Promise<number>((resolve) =>
  child.stdout!.once('data', (data: Buffer) => resolve(JSON.parse(data.toString()).port)),
);
const url = `http://127.0.0.1:${port}`;
const body = (content: string) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });

const sessions = Array.from({ length: SESSIONS }, (_, index) => `p-${index}`);
for (const id of sessions) {
  for (let turn = 0; turn < TURNS; turn++) {
    const response = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'x-session-id': id },
      body: body(uniqueMessage()),
    });
    await response.body.text();
  }
}
await backgroundDrained(url);
let next = 0;
await profiler({ profile: 'start' });
const cpuBefore = processCpuMs(child.pid!);
const result = await autocannon({
  url: `${url}/v1/chat/completions`,
  method: 'POST',
  connections: 16,
  duration: SECONDS,
  headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
  body: body('What is the estimated delivery date of my order?'),
  requests: [
    {
      setupRequest: (req) => ({
        ...req,
        headers: { ...req.headers, 'x-session-id': sessions[next++ % sessions.length]! },
        body: body(uniqueMessage()),
      }),
    },
  ],
});
// The background work the load set off (index runs, folds) is part of what its turns cost: read
// the CPU once it has drained. (Read at the end of the load, a 1,000-turn turn looked 1.02× a
// 25-turn one; npm run bench, which drains, read 1.77×: long sessions fold every few dozen turns.)
await backgroundDrained(url);
const cpuPerRequest = (processCpuMs(child.pid!) - cpuBefore) / Math.max(1, result.requests.total);
const file = join(dir, `turn-${Date.now()}.cpuprofile`);
await profiler({ profile: 'stop', file });
console.log(`${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, mnemo CPU ${cpuPerRequest.toFixed(3)} ms/request`);
const exited = new Promise((resolve) => child.once('exit', resolve));
child.kill('SIGTERM');
await exited;
provider.child.kill('SIGTERM');

interface Frame {
  functionName: string;
  url: string;
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as {
  nodes: Array<{ id: number; callFrame: Frame; children?: number[] }>;
  samples: number[];
};
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const where = (frame: Frame) => {
  const url = frame.url;
  if (url.includes('node_modules/'))
    return `pkg ${url
      .split('node_modules/')
      .at(-1)!
      .split('/')
      .slice(0, url.includes('node_modules/@') ? 2 : 1)
      .join('/')}`;
  if (url.includes('/src/') || url.includes('/bench/')) return url.replace(/^.*\/(src|bench)\//, '$1/');
  return url || frame.functionName || '(native)';
};
const selfByFile = new Map<string, number>();
const inclusiveByFile = new Map<string, number>();
const selfByFunction = new Map<string, number>();
const inclusiveByFunction = new Map<string, number>();
for (const sample of profile.samples) {
  const frame = byId.get(sample)!.callFrame;
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  bump(selfByFile, where(frame));
  bump(selfByFunction, `${frame.functionName || '(anonymous)'} (${where(frame)})`);
  const seen = new Set<string>();
  for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
    const caller = byId.get(id)!.callFrame;
    const file = where(caller);
    const name = `${caller.functionName || '(anonymous)'} (${file})`;
    if (file.startsWith('src/') && !seen.has(name)) {
      seen.add(name);
      bump(inclusiveByFunction, name);
    }
    if (seen.has(file)) continue;
    seen.add(file);
    bump(inclusiveByFile, file);
  }
}
const total = profile.samples.length;
const top = (map: Map<string, number>, count: number) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, hits]) => `| ${name} | ${((hits / total) * 100).toFixed(1)}% |`);
const lines = [
  '# npm run bench:profile — where a memory-on turn spends its CPU',
  '',
  `Machine: ${machine()}. mnemo with ${STORE}, ${SESSIONS} sessions of ${TURNS} turns, autocannon at 16 in flight for ${SECONDS} s: ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, mnemo's own CPU ${cpuPerRequest.toFixed(3)} ms per request under that load, the background work it set off and the sampling profiler's own cost included (read once that has drained; bench/RESULTS.md has it unprofiled). The profile covers that load and the drain of its background work, not the start or the fill.${MEMORY ? ` Memory settings: \`${MEMORY}\`.` : ''} Generated ${new Date().toISOString()}.`,
  '',
  '## Self time by file',
  '',
  '| file | share of samples |',
  '| --- | ---: |',
  ...top(selfByFile, 25),
  '',
  '## Inclusive time by file (a file counted once per sample)',
  '',
  '| file | share of samples |',
  '| --- | ---: |',
  ...top(inclusiveByFile, 30),
  '',
  '## Hottest functions (self time)',
  '',
  '| function | share of samples |',
  '| --- | ---: |',
  ...top(selfByFunction, 30),
  '',
  "## mnemo's own functions, inclusive (a function counted once per sample)",
  '',
  '| function | share of samples |',
  '| --- | ---: |',
  ...top(inclusiveByFunction, 40),
  '',
];
writeFileSync(join(import.meta.dirname, 'PROFILE.md'), lines.join('\n'));
console.log(lines.join('\n'));
