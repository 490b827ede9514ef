/**
 * npm run bench:memory — replays long generated support conversations through
 * mnemo (stateless and full-history clients) and, for comparison, a
 * full-history client talking to the provider directly. The provider bills
 * like OpenAI's prefix cache. Prints and writes bench/MEMORY-RESULTS.md.
 */
import { writeFileSync } from 'node:fs';
import { parseConfig } from '../src/config/load.js';
import { startMnemo } from '../src/main.js';
import { FACT_EXTRACTORS, PLANTED, questionAt, userMessage } from '../test/support/conversation.js';
import { CachingProvider } from './caching-provider.js';
import { machine } from './machine.js';

const LENGTHS = (process.env.BENCH_LENGTHS ?? '100,400,800').split(',').map(Number);
const CACHED_PRICE = 0.1;
const SUMMARY_OUTPUT_PRICE = 4;
const SYSTEM = 'You are the support assistant of an online shop. Be concise, friendly and precise. Never invent order data.';

type Mode = 'direct full-history' | 'mnemo stateless' | 'mnemo full-history';

interface Row {
  turns: number;
  mode: Mode;
  sent: number;
  baseline: number;
  cached: number;
  sideInput: number;
  sideOutput: number;
  folds: number;
  cost: number;
  factsPresent: number;
}

function cost(totals: CachingProvider['totals']): number {
  const uncached = totals.prompt - totals.cached;
  return uncached + totals.cached * CACHED_PRICE + totals.summaryInput + totals.summaryOutput * SUMMARY_OUTPUT_PRICE;
}

async function run(turns: number, mode: Mode): Promise<Row> {
  const provider = await new CachingProvider().start();
  const config = parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    upstream: { url: provider.url },
    store: { url: 'memory://' },
    memory: { facts: { extractors: FACT_EXTRACTORS } },
  });
  const mnemo = mode === 'direct full-history' ? undefined : await startMnemo({ config });
  const base = mnemo ? `${mnemo.url}/v1` : provider.url;
  const history: Array<{ role: string; content: string }> = [];
  let baseline = 0;
  let present = 0;
  for (let turn = 0; turn < turns; turn++) {
    const question = { role: 'user', content: userMessage(turn, turns) };
    const messages =
      mode === 'mnemo stateless'
        ? [{ role: 'system', content: SYSTEM }, question]
        : [{ role: 'system', content: SYSTEM }, ...history, question];
    const response = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', ...(mnemo && { 'x-session-id': `bench-${turns}` }) },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    });
    const body = await response.json();
    baseline += Number(response.headers.get('x-mnemo-tokens-baseline') ?? 0);
    const planted = questionAt(turn, turns);
    if (planted && provider.lastPromptText.includes(planted.expected)) present++;
    history.push(question, { role: 'assistant', content: body.choices[0].message.content });
    if (mnemo) await mnemo.folds.drain();
  }
  await mnemo?.close(1_000);
  await provider.stop();
  const totals = provider.totals;
  return {
    turns,
    mode,
    sent: totals.prompt,
    baseline: mnemo ? baseline : totals.prompt,
    cached: totals.cached,
    sideInput: totals.summaryInput,
    sideOutput: totals.summaryOutput,
    folds: totals.summaryCalls,
    cost: cost(totals),
    factsPresent: present / PLANTED.length,
  };
}

const percent = (value: number) => `${(value * 100).toFixed(1)}%`;

async function main() {
  const rows: Row[] = [];
  for (const turns of LENGTHS) {
    for (const mode of ['direct full-history', 'mnemo stateless', 'mnemo full-history'] as Mode[]) {
      const row = await run(turns, mode);
      rows.push(row);
      console.log(`${turns} turns, ${mode}: sent/baseline ${percent(row.sent / row.baseline)}, cost ${row.cost.toFixed(0)}`);
    }
  }
  const lines = [
    '# bench:memory results',
    '',
    `Machine: ${machine()}. Generated ${new Date().toISOString()} by \`npm run bench:memory\`.`,
    '',
    `Costs are input-token equivalents: uncached prompt tokens ×1, cached ×${CACHED_PRICE}, summarizer input ×1, summarizer output ×${SUMMARY_OUTPUT_PRICE}. ` +
      'The provider caches prompt prefixes as OpenAI does (≥1,024 tokens, 128-token steps, per prompt_cache_key). ' +
      'Reply tokens are the same in every mode and left out. "Facts present" is the share of planted facts found in the prompt when the user asks about them.',
    '',
    '| turns | client | prompt tokens sent | baseline | sent/baseline | cached share | side in/out | folds | cost | cost vs direct | facts present |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const direct = rows.find((candidate) => candidate.turns === row.turns && candidate.mode === 'direct full-history')!;
    lines.push(
      `| ${row.turns} | ${row.mode} | ${row.sent} | ${row.baseline} | ${percent(row.sent / row.baseline)} | ${percent(row.cached / row.sent)} | ${row.sideInput}/${row.sideOutput} | ${row.folds} | ${row.cost.toFixed(0)} | ${(row.cost / direct.cost).toFixed(2)}× | ${percent(row.factsPresent)} |`,
    );
  }
  const long = rows.filter((row) => row.turns >= 400 && row.mode !== 'direct full-history');
  const target = (ok: boolean) => (ok ? 'met' : '**not met**');
  lines.push(
    '',
    'Targets on conversations of 400+ turns (through mnemo):',
    `- tokens sent ≤ 30% of baseline: ${target(long.every((row) => row.sent / row.baseline <= 0.3))} (worst ${percent(Math.max(...long.map((row) => row.sent / row.baseline)))})`,
    `- cache-weighted cost ≤ 1.0× the direct full-history client (aim 0.6×): ${target(
      long.every(
        (row) => row.cost <= rows.find((candidate) => candidate.turns === row.turns && candidate.mode === 'direct full-history')!.cost,
      ),
    )} (worst ${Math.max(...long.map((row) => row.cost / rows.find((candidate) => candidate.turns === row.turns && candidate.mode === 'direct full-history')!.cost)).toFixed(2)}×)`,
    `- ≥ 90% of planted facts present when asked: ${target(long.every((row) => row.factsPresent >= 0.9))} (worst ${percent(Math.min(...long.map((row) => row.factsPresent)))})`,
    '',
  );
  writeFileSync(new URL('./MEMORY-RESULTS.md', import.meta.url), lines.join('\n'));
  console.log(lines.join('\n'));
}

await main();
