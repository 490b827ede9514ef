import type { Config, Price } from '../config/schema.js';
import { globMatch } from '../upstream/routing.js';

const PER_TOKEN = 1 / 1_000_000;

export function priceFor(model: string, pricing: Config['pricing']): Price | undefined {
  const name = model.replace(/^.*\//, '');
  for (const [pattern, price] of Object.entries(pricing.models)) if (globMatch(pattern, name)) return price;
  return undefined;
}

/** USD for a call: uncached input, cached input and output at the model's prices (0 without a price). */
export function callCost(
  price: Price | undefined,
  tokens: { input: number; cached?: number; output: number },
): { prompt: number; completion: number } {
  if (!price) return { prompt: 0, completion: 0 };
  const cached = Math.min(tokens.cached ?? 0, tokens.input);
  return {
    prompt: ((tokens.input - cached) * price.input + cached * (price.cached_input ?? price.input)) * PER_TOKEN,
    completion: tokens.output * price.output * PER_TOKEN,
  };
}

/** USD not spent because `saved` prompt tokens were never sent, at the uncached input price. */
export function savedCost(price: Price | undefined, saved: number): number {
  return price ? Math.max(0, saved) * price.input * PER_TOKEN : 0;
}
