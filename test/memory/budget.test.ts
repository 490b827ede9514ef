import { describe, expect, it } from 'vitest';
import { budgetFor, completionReserve, contextWindow } from '../../src/memory/budget.js';
import { memoryConfig } from './helpers.js';

describe('budget configuration', () => {
  const budget = memoryConfig({ budget: { models: { 'llama3*': { prompt_tokens: 2_000 } } } }).budget;

  it('looks up context windows by model glob, specific patterns first', () => {
    expect(contextWindow('gpt-4o-mini', budget)).toBe(128_000);
    expect(contextWindow('gpt-4.1-mini', budget)).toBe(1_047_576);
    expect(contextWindow('gpt-4', budget)).toBe(8_192);
    expect(contextWindow('openai/gpt-5', budget)).toBe(400_000);
    expect(contextWindow('my-local-model', budget)).toBe(128_000);
  });

  it('applies per-model overrides', () => {
    expect(budgetFor('llama3.1:8b', budget).prompt_tokens).toBe(2_000);
    expect(budgetFor('gpt-4o', budget).prompt_tokens).toBe(6_000);
  });

  it('reserves what the request asks for, else the configured reserve', () => {
    expect(completionReserve({ max_completion_tokens: 900 }, budget)).toBe(900);
    expect(completionReserve({ max_tokens: 300 }, budget)).toBe(300);
    expect(completionReserve({}, budget)).toBe(4_096);
  });
});
