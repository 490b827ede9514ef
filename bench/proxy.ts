/**
 * npm run bench — what a memory turn costs, side by side with its peers in one run. Each target
 * is a process of its own in front of the same fast provider: the provider directly, a bare
 * Node proxy (http-proxy), Portkey's gateway (no memory; installed on demand), mnemo without a
 * session header, and mnemo with memory on the in-process store, SQLite and Redis, on 40-turn
 * sessions and on 1,000-turn ones. Load is a stateless client (only the new message) over many
 * sessions; every message and every reply is unique. Each server's own CPU time per request is
 * read from /proc. Then streaming time to first byte one request at a time, and memory per idle
 * session. Writes bench/RESULTS.md. BENCH_SECONDS shortens or lengthens runs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { request } from 'undici';
import { freePort, startRedis } from '../test/support/redis-server.js';
import { messageHash, newMessageId } from '../src/memory/messages.js';
import { createStore } from '../src/store/factory.js';
import { backgroundDrained, machine, processCpuMs } from './machine.js';
import { portkeyHeaders, portkeyScript } from './portkey.js';
import { uniqueMessage } from './texts.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = [1, 16];
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARM_UP_SECONDS = 3;
// 200 sessions a round: each round's load adds turns to every session, and more sessions keep the
// short ones short over the rounds.
const SHORT = { sessions: 200 * ROUNDS, turns: 40 };
const LONG = { sessions: 32, turns: 1_000 };
const MEMORY_ON = `mnemo, memory on, memory store, ${SHORT.turns}-turn sessions`;
const RECALL_OFF = `mnemo, memory on but recall off, memory store, ${SHORT.turns}-turn sessions`;
const children: ChildProcess[] = [];

const cpuMs = processCpuMs;

interface Server {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Headers every request to it carries (Portkey's routing). */
  headers?: Record<string, string>;
}

/** A bench script in its own process; it prints {"port": n} when it listens. */
async function serve(script: string, args: string[]): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (data: Buffer) => resolve(JSON.parse(data.toString().split('\n')[0]!).port));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, child };
}

async function servePortkey(provider: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [portkeyScript(), `--port=${port}`, '--headless'], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  const headers = portkeyHeaders(provider);
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await request(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', ...headers },
        body: body('ready?'),
      });
      await response.body.text();
      if (response.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (attempt > 100) throw new Error('the Portkey gateway did not start');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { url, pid: child.pid!, child, headers };
}

async function stop(server: Server | undefined): Promise<void> {
  const child = server?.child;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const body = (content: string, stream = false) => JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content }] });

interface Load {
  rps: number;
  errors: number;
  /** CPU the server process spent per request (ms), from /proc; the provider's and autocannon's are not in it. */
  cpu: number;
  /** CPU of a process the server depends on (Redis), per request. */
  sideCpu: number;
}

/**
 * `drained`: waits until the background work the load set off has finished before the CPU is read,
 * so a turn's deferred work (index runs, folds) is counted in its own row, not the next one's.
 */
async function load(
  server: Server,
  connections: number,
  sessions?: string[],
  seconds = SECONDS,
  sidePid?: number,
  drained?: () => Promise<void>,
  /** Requests per second to hold the load at (autocannon's overallRate); unset: as fast as it answers. */
  rate?: number,
): Promise<Load> {
  let next = 0;
  const cpuBefore = cpuMs(server.pid);
  const sideBefore = sidePid ? cpuMs(sidePid) : 0;
  const result = await autocannon({
    url: `${server.url}/v1/chat/completions`,
    method: 'POST',
    connections,
    ...(rate !== undefined && { overallRate: Math.round(rate) }),
    duration: seconds,
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', ...server.headers },
    requests: [
      {
        setupRequest: (req) => {
          if (sessions) req.headers = { ...req.headers, 'x-session-id': sessions[next++ % sessions.length]! };
          req.body = body(uniqueMessage());
          return req;
        },
      },
    ],
  });
  await drained?.();
  const total = Math.max(1, result.requests.total);
  return {
    rps: result.requests.total / seconds,
    errors: result.errors + result.non2xx,
    cpu: (cpuMs(server.pid) - cpuBefore) / total,
    sideCpu: sidePid ? (cpuMs(sidePid) - sideBefore) / total : 0,
  };
}

/** Sessions of `turns` turns, built through mnemo as a stateless client would. */
async function fill(url: string, prefix: string, count: number, turns: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
  // Turn by turn across sessions (one request per session in flight), as users would.
  const order = Array.from({ length: turns }, (_, turn) => ids.map((id) => ({ id, turn }))).flat();
  let cursor = 0;
  await Promise.all(
    Array.from({ length: Math.min(16, count) }, async () => {
      while (cursor < order.length) {
        const { id } = order[cursor++]!;
        const response = await request(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'x-session-id': id },
          body: body(uniqueMessage()),
        });
        await response.body.text();
      }
    }),
  );
  return ids;
}

/** Sequential requests: p50 time to first byte and to the end. */
async function sequential(server: Server, count: number, options: { sessions?: string[]; stream?: boolean }) {
  const firstBytes: number[] = [];
  const totals: number[] = [];
  for (let index = 0; index < count; index++) {
    const session = options.sessions?.[index % options.sessions.length];
    const started = performance.now();
    const response = await request(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer sk-bench',
        ...server.headers,
        ...(session && { 'x-session-id': session }),
      },
      body: body(uniqueMessage(), options.stream),
    });
    let first = true;
    for await (const _chunk of response.body) {
      if (first) {
        firstBytes.push(performance.now() - started);
        first = false;
      }
    }
    totals.push(performance.now() - started);
  }
  return { ttfb: median(firstBytes), total: median(totals) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const ms = (value: number, digits = 3) => value.toFixed(digits);

interface Target {
  name: string;
  server: Server;
  sessions?: string[];
  sidePid?: number;
  seconds?: number;
}

/** A row from its rounds: the median of each figure, and the range of the server's CPU. */
function medianRow(rounds: Row[]): Row {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const pick = (field: keyof Load) => median(rounds.map((round) => round.load[field]));
  const cpus = rounds.map((round) => round.load.cpu);
  const alone = rounds.flatMap((round) => (round.alone === undefined ? [] : [round.alone]));
  return {
    name: rounds[0]!.name,
    concurrency: rounds[0]!.concurrency,
    load: { rps: pick('rps'), errors: Math.max(...rounds.map((round) => round.load.errors)), cpu: pick('cpu'), sideCpu: pick('sideCpu') },
    alone: alone.length > 0 ? median(alone) : undefined,
    cpuRange: [Math.min(...cpus), Math.max(...cpus)],
  };
}

interface Row {
  name: string;
  concurrency: number;
  load: Load;
  /** p50 of one request at a time (c=1 only), timed in the bench process. */
  alone?: number;
  /** The lowest and highest CPU per request over the rounds. */
  cpuRange?: [number, number];
}

async function main() {
  const lines: string[] = [];
  const log = (line = '') => {
    console.log(line);
    lines.push(line);
  };
  const provider = await serve('bench/fast-provider.ts', []);
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-bench-'));
  const rows: Row[] = [];

  // Every target is started and filled first, then measured in interleaved rounds: this shared
  // machine drifts for minutes at a time, so rows measured minutes apart were not comparable (one
  // run read a 1,000-turn turn at 1.37× a 40-turn one, the next at 1.61×, on the same code). Each
  // row reports the median of its rounds and the range of its CPU.
  const bare = await serve('bench/bare-proxy.ts', [provider.url]);
  const portkey = await servePortkey(provider.url);
  const targets: Target[] = [
    // The provider's own CPU is not any target's; its row is the floor for latency.
    { name: 'direct to provider', server: provider },
    { name: 'bare Node proxy (http-proxy)', server: bare },
    { name: 'Portkey gateway 1.15.2 (no memory)', server: portkey },
  ];
  const stores: Array<[string, string, number | undefined]> = [
    ['memory store', 'memory://', undefined],
    ['SQLite', `sqlite://${join(dir, 'bench.db')}`, undefined],
    ['Redis', redis.url, redis.pid],
  ];
  const mnemos: Server[] = [];
  for (const [label, url, sidePid] of stores) {
    const mnemo = await serve('bench/mnemo-server.ts', [`${provider.url}/v1`, url]);
    mnemos.push(mnemo);
    if (label === 'memory store') targets.push({ name: 'mnemo, no session', server: mnemo });
    console.log(`filling ${SHORT.sessions} sessions of ${SHORT.turns} turns (${label})…`);
    const sessions = await fill(mnemo.url, `s-${label.replace(/\W/g, '')}`, SHORT.sessions, SHORT.turns);
    await backgroundDrained(mnemo.url);
    targets.push({ name: `mnemo, memory on, ${label}, ${SHORT.turns}-turn sessions`, server: mnemo, sessions, sidePid });
    if (label === 'memory store') {
      // What recall (the index runs and the search) costs of a turn: the same sessions and load,
      // recall off.
      const plain = await serve('bench/mnemo-server.ts', [`${provider.url}/v1`, url, JSON.stringify({ recall: { enabled: false } })]);
      mnemos.push(plain);
      const plainSessions = await fill(plain.url, 's-plain', SHORT.sessions, SHORT.turns);
      await backgroundDrained(plain.url);
      targets.push({
        name: RECALL_OFF,
        server: plain,
        sessions: plainSessions,
      });
      // A process of its own, like every target: the in-process store's CPU per turn grows with
      // everything the heap holds (a bigger heap makes each collection costlier), and sharing
      // the 40-turn row's process put 32,000 long-session turns on that row's bill (0.75 ms a
      // turn alone, 0.92–1.22 beside them).
      const longMnemo = await serve('bench/mnemo-server.ts', [`${provider.url}/v1`, url]);
      mnemos.push(longMnemo);
      console.log(`filling ${LONG.sessions} sessions of ${LONG.turns} turns…`);
      const long = await fill(longMnemo.url, 'long', LONG.sessions, LONG.turns);
      await backgroundDrained(longMnemo.url);
      // Long sessions fold their summaries in bursts: a longer run, so a row does not hinge on
      // whether a burst fell inside it (5 s runs of this row read 1.20× and 1.92× the 40-turn one).
      targets.push({
        name: `mnemo, memory on, ${label}, ${LONG.turns}-turn sessions`,
        server: longMnemo,
        sessions: long,
        seconds: 3 * SECONDS,
      });
    }
  }
  // Unrecorded warm-up: JIT, connection pools and heap sizing settle in the first seconds of load.
  for (const target of targets) await load(target.server, 16, target.sessions, WARM_UP_SECONDS);
  const samples = new Map<string, Row[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const { name, server, sessions, sidePid, seconds } of targets) {
      for (const concurrency of CONCURRENCY) {
        const result = await load(
          server,
          concurrency,
          sessions,
          seconds ?? SECONDS,
          sidePid,
          sessions && (() => backgroundDrained(server.url)),
        );
        const alone = concurrency === 1 ? (await sequential(server, 300, { sessions })).total : undefined;
        // What the one-at-a-time requests set off is nobody's row: let it finish.
        if (alone !== undefined && sessions) await backgroundDrained(server.url);
        if (result.errors > 0)
          throw new Error(`${name} c=${concurrency}: ${result.errors} requests failed; a row with errors measures nothing`);
        const key = `${name}@${concurrency}`;
        samples.set(key, [...(samples.get(key) ?? []), { name, concurrency, load: result, alone }]);
        if (name === RECALL_OFF && concurrency === 16) {
          // CPU per request changes with throughput (how many requests share each pass of the
          // event loop and each syscall batch, how hard the processes contend for two cores), so
          // rows at different rates do not subtract: recall's share is read with recall off held
          // at the rate the memory-on row reached this round.
          const memoryOn = samples.get(`${MEMORY_ON}@16`)!.at(-1)!.load;
          const held = await load(
            server,
            16,
            sessions,
            SECONDS,
            undefined,
            sessions && (() => backgroundDrained(server.url)),
            memoryOn.rps,
          );
          samples.set(`${name}@held`, [...(samples.get(`${name}@held`) ?? []), { name, concurrency, load: held }]);
        }
        console.log(
          `round ${round} ${name} c=${concurrency}: ${result.rps.toFixed(0)} req/s, CPU ${ms(result.cpu)} ms/request${alone === undefined ? '' : `, alone p50 ${ms(alone)} ms`}`,
        );
      }
    }
  }
  const held = medianRow(samples.get(`${RECALL_OFF}@held`)!);
  samples.delete(`${RECALL_OFF}@held`);
  for (const rounds of samples.values()) rows.push(medianRow(rounds));
  await stop(portkey);
  await stop(bare);
  for (const mnemo of mnemos) await stop(mnemo);

  // Streaming, one request at a time: time to first byte.
  const streamBare = await serve('bench/bare-proxy.ts', [provider.url]);
  const streamMnemo = await serve('bench/mnemo-server.ts', [`${provider.url}/v1`, 'memory://']);
  const streamSessions = await fill(streamMnemo.url, 'stream', 20, 20);
  await backgroundDrained(streamMnemo.url);
  for (const server of [provider, streamBare, streamMnemo])
    await sequential(server, 200, { stream: true, sessions: server === streamMnemo ? streamSessions : undefined });
  const directStream = await sequential(provider, 500, { stream: true });
  const bareStream = await sequential(streamBare, 500, { stream: true });
  const mnemoStream = await sequential(streamMnemo, 500, { stream: true, sessions: streamSessions });
  await stop(streamMnemo);
  await stop(streamBare);

  const footprint = await footprintPerSession(redis.url, redis.port);

  // The report.
  const row = (prefix: string, concurrency: number) =>
    rows.find((candidate) => candidate.name.startsWith(prefix) && candidate.concurrency === concurrency)!;
  log('# npm run bench — what a memory turn costs, beside its peers');
  log('');
  log(
    `Machine: ${machine()}. Generated ${new Date().toISOString()}. Every target is its own process in front of the same fast provider (bench/fast-provider.ts: no tokenizing, no logging), all started and filled first, then measured in ${ROUNDS} interleaved rounds (target after target, round after round): each row is the median of its rounds, with the range of its CPU, since this shared machine drifts for minutes at a time. Load: autocannon in the bench process, ${SECONDS} s per row and round (${3 * SECONDS} s for the 1,000-turn row) after a ${WARM_UP_SECONDS} s unrecorded warm-up; a stateless client (only the new message per request) spread over many sessions, every message a unique 30–60-word text (bench/texts.ts) and every reply unique. Sessions are filled through mnemo first and its background work (folds, index runs) is drained. **CPU** is the server process's own user + system time per request, from /proc (Redis's own CPU is shown beside mnemo's).`,
  );
  log('');
  for (const concurrency of CONCURRENCY) {
    const bareRow = row('bare', concurrency).load;
    const portkeyRow = row('Portkey', concurrency).load;
    log(`## ${concurrency === 1 ? 'One request in flight (c=1)' : `${concurrency} requests in flight (c=${concurrency})`}`);
    log('');
    log(
      `| target | own CPU ms/request | CPU range over rounds | × bare | × Portkey | req/s | req/s vs Portkey | errors${concurrency === 1 ? ' | p50 ms, one at a time |' : ' |'}`,
    );
    log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---:${concurrency === 1 ? ' | ---: |' : ' |'}`);
    for (const entry of rows.filter((candidate) => candidate.concurrency === concurrency)) {
      const { cpu, sideCpu, rps, errors } = entry.load;
      const direct = entry.name.startsWith('direct');
      const cpuText = direct ? '(the provider)' : `${ms(cpu)}${sideCpu > 0 ? ` (+ Redis ${ms(sideCpu)})` : ''}`;
      const range = direct || !entry.cpuRange ? '' : `${ms(entry.cpuRange[0])}–${ms(entry.cpuRange[1])}`;
      log(
        `| ${entry.name} | ${cpuText} | ${range} | ${direct ? '' : ms((cpu + sideCpu) / bareRow.cpu, 1)} | ${direct ? '' : ms((cpu + sideCpu) / portkeyRow.cpu, 2)} | ${rps.toFixed(0)} | ${ms(rps / portkeyRow.rps, 2)}× | ${errors}${concurrency === 1 ? ` | ${ms(entry.alone ?? 0, 2)} |` : ' |'}`,
      );
    }
    log('');
  }
  log('## Streaming, one request at a time (a unique 30–60-word reply, a word per chunk, p50)');
  log('');
  log('| path | time to first byte ms | total ms |');
  log('| --- | ---: | ---: |');
  log(`| direct | ${ms(directStream.ttfb, 2)} | ${ms(directStream.total, 2)} |`);
  log(`| bare Node proxy | ${ms(bareStream.ttfb, 2)} | ${ms(bareStream.total, 2)} |`);
  log(`| mnemo, memory on (memory store, 20-turn sessions) | ${ms(mnemoStream.ttfb, 2)} | ${ms(mnemoStream.total, 2)} |`);
  log(`| mnemo over the bare proxy | ${ms(mnemoStream.ttfb - bareStream.ttfb, 2)} | ${ms(mnemoStream.total - bareStream.total, 2)} |`);
  log('');
  log('## Memory per idle session (100,000 sessions of 20 turns)');
  log('');
  log('| store | total | per session | message text per session | overhead per session beyond text |');
  log('| --- | ---: | ---: | ---: | ---: |');
  for (const entry of footprint) {
    log(
      `| ${entry.store} | ${(entry.total / 2 ** 20).toFixed(1)} MiB | ${entry.perSession.toFixed(0)} B | ${entry.textPerSession.toFixed(0)} B | ${(entry.perSession - entry.textPerSession).toFixed(0)} B |`,
    );
  }
  log('');

  const bare16 = row('bare', 16).load;
  const portkey16 = row('Portkey', 16).load;
  const memory16 = row(`mnemo, memory on, memory store, ${SHORT.turns}`, 16).load;
  const long16 = row(`mnemo, memory on, memory store, ${LONG.turns}`, 16).load;
  const sqlite16 = row('mnemo, memory on, SQLite', 16).load;
  const redis16 = row('mnemo, memory on, Redis', 16).load;
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  const times = (value: number) => `${value.toFixed(1)}×`;
  log('## Targets (issue #17, c=16 unless named)');
  log('');
  log(
    `- memory on, memory store: own CPU ≤ 3× the bare proxy's: ${verdict(memory16.cpu <= 3 * bare16.cpu)} (${times(memory16.cpu / bare16.cpu)})`,
  );
  log(
    `- memory on, memory store: throughput ≥ 1.5× Portkey's: ${verdict(memory16.rps >= 1.5 * portkey16.rps)} (${(memory16.rps / portkey16.rps).toFixed(2)}×)`,
  );
  log(`- SQLite: own CPU ≤ 4× the bare proxy's: ${verdict(sqlite16.cpu <= 4 * bare16.cpu)} (${times(sqlite16.cpu / bare16.cpu)})`);
  log(
    `- Redis: own CPU (with Redis's) ≤ 4× the bare proxy's: ${verdict(redis16.cpu + redis16.sideCpu <= 4 * bare16.cpu)} (${times((redis16.cpu + redis16.sideCpu) / bare16.cpu)})`,
  );
  log(
    `- a ${LONG.turns}-turn session's turn ≤ 1.3× a ${SHORT.turns}-turn session's (CPU): ${verdict(long16.cpu <= 1.3 * memory16.cpu)} (${(long16.cpu / memory16.cpu).toFixed(2)}×)`,
  );
  log(
    `- streaming time to first byte ≤ 0.5 ms over the bare proxy at c=1: ${verdict(mnemoStream.ttfb - bareStream.ttfb <= 0.5)} (${ms(mnemoStream.ttfb - bareStream.ttfb, 2)} ms)`,
  );
  log('');
  log(
    `Where a memory turn spends its CPU: bench/PROFILE.md (\`npm run bench:profile\`). CPU per request changes with throughput, so recall's share is read at one rate: with recall off and the load held at the memory-on row's rate (${held.load.rps.toFixed(0)} req/s), a turn costs ${ms(held.load.cpu)} ms, so recall (the background index runs and the search on each turn) is ${ms(memory16.cpu - held.load.cpu)} ms of the memory store's ${ms(memory16.cpu)} ms at c=16; the rest of a memory turn (load, window, summary, facts, commit, HTTP) is ${ms(held.load.cpu)} ms at that rate, ${times(held.load.cpu / bare16.cpu)} the bare proxy's CPU at its own rate.`,
  );
  log('');

  writeFileSync(new URL('./RESULTS.md', import.meta.url), lines.join('\n'));
  await stop(provider);
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
    const before = label === 'redis' ? redisUsedMemory(redisPort) : process.memoryUsage().rss;
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
    const after = label === 'redis' ? redisUsedMemory(redisPort) : process.memoryUsage().rss;
    out.push({ store: label, total: after - before, perSession: (after - before) / COUNT, textPerSession: text / COUNT });
    await store.close();
  }
  return out;
}

function redisUsedMemory(port: number): number {
  const info = execFileSync('redis-cli', ['-p', String(port), 'info', 'memory']).toString();
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

try {
  await main();
} finally {
  for (const child of children) child.kill('SIGTERM');
}
