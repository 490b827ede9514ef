import type { MemoryConfig } from '../config/schema.js';
import type { Indexed } from './assemble.js';

/**
 * Where the verbatim window starts: a turn start chosen so the window's start
 * moves in steps of `step_tokens`, not every turn. Between steps the prompt's
 * beginning (instructions, memory block, window) only grows at its end, so
 * the provider's prefix cache keeps hitting; the window holds between
 * `min_tokens` and `min_tokens + step_tokens`. Derived from the transcript
 * alone (its token counts), so every instance and both client modes agree.
 *
 * `tail` is the end of the kept transcript, oldest first, ending at message
 * `keep - 1`; `keptTokens` is the tokens of all of [0, keep).
 */
export function windowStart(tail: Indexed[], keptTokens: number, window: MemoryConfig['window'], summaryTokens = 0): number {
  if (tail.length === 0) return Number.POSITIVE_INFINITY;
  const minTokens = windowMinTokens(window, summaryTokens);
  const target = Math.max(0, Math.floor((keptTokens - minTokens) / window.step_tokens) * window.step_tokens);
  let suffix = 0;
  let start = Number.POSITIVE_INFINITY;
  for (let position = tail.length - 1; position >= 0; position--) {
    const { index, stored } = tail[position]!;
    suffix += stored.tokens;
    const isTurnStart = stored.message.role === 'user';
    if (keptTokens - suffix >= target) {
      if (isTurnStart) start = index;
      continue;
    }
    // Past the target: the window starts at the last turn start found, or at the turn this
    // message belongs to when none was (one turn longer than a step).
    if (start === Number.POSITIVE_INFINITY && isTurnStart) start = index;
    if (start !== Number.POSITIVE_INFINITY) break;
  }
  return start === Number.POSITIVE_INFINITY ? tail[0]!.index : start;
}

/**
 * The window's floor: `min_tokens`, or more while the summary is short, so that memory block and
 * window together reach `cache_prefix_tokens`. Providers cache only prompts of 1,024 tokens or
 * more; below that every turn pays full price for a beginning that did not change. The summary's
 * size comes from the head, so the fold planner and every request agree.
 */
export function windowMinTokens(window: MemoryConfig['window'], summaryTokens: number): number {
  return Math.max(window.min_tokens, window.cache_prefix_tokens - summaryTokens);
}
