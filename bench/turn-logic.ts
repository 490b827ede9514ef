/**
 * npm run bench:logic — what a memory turn's own logic costs, with no HTTP server around it: load
 * and reconcile, build the prompt, serialize it, store the reply, commit, and the background work
 * (index runs, folds) the turns set off, phase by phase, in one process on the memory store. Read
 * beside bench/RESULTS.md: it is the floor under a memory turn's CPU whatever the HTTP layer costs.
 *
 * Each variant runs twice: back to back (caches hot: the least the logic can cost), and with one
 * HTTP round trip to the fast provider inside each turn, as a server makes (shown with the round
 * trip's CPU included, beside the round trip alone). Writes bench/LOGIC.md.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { parseConfig } from '../src/config/load.js';
import { FoldScheduler } from '../src/memory/folds.js';
import { newMessageId } from '../src/memory/messages.js';
import { buildPrompt } from '../src/memory/prompt.js';
import type { Summarizer } from '../src/memory/summarizer.js';
import { commitTurn, loadTurn, toStored } from '../src/memory/transcript.js';
import { Metrics } from '../src/metrics/metrics.js';
import { createStore } from '../src/store/factory.js';
import { InstrumentedStore } from '../src/store/instrumented-store.js';
import { TiktokenTokenizer } from '../src/tokenizer.js';
import { machine } from './machine.js';
import { textMaker, uniqueMessage } from './texts.js';

const SESSIONS = 200;
const FILL_TURNS = 25;
const TURNS = Number(process.env.BENCH_TURNS ?? 5_000);
const MODEL = 'gpt-4o-mini';

const provider = spawn(process.execPath, ['--import', 'tsx', 'bench/fast-provider.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
const providerUrl = await new Promise<string>((resolve) =>
  provider.stdout!.once('data', (data: Buffer) => resolve(`http://127.0.0.1:${JSON.parse(data.toString()).port}/v1/chat/completions`)),
);
const roundTrip = async (body: string) => {
  const response = await request(providerUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await response.body.text();
};

const replies = textMaker('reply', 3);
const summaries = textMaker('summary', 5);
/** A summarizer that answers at once: what the fold costs mnemo, not what the model does. */
const summarizer: Summarizer = {
  summarize: async (summary) => ({ text: summaries(), facts: [], keys: [], usage: { input: summary.turns.length * 80, output: 60 } }),
};

interface Run {
  cpuUs: number;
  phases: Map<string, number>;
}

async function variant(recall: boolean, http: boolean): Promise<Run> {
  const config = parseConfig({ log: { level: 'silent' }, memory: { recall: { enabled: recall } } });
  const metrics = new Metrics({ activeWindowMs: 900_000 });
  const store = new InstrumentedStore(await createStore({ url: 'memory://', timeoutMs: 2_000 }), metrics);
  const tokenizer = new TiktokenTokenizer();
  tokenizer.preload(MODEL);
  const logger = pino({ level: 'silent' });
  const embedder = { embed: async () => ({ vectors: [], inputTokens: 0 }) };
  const deps = { store, tokenizer, now: Date.now, embedder, logger };
  const folds = new FoldScheduler({ ...deps, summarizer, memory: () => config.memory });
  const phases = new Map<string, number>();
  let mark = 0;
  const lap = (name: string) => {
    const now = performance.now();
    phases.set(name, (phases.get(name) ?? 0) + now - mark);
    mark = now;
  };
  const turn = async (session: string) => {
    const key = `bench:${session}`;
    const turnRequest = {
      messages: [{ role: 'user' as const, content: uniqueMessage() }],
      model: MODEL,
      tenant: 'bench',
      turnId: newMessageId(),
      startedAt: Date.now(),
    };
    mark = performance.now();
    const state = await loadTurn(deps, key, turnRequest, config);
    lap('load and reconcile (loadTurn)');
    const prompt = await buildPrompt(deps, key, state, { model: MODEL }, config.memory);
    lap('recall and assembly (buildPrompt)');
    const body = JSON.stringify({ model: MODEL, messages: prompt.messages.map((entry) => entry.message) });
    lap('outbound JSON');
    if (http) {
      await roundTrip(body);
      mark = performance.now();
    }
    const reply = JSON.parse(
      JSON.stringify({
        choices: [{ index: 0, message: { role: 'assistant', content: replies() }, finish_reason: 'stop' }],
        usage: { prompt_tokens: prompt.sentTokens, completion_tokens: 60 },
      }),
    ) as { choices: Array<{ message: { role: 'assistant'; content: string } }> };
    const stored = toStored(reply.choices[0]!.message, MODEL, deps, config.privacy.redact, undefined, 63);
    lap('reply parsed and stored (toStored)');
    const { meta } = await commitTurn(deps, key, turnRequest, config, state, stored, { baselineTokens: 0, sentTokens: prompt.sentTokens });
    lap('commit (commitTurn)');
    folds.maybeSchedule(key, meta, {});
    lap('background work scheduled');
  };
  for (let session = 0; session < SESSIONS; session++) for (let fill = 0; fill < FILL_TURNS; fill++) await turn(`s${session}`);
  await folds.drain();
  phases.clear();
  const before = process.cpuUsage();
  for (let index = 0; index < TURNS; index++) await turn(`s${index % SESSIONS}`);
  const measured = new Map(phases);
  await folds.drain();
  const used = process.cpuUsage(before);
  await store.close();
  return { cpuUs: (used.user + used.system) / TURNS, phases: measured };
}

/** The round trip alone: one request to the fast provider with a prompt-sized body. */
async function roundTripOnly(): Promise<number> {
  const body = JSON.stringify({ model: MODEL, messages: Array.from({ length: 30 }, () => ({ role: 'user', content: uniqueMessage() })) });
  for (let index = 0; index < 1_000; index++) await roundTrip(body);
  const before = process.cpuUsage();
  for (let index = 0; index < TURNS; index++) await roundTrip(body);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / TURNS;
}

const trip = await roundTripOnly();
const rows: Array<{ name: string; hot: Run; served: Run }> = [];
for (const recall of [false, true]) {
  const hot = await variant(recall, false);
  const served = await variant(recall, true);
  rows.push({ name: recall ? 'memory on (default)' : 'memory on, recall off', hot, served });
}
provider.kill();

const us = (value: number) => value.toFixed(1);
const lines = [
  '# npm run bench:logic — what a memory turn costs without HTTP',
  '',
  `Machine: ${machine()}. Generated ${new Date().toISOString()}. In one process: the memory store (behind the store instrumentation a server uses), ${SESSIONS} sessions filled with ${FILL_TURNS} turns each, then ${TURNS} turns spread over them, each a unique 30–60-word message and a unique reply (bench/texts.ts), the default config; the background work those turns set off (index runs, folds with a summarizer that answers at once) is drained and counted. **CPU** is the process's user + system time per turn.`,
  '',
  '- **hot**: turns back to back, so the logic runs with warm caches: the least it can cost.',
  `- **with a round trip**: one HTTP request (undici) to the fast provider between each turn's prompt and its reply, as a server makes; the column includes the round trip, which costs ${us(trip)} µs alone. The total beyond hot + round trip is what the mix does to caches (the logic's phases below grow 1.5–2.5×).`,
  '',
  '| variant | hot, µs a turn | with a round trip, µs a turn (round trip included) |',
  '| --- | ---: | ---: |',
  ...rows.map(({ name, hot, served }) => `| ${name} | ${us(hot.cpuUs)} | ${us(served.cpuUs)} |`),
  `| the round trip alone | | ${us(trip)} |`,
  '',
  '## Phases (the request path only; background work is in the totals above)',
  '',
  `| phase | ${rows.map(({ name }) => `${name}, hot | ${name}, with a round trip`).join(' | ')} |`,
  `| --- | ${rows.map(() => '---: | ---:').join(' | ')} |`,
  ...[...rows[0]!.hot.phases.keys()].map(
    (phase) =>
      `| ${phase} | ${rows.map(({ hot, served }) => `${us(((hot.phases.get(phase) ?? 0) * 1000) / TURNS)} | ${us(((served.phases.get(phase) ?? 0) * 1000) / TURNS)}`).join(' | ')} |`,
  ),
  '',
];
writeFileSync(join(import.meta.dirname, 'LOGIC.md'), lines.join('\n'));
console.log(lines.join('\n'));
