import { describe, expect, it } from 'vitest';
import { windowMinTokens, windowStart } from '../../src/memory/window.js';
import { a, indexed, memoryConfig, u } from './helpers.js';

const turns = (count: number) =>
  indexed(Array.from({ length: count }, (_, turn) => [u(`question ${turn} `.repeat(10)), a(`answer ${turn} `.repeat(10))]).flat());
const total = (tail: ReturnType<typeof turns>) => tail.reduce((sum, item) => sum + item.stored.tokens, 0);

describe('the window start', () => {
  const window = memoryConfig({ window: { min_tokens: 100, step_tokens: 200, cache_prefix_tokens: 0 } }).window;

  it('moves in steps, not every turn, and always at a turn start', () => {
    const starts: number[] = [];
    for (let count = 2; count <= 60; count += 2) {
      const tail = turns(count / 2);
      const start = windowStart(tail, total(tail), window);
      expect(tail.find((item) => item.index === start)!.stored.message.role).toBe('user');
      starts.push(start);
    }
    // Never backwards, and far fewer distinct starts than turns.
    for (let index = 1; index < starts.length; index++) expect(starts[index]).toBeGreaterThanOrEqual(starts[index - 1]!);
    expect(new Set(starts).size).toBeLessThan(starts.length / 2);
  });

  it('keeps between min_tokens and min_tokens + step_tokens (at turn granularity)', () => {
    for (let count = 10; count <= 40; count++) {
      const tail = turns(count);
      const start = windowStart(tail, total(tail), window);
      const shown = tail.filter((item) => item.index >= start).reduce((sum, item) => sum + item.stored.tokens, 0);
      expect(shown).toBeGreaterThanOrEqual(100 - 50);
      expect(shown).toBeLessThanOrEqual(100 + 200 + 50);
    }
  });

  it('holds more while the summary is short, so memory block and window reach the cacheable size', () => {
    const cached = memoryConfig({ window: { min_tokens: 100, step_tokens: 200, cache_prefix_tokens: 1_100 } }).window;
    expect(windowMinTokens(cached, 0)).toBe(1_100);
    expect(windowMinTokens(cached, 400)).toBe(700);
    expect(windowMinTokens(cached, 5_000)).toBe(100);
    const tail = turns(80);
    const shown = (summaryTokens: number) => {
      const start = windowStart(tail, total(tail), cached, summaryTokens);
      return tail.filter((item) => item.index >= start).reduce((sum, item) => sum + item.stored.tokens, 0);
    };
    expect(shown(0)).toBeGreaterThanOrEqual(1_000);
    expect(shown(400) + 400).toBeGreaterThanOrEqual(1_000);
  });
});
