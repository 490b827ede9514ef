import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completion, json } from '../support/fake-provider.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { startHarness, user, type Harness } from '../support/harness.js';

const run = promisify(execFile);

/** Value of one sample in Prometheus text output; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).split(' ')[0]!;
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) return Number(line.split(' ').at(-1));
  }
  return 0;
}

describe('GET /metrics', () => {
  let harness: Harness;
  const scrape = async () => (await fetch(`${harness.mnemo.url}/metrics`)).text();

  beforeAll(async () => {
    harness = await startHarness({ memory: { facts: { extractors: [{ name: 'order_id', pattern: 'order #(\\d+)' }] } } });
  });
  afterAll(() => harness.close());

  it('moves the token and cost counters by exactly what the turns reported', async () => {
    const before = await scrape();
    const usage = (prompt: number, cached: number, completionTokens: number) => ({
      prompt_tokens: prompt,
      completion_tokens: completionTokens,
      total_tokens: prompt + completionTokens,
      prompt_tokens_details: { cached_tokens: cached },
    });
    harness.provider.next(
      json(completion({ content: 'Let me check order #7890.' }, usage(40, 0, 8))),
      json(completion({ content: 'Tomorrow.' }, usage(60, 32, 3))),
    );
    const first = await harness.chat('metrics-1', { messages: [user('My order #7890 is stuck, can you help?')] });
    const second = await harness.chat('metrics-1', { messages: [user("What's the estimated delivery date?")] });
    const baseline = Number(first.headers.get('x-mnemo-tokens-baseline')) + Number(second.headers.get('x-mnemo-tokens-baseline'));
    const sent = Number(first.headers.get('x-mnemo-tokens-sent')) + Number(second.headers.get('x-mnemo-tokens-sent'));
    expect(Number(second.headers.get('x-mnemo-overhead-ms'))).toBeGreaterThanOrEqual(0);
    const after = await scrape();
    const labels = { model: 'gpt-4o-mini', provider: '127.0.0.1' };
    const delta = (name: string, extra: Record<string, string> = labels) => sample(after, name, extra) - sample(before, name, extra);
    expect(delta('mnemo_prompt_tokens_baseline_total')).toBe(baseline);
    expect(delta('mnemo_prompt_tokens_sent_total')).toBe(sent);
    expect(delta('mnemo_prompt_tokens_saved_total')).toBe(baseline - sent);
    expect(delta('mnemo_provider_prompt_tokens_total')).toBe(100);
    expect(delta('mnemo_provider_cached_tokens_total')).toBe(32);
    expect(delta('mnemo_completion_tokens_total')).toBe(11);
    // gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    expect(delta('mnemo_cost_spent_usd_total', { ...labels, kind: 'prompt' })).toBeCloseTo((68 * 0.15 + 32 * 0.075) / 1e6, 12);
    expect(delta('mnemo_cost_spent_usd_total', { ...labels, kind: 'completion' })).toBeCloseTo((11 * 0.6) / 1e6, 12);
    expect(delta('mnemo_cost_saved_usd_total')).toBeCloseTo(((baseline - sent) * 0.15) / 1e6, 12);
    expect(delta('mnemo_facts_extracted_total', {})).toBe(2); // from the user message and from the reply
    expect(delta('mnemo_http_requests_total', { route: 'chat_completions', status_class: '2xx', stream: 'false' })).toBe(2);
    const genai = { gen_ai_operation_name: 'chat', gen_ai_request_model: 'gpt-4o-mini', gen_ai_token_type: 'input' };
    expect(delta('gen_ai_client_token_usage_sum', genai)).toBe(100);
    expect(delta('gen_ai_client_token_usage_count', genai)).toBe(2);
  });

  it('counts stream terminations by reason and observes time to first chunk', async () => {
    const before = await scrape();
    await (await harness.chat('metrics-2', { stream: true, messages: [user('stream please')] })).text();
    const after = await scrape();
    expect(
      sample(after, 'mnemo_stream_terminations_total', { reason: 'complete' }) -
        sample(before, 'mnemo_stream_terminations_total', { reason: 'complete' }),
    ).toBe(1);
    expect(
      sample(after, 'gen_ai_client_operation_time_to_first_chunk_seconds_count') -
        sample(before, 'gen_ai_client_operation_time_to_first_chunk_seconds_count'),
    ).toBe(1);
  });

  it('exports store latency, in-flight requests, active sessions and process metrics', async () => {
    const text = await scrape();
    expect(sample(text, 'mnemo_store_operation_duration_seconds_count', { op: 'commit', backend: 'memory' })).toBeGreaterThan(0);
    expect(text).toContain('mnemo_requests_in_flight');
    expect(sample(text, 'mnemo_active_sessions')).toBeGreaterThanOrEqual(2);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).not.toMatch(/metrics-1|metrics-2/); // never a session id in a label
  });

  it('counts chunk cache lookups: a long session reads its sealed window from memory', async () => {
    const before = await scrape();
    // 20 turns are 40 messages: the first 32 are sealed into a chunk, which later turns' windows read.
    for (let turn = 0; turn < 20; turn++) await (await harness.chat('metrics-cache', { messages: [user(`turn ${turn}`)] })).text();
    const after = await scrape();
    const hits =
      sample(after, 'mnemo_chunk_cache_lookups_total', { outcome: 'hit' }) -
      sample(before, 'mnemo_chunk_cache_lookups_total', { outcome: 'hit' });
    expect(hits).toBeGreaterThanOrEqual(3);
    expect(sample(after, 'mnemo_chunk_cache_bytes')).toBeGreaterThan(0);
  });

  it('passes promtool check metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mnemo-promtool-'));
    const file = join(dir, 'metrics.txt');
    writeFileSync(file, await scrape());
    const { stdout, stderr } = await run('sh', ['-c', `promtool check metrics < ${file}`]).catch((error) => ({
      stdout: error.stdout ?? '',
      stderr: `${error.stderr ?? ''}${error.message}`,
    }));
    expect(`${stdout}${stderr}`.trim()).toBe('');
  });
});

describe('GET /metrics with a token', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ metrics: { token: 'metrics-token-0123456789' } });
  });
  afterAll(() => harness.close());

  it('requires the bearer token', async () => {
    expect((await fetch(`${harness.mnemo.url}/metrics`)).status).toBe(401);
    const ok = await fetch(`${harness.mnemo.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
  });
});

describe('the active-sessions gauge', () => {
  it('forgets sessions idle past its window even when /metrics is never scraped', async () => {
    let clock = 0;
    const metrics = new Metrics({ activeWindowMs: 60_000, now: () => clock });
    for (let index = 0; index < 10_000; index++) metrics.seen(`earlier-${index}`, clock);
    clock += 120_000;
    for (let index = 0; index < 10_000; index++) metrics.seen(`now-${index}`, clock);
    // Without a scrape in between, the ten thousand idle ones went as the map grew.
    expect(metrics.trackedSessions).toBe(10_000);
    expect(sample(await metrics.render(), 'mnemo_active_sessions')).toBe(10_000);
  });
});
