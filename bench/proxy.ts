/**
 * npm run bench — what mnemo costs on the request path, against a fast local
 * provider on loopback. Rows: the provider directly (the floor), a bare
 * http-proxy (the practical limit), mnemo without a session header, mnemo with
 * memory on (memory, SQLite, Redis), at 1, 16 and 64 requests in flight; then
 * streaming time to first byte, latency against session length, and memory per
 * session. Writes bench/RESULTS.md. BENCH_SECONDS shortens or lengthens runs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { request } from 'undici';
import { startRedis } from '../test/support/redis-server.js';
import { messageHash, newMessageId } from '../src/memory/messages.js';
import { createStore } from '../src/store/factory.js';
import { machine } from './machine.js';
import { uniqueMessage } from './texts.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = [1, 16, 64];
const WARM_UP_SECONDS = 3;
const SESSIONS = 200;
const children: ChildProcess[] = [];
const pids = new Map<string, number>();

/** CPU time (user + system, ms) a process has used so far, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

async function serve(script: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (data: Buffer) => resolve(JSON.parse(data.toString().split('\n')[0]!).port));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  pids.set(url, child.pid!);
  return url;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const body = (content: string, stream = false) => JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content }] });

interface Load {
  p50: number;
  p99: number;
  rps: number;
  errors: number;
  /** CPU the server process spent per request (ms), from /proc; the provider's and autocannon's are not in it. */
  cpuPerRequest: number;
}

async function load(url: string, connections: number, sessions?: string[], seconds = SECONDS): Promise<Load> {
  let next = 0;
  const pid = pids.get(url)!;
  const cpuBefore = cpuMs(pid);
  const result = await autocannon({
    url: `${url}/v1/chat/completions`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
    body: body('What is the estimated delivery date of my order?'),
    requests: sessions
      ? [
          {
            setupRequest: (req) => {
              req.headers = { ...req.headers, 'x-session-id': sessions[next++ % sessions.length]! };
              req.body = body(uniqueMessage());
              return req;
            },
          },
        ]
      : [
          {
            setupRequest: (req) => {
              req.body = body(uniqueMessage());
              return req;
            },
          },
        ],
  });
  const cpuPerRequest = (cpuMs(pid) - cpuBefore) / Math.max(1, result.requests.total);
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    rps: result.requests.average,
    errors: result.errors + result.non2xx,
    cpuPerRequest,
  };
}

/** Sessions of `turns` turns, built through mnemo as a stateless client would. */
async function fill(url: string, prefix: string, count: number, turns: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
  let cursor = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (cursor < ids.length) {
        const id = ids[cursor++]!;
        for (let turn = 0; turn < turns; turn++) {
          const response = await request(`${url}/v1/chat/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'x-session-id': id },
            body: body(uniqueMessage()),
          });
          await response.body.text();
        }
      }
    }),
  );
  return ids;
}

/**
 * Waits until summary folds the fill set off have finished (mnemo_folds_total stops moving), so
 * a row measures turns, not the backlog of a bulk load.
 */
async function settle(url: string): Promise<void> {
  const folds = async () => {
    const text = await (await request(`${url}/metrics`)).body.text();
    return [...text.matchAll(/^mnemo_folds_total\{[^}]*\} (\d+)/gm)].reduce((total, match) => total + Number(match[1]), 0);
  };
  let previous = -1;
  for (let current = await folds(); current !== previous; current = await folds()) {
    previous = current;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** Sequential requests: p50 time to first byte and to the end, and the first request's total. */
async function sequential(url: string, count: number, options: { session?: string; stream?: boolean }) {
  const firstBytes: number[] = [];
  const totals: number[] = [];
  const overheads: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    const response = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer sk-bench',
        ...(options.session && { 'x-session-id': options.session }),
      },
      body: body(uniqueMessage(), options.stream),
    });
    const overhead = response.headers['x-mnemo-overhead-ms'];
    if (typeof overhead === 'string') overheads.push(Number(overhead));
    let first = true;
    for await (const _chunk of response.body) {
      if (first) {
        firstBytes.push(performance.now() - started);
        first = false;
      }
    }
    totals.push(performance.now() - started);
  }
  return { ttfb: median(firstBytes), total: median(totals), first: totals[0] ?? 0, overhead: median(overheads) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const ms = (value: number) => value.toFixed(2);

async function main() {
  const lines: string[] = [];
  const log = (line = '') => {
    console.log(line);
    lines.push(line);
  };
  log('# npm run bench — proxy overhead');
  log('');
  log(
    `Machine: ${machine()}. ${SECONDS} s per run after a ${WARM_UP_SECONDS} s unrecorded warm-up per target (sessions filled first, summary folds drained), autocannon in the bench process, the provider and each proxy in processes of their own. Generated ${new Date().toISOString()}.`,
  );
  log('');

  const provider = await serve('bench/fast-provider.ts', []);
  const bare = await serve('bench/bare-proxy.ts', [provider]);
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-bench-'));
  const rows: Array<{ name: string; concurrency: number; load: Load }> = [];
  // One request at a time, timed in the bench process: what a request costs without queueing.
  const alone: Array<{ name: string; p50: number; overhead?: number }> = [];
  const timeAlone = async (name: string, url: string, session?: string) => {
    await sequential(url, 100, { session });
    const result = await sequential(url, 300, { session });
    alone.push({ name, p50: result.total, overhead: session ? result.overhead : undefined });
  };
  const measure = async (name: string, url: string, sessions?: string[]) => {
    // Unrecorded warm-up: JIT, connection pools and heap sizing settle in the first seconds of load.
    await load(url, 16, sessions, WARM_UP_SECONDS);
    for (const concurrency of CONCURRENCY) {
      const result = await load(url, concurrency, sessions);
      rows.push({ name, concurrency, load: result });
      console.log(
        `${name} c=${concurrency}: p50 ${result.p50} ms, p99 ${result.p99} ms, ${result.rps.toFixed(0)} req/s, errors ${result.errors}`,
      );
    }
  };

  await measure('1. direct to provider', provider);
  await measure('2. bare http-proxy', bare);
  await timeAlone('direct to provider', provider);
  await timeAlone('bare http-proxy', bare);
  const stores: Array<[string, string]> = [
    ['memory', 'memory://'],
    ['sqlite', `sqlite://${join(dir, 'bench.db')}`],
    ['redis', redis.url],
  ];
  for (const [label, store] of stores) {
    const mnemoUrl = await serve('bench/mnemo-server.ts', [`${provider}/v1`, store]);
    if (label === 'memory') await measure('3. mnemo, no session header', mnemoUrl);
    const sessions = await fill(mnemoUrl, `s-${label}`, SESSIONS, 25);
    await settle(mnemoUrl);
    await measure(`4. mnemo memory on, ${label} store, 50-turn sessions`, mnemoUrl, sessions);
    await timeAlone(`mnemo memory on, ${label} store`, mnemoUrl, sessions[0]);
    await stop(children.pop());
  }

  log(
    '| row | in flight | p50 ms | p99 ms | req/s | errors | p50 added vs 1 | p99 added vs 1 | throughput vs 2 | server CPU per request ms |',
  );
  log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    const direct = rows.find((candidate) => candidate.name.startsWith('1.') && candidate.concurrency === row.concurrency)!.load;
    const proxy = rows.find((candidate) => candidate.name.startsWith('2.') && candidate.concurrency === row.concurrency)!.load;
    log(
      `| ${row.name} | ${row.concurrency} | ${ms(row.load.p50)} | ${ms(row.load.p99)} | ${row.load.rps.toFixed(0)} | ${row.load.errors} | ${ms(row.load.p50 - direct.p50)} | ${ms(row.load.p99 - direct.p99)} | ${((row.load.rps / proxy.rps) * 100).toFixed(0)}% | ${row.load.cpuPerRequest.toFixed(3)} |`,
    );
  }
  log('');
  log('autocannon reports latency in whole milliseconds at these speeds, so sub-millisecond differences read as 0 or 1.');
  log('');
  const directAlone = alone[0]!.p50;
  const bareAlone = alone[1]!.p50;
  log('## One request at a time (sequential, p50, timed in the bench process)');
  log('');
  log('| path | p50 ms | added vs direct | added vs bare proxy | mnemo before the provider call (X-Mnemo-Overhead-Ms) |');
  log('| --- | ---: | ---: | ---: | ---: |');
  for (const row of alone) {
    log(
      `| ${row.name} | ${ms(row.p50)} | ${ms(row.p50 - directAlone)} | ${ms(row.p50 - bareAlone)} | ${row.overhead === undefined ? '' : ms(row.overhead)} |`,
    );
  }
  log('');

  // 5. Streaming: 50-chunk reply, sequential requests.
  const mnemoUrl = await serve('bench/mnemo-server.ts', [`${provider}/v1`, `sqlite://${join(dir, 'stream.db')}`]);
  // Warm-up (unrecorded) for each path, so no row pays for JIT and connection set-up.
  await sequential(provider, 100, { stream: true });
  await sequential(bare, 100, { stream: true });
  const firstTurn = (await sequential(mnemoUrl, 100, { stream: true, session: 'stream-warm-up' })).first;
  const directStream = await sequential(provider, 300, { stream: true });
  const bareStream = await sequential(bare, 300, { stream: true });
  const mnemoStream = await sequential(mnemoUrl, 300, { stream: true, session: 'stream-1' });
  log('## Streaming (a unique 30-60-word reply, a word per chunk, sequential, p50)');
  log('');
  log('| path | time to first byte ms | total ms |');
  log('| --- | ---: | ---: |');
  log(`| direct | ${ms(directStream.ttfb)} | ${ms(directStream.total)} |`);
  log(`| bare http-proxy | ${ms(bareStream.ttfb)} | ${ms(bareStream.total)} |`);
  log(`| mnemo, memory on (SQLite) | ${ms(mnemoStream.ttfb)} | ${ms(mnemoStream.total)} |`);
  log(`| added by mnemo over direct | ${ms(mnemoStream.ttfb - directStream.ttfb)} | ${ms(mnemoStream.total - directStream.total)} |`);
  log(`| added by mnemo over the bare proxy | ${ms(mnemoStream.ttfb - bareStream.ttfb)} | ${ms(mnemoStream.total - bareStream.total)} |`);
  log('');
  log(
    `A proxy process in the path costs time to first byte by itself: the bare http-proxy adds ${ms(bareStream.ttfb - directStream.ttfb)} ms here (two more loopback hops and wake-ups). The first memory-on turn after mnemo started took ${ms(firstTurn)} ms end to end (store opened, tokenizer loaded at start).`,
  );
  log('');

  // Latency against session length (SQLite, the default store).
  log('## A turn at session length 10, 1,000 and 10,000 turns (SQLite, sequential, round robin, p50)');
  log('');
  log('| turns already in the session | p50 ms |');
  log('| ---: | ---: |');
  const lengths = [10, 1_000, 10_000];
  const ids: string[] = [];
  for (const turns of lengths) ids.push(...(await fill(mnemoUrl, `len${turns}`, 1, turns)));
  // The fill leaves summary folds queued; measure turns, not that backlog (as the load rows do).
  await settle(mnemoUrl);
  // Round robin, one turn per session at a time, so every length sees the same machine: run-to-run
  // drift on this shared box is larger than the differences measured here.
  const samples: number[][] = lengths.map(() => []);
  for (let round = 0; round < 200; round++) {
    for (const [position, id] of ids.entries()) samples[position]!.push((await sequential(mnemoUrl, 1, { session: id })).total);
  }
  const byLength = samples.map(median);
  lengths.forEach((turns, position) => log(`| ${turns} | ${ms(byLength[position]!)} |`));
  log('');
  await stop(children.pop());

  // Memory per idle session: 100,000 sessions of 20 turns written straight through the store.
  const footprint = await footprintPerSession(redis.url, redis.port);
  log('## Memory per idle session (100,000 sessions of 20 turns)');
  log('');
  log(`| store | total | per session | message text per session | overhead per session beyond text |`);
  log('| --- | ---: | ---: | ---: | ---: |');
  for (const row of footprint) {
    log(
      `| ${row.store} | ${(row.total / 2 ** 20).toFixed(1)} MiB | ${row.perSession.toFixed(0)} B | ${row.textPerSession.toFixed(0)} B | ${(row.perSession - row.textPerSession).toFixed(0)} B |`,
    );
  }
  log('');

  // Targets.
  const at = (prefix: string, concurrency: number) =>
    rows.find((row) => row.name.startsWith(prefix) && row.concurrency === concurrency)!.load;
  const direct64 = at('1.', 64);
  const memory64 = rows.find((row) => row.name.includes('memory store') && row.concurrency === 64)!.load;
  const redis64 = rows.find((row) => row.name.includes('redis store') && row.concurrency === 64)!.load;
  const bare64 = at('2.', 64);
  const redisFootprint = footprint.find((row) => row.store === 'redis')!;
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  const cpuBound = [
    memory64.p50 - direct64.p50 <= 0.5,
    memory64.p99 - direct64.p99 <= 3,
    redis64.p50 - direct64.p50 <= 1.5,
    memory64.rps >= 0.7 * bare64.rps,
  ];
  log('## Targets');
  log('');
  log(
    `- added p50 over direct ≤ 0.5 ms at 64 in flight, memory store: ${verdict(memory64.p50 - direct64.p50 <= 0.5)} (${ms(memory64.p50 - direct64.p50)} ms)`,
  );
  log(
    `- added p99 over direct ≤ 3 ms at 64 in flight, memory store: ${verdict(memory64.p99 - direct64.p99 <= 3)} (${ms(memory64.p99 - direct64.p99)} ms)`,
  );
  log(`- with Redis, added p50 ≤ 1.5 ms: ${verdict(redis64.p50 - direct64.p50 <= 1.5)} (${ms(redis64.p50 - direct64.p50)} ms)`);
  log(
    `- throughput with memory on ≥ 70% of the bare proxy: ${verdict(memory64.rps >= 0.7 * bare64.rps)} (${((memory64.rps / bare64.rps) * 100).toFixed(0)}%)`,
  );
  log(
    `- streaming adds ≤ 1 ms to time to first byte: ${verdict(mnemoStream.ttfb - directStream.ttfb <= 1)} (${ms(mnemoStream.ttfb - directStream.ttfb)} ms)`,
  );
  log(`- turn 10,000 costs ≤ 1.2× turn 10: ${verdict(byLength[2]! <= 1.2 * byLength[0]!)} (${(byLength[2]! / byLength[0]!).toFixed(2)}×)`);
  log(
    `- ≤ 2 KB of Redis memory per idle session beyond its message text: ${verdict(redisFootprint.perSession - redisFootprint.textPerSession <= 2048)} (${(redisFootprint.perSession - redisFootprint.textPerSession).toFixed(0)} B)`,
  );
  log('');

  // Why: the latency and throughput targets are CPU budgets, so compare CPU per request.
  const noSession64 = at('3.', 64);
  log(cpuBound.every(Boolean) ? '## CPU per request' : '## Why the targets marked not met are not met');
  log('');
  const bare64Added = bare64.p50 - direct64.p50;
  // The CPU a memory-on turn may take for 70% of the bare proxy's throughput on a saturated 2-core box.
  const turnBudget = 2000 / bare64.rps / 0.7 - (2000 / bare64.rps - bare64.cpuPerRequest);
  const redisAlone = alone.find((row) => row.name.includes('redis'))!;
  log(
    `**At 64 in flight, latency is queueing.** The box is saturated (provider, autocannon and proxy share 2 cores), so p50 ≈ requests in flight ÷ throughput: the bare http-proxy itself adds ${ms(bare64Added)} ms p50 at 64 in flight. Adding ≤ 0.5 ms at 64 in flight would need over ${(64 / ((direct64.p50 + 0.5) / 1000)).toFixed(0)} req/s, more than the bare proxy serves (${bare64.rps.toFixed(0)}), so the 64-in-flight latency targets restate the throughput target on this machine. Without queueing (the sequential table), a memory-on turn adds ${ms(alone[2]!.p50 - bareAlone)} ms over the bare proxy with the memory store and ${ms(redisAlone.p50 - bareAlone)} ms with Redis (Redis round trips: the head read and the commit, plus recall's postings once a session has a summary; the window's sealed chunks come from the in-process chunk cache).`,
  );
  log('');
  log(
    `**Streaming.** Time to first byte includes everything before the provider call (${ms(mnemoStream.overhead)} ms of mnemo's own time, by X-Mnemo-Overhead-Ms) plus one more process in the path, which the bare proxy alone pays ${ms(bareStream.ttfb - directStream.ttfb)} ms for here; ≤ 1 ms over direct leaves ${ms(Math.max(0, 1 - (bareStream.ttfb - directStream.ttfb)))} ms for memory.`,
  );
  log('');
  log(
    `**Session length.** From 1,000 to 10,000 turns a turn costs ${(byLength[2]! / byLength[1]!).toFixed(2)}× as much: flat, since a turn reads the head, the window's chunks and its recall terms' capped postings, never the whole history. From 10 to 1,000 turns it costs ${(byLength[1]! / byLength[0]!).toFixed(2)}×: the work a session has once it is long and a 10-turn one has not yet (a summary in the prompt, a recall search over the archive, a full window to assemble and send), paid once and not growing further.`,
  );
  log('');
  log(
    `**Throughput is CPU per request.** Per request, the bare http-proxy spends ${bare64.cpuPerRequest.toFixed(3)} ms of CPU; mnemo without a session header ${noSession64.cpuPerRequest.toFixed(3)} ms (${(noSession64.cpuPerRequest / bare64.cpuPerRequest).toFixed(1)}×: the same http-proxy behind http-proxy-middleware, plus mnemo's request metrics); mnemo with memory on (memory store) ${memory64.cpuPerRequest.toFixed(3)} ms (${(memory64.cpuPerRequest / bare64.cpuPerRequest).toFixed(1)}×). With both cores busy, the bare row's ${bare64.rps.toFixed(0)} req/s is ${(2000 / bare64.rps).toFixed(3)} ms of CPU per request for proxy, provider and load generator together; 70% of that throughput leaves mnemo ${turnBudget.toFixed(3)} ms of CPU per turn — ${(turnBudget / noSession64.cpuPerRequest).toFixed(1)}× what mnemo spends on a request without a session, before any memory work.`,
  );
  log('');
  log(
    "A memory-on turn does work a pass-through never does, and each piece is already paid once: parse the client's JSON, hash and tokenize the new message, read and decode the session head (sealed chunks of the window come decoded from the chunk cache; past the summary, the recall postings and hits are read), assemble the prompt, serialize it, call the provider with undici, parse its reply, tokenize and hash it, encode and write the head, record a dozen metrics. bench/PROFILE.md (`npm run bench:profile`) shows no single hot spot: socket writes (the same two a pass-through makes, ~15% of a turn), undici, JSON of bodies and store records, assembly and metrics each take a few percent. Chat requests already bypass express (a plain node:http handler reads the body once); what is left is the cost of doing the memory work in JavaScript at all.",
  );
  log('');

  writeFileSync(new URL('./RESULTS.md', import.meta.url), lines.join('\n'));
  await stop(children.pop());
  await stop(children.pop());
  await redis.stop();
}

async function footprintPerSession(redisUrl: string, redisPort: number) {
  const COUNT = Number(process.env.BENCH_FOOTPRINT_SESSIONS ?? 100_000);
  const messages = (session: number) =>
    Array.from({ length: 40 }, (_, index) => {
      const content = index % 2 === 0 ? `Turn ${index / 2}: where is order ${session}?` : `Order ${session} ships tomorrow.`;
      // Real-sized identity: ids and hashes made the way mnemo makes them.
      const message = { role: index % 2 === 0 ? 'user' : 'assistant', content };
      return { id: newMessageId(), message, tokens: 12, hash: messageHash(message), at: Date.now() };
    });
  const textBytes = (list: ReturnType<typeof messages>) =>
    list.reduce((total, stored) => total + Buffer.byteLength(stored.message.content), 0);
  const out: Array<{ store: string; total: number; perSession: number; textPerSession: number }> = [];
  for (const [label, url] of [
    ['memory (process RSS)', 'memory://'],
    ['redis', redisUrl],
  ] as const) {
    // Sessions only: the chunk cache is a fixed per-instance allowance (store.chunk_cache), not a per-session cost.
    const store = await createStore({ url, timeoutMs: 10_000, chunkCacheBytes: 0 });
    global.gc?.();
    const before = label === 'redis' ? await redisUsedMemory(redisPort) : process.memoryUsage().rss;
    let text = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < COUNT) {
          const session = next++;
          const list = messages(session);
          text += textBytes(list);
          await store.commit(`bench:idle-${session}`, 0, { keep: 0, append: list });
        }
      }),
    );
    global.gc?.();
    const after = label === 'redis' ? await redisUsedMemory(redisPort) : process.memoryUsage().rss;
    out.push({ store: label, total: after - before, perSession: (after - before) / COUNT, textPerSession: text / COUNT });
    await store.close();
  }
  return out;
}

async function redisUsedMemory(port: number): Promise<number> {
  const { execFileSync } = await import('node:child_process');
  const info = execFileSync('redis-cli', ['-p', String(port), 'info', 'memory']).toString();
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

try {
  await main();
} finally {
  for (const child of children) child.kill('SIGTERM');
}
