import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.js';

const dashboard = JSON.parse(readFileSync('config/grafana/mnemo-dashboard.json', 'utf8'));
const expressions: string[] = dashboard.panels.flatMap((panel: { targets: Array<{ expr: string }> }) =>
  panel.targets.map((target) => target.expr),
);

describe('the Grafana dashboard', () => {
  it('queries only metrics mnemo exports', async () => {
    const exported = new Set(
      (await new Metrics().registry.getMetricsAsJSON()).flatMap((metric) => {
        const names = [metric.name];
        if (String(metric.type) === 'histogram') names.push(`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`);
        return names;
      }),
    );
    const used = new Set(expressions.flatMap((expr) => expr.match(/\b(mnemo|gen_ai|nodejs|process)_[a-z0-9_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
  });

  it('answers the operator questions: savings, money, latency, errors, store, summaries', () => {
    const titles = dashboard.panels.map((panel: { title: string }) => panel.title).join(' | ');
    for (const topic of [
      'saved today',
      'Money saved',
      'sent vs full-history baseline',
      'cached share',
      'overhead',
      'Error rate',
      'Store latency',
      'Summary activity',
    ]) {
      expect(titles).toContain(topic);
    }
    expect(expressions.some((expr) => expr.includes('mnemo_side_tokens_total'))).toBe(true); // savings are net of side tokens
  });
});
