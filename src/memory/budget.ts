import type { MemoryConfig } from '../config/schema.js';
import { globMatch } from '../upstream/routing.js';

export function contextWindow(model: string, config: MemoryConfig['budget']): number {
  const name = model.replace(/^.*\//, '');
  for (const [pattern, tokens] of Object.entries(config.context_windows)) if (globMatch(pattern, name)) return tokens;
  return config.default_context_window;
}

/** Tokens to keep free for the reply: what the request asks for, else the configured reserve. */
export function completionReserve(body: { max_tokens?: unknown; max_completion_tokens?: unknown }, config: MemoryConfig['budget']): number {
  const asked = body.max_completion_tokens ?? body.max_tokens;
  return typeof asked === 'number' && Number.isFinite(asked) && asked > 0 ? asked : config.completion_reserve;
}

/** The budget section with the first matching per-model override applied. */
export function budgetFor(model: string, config: MemoryConfig['budget']): MemoryConfig['budget'] {
  const name = model.replace(/^.*\//, '');
  for (const [pattern, override] of Object.entries(config.models)) {
    if (globMatch(pattern, name)) return { ...config, ...override };
  }
  return config;
}
