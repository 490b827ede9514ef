import { RE2JS } from 're2js';

/**
 * Patterns mnemo runs on message text (fact extractors, redaction, small-talk
 * rules; shipped and operator-supplied) go through RE2's linear-time engine:
 * a backtracking RegExp let `"order" + " "×4000 + "!"` stall the event loop
 * 42 s. RE2 cannot express backreferences or lookaround; such patterns are
 * rejected when the config loads (see `linearPatternError`).
 *
 * Patterns are written in JavaScript syntax, translated once, compiled once
 * per source and flags, and reused on the hot path.
 */
export interface LinearPattern {
  /** Every match, in order, as [whole match, group 1, …] (unmatched groups undefined). */
  matchAll(text: string): Iterable<ReadonlyArray<string | undefined>>;
  /** True when the pattern matches the whole of `text`. */
  matchesWhole(text: string): boolean;
  /** `text` with every match replaced; `$1`, `$&` expand as in String.prototype.replace. */
  replaceAll(text: string, replacement: string): string;
}

const cache = new Map<string, LinearPattern>();

export function linearPattern(source: string, options: { caseInsensitive?: boolean } = {}): LinearPattern {
  const key = `${options.caseInsensitive ? 'i' : ''}/${source}`;
  let pattern = cache.get(key);
  if (!pattern) {
    const compiled = RE2JS.compile(RE2JS.translateRegExp(source), options.caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0);
    pattern = {
      matchAll: (text) => compiled.matchAll(text),
      matchesWhole: (text) => compiled.testExact(text),
      replaceAll: (text, replacement) => compiled.matcher(text).replaceAll(replacement),
    };
    cache.set(key, pattern);
  }
  return pattern;
}

/** Why `source` cannot run on the linear engine, or undefined when it can. */
export function linearPatternError(source: string): string | undefined {
  try {
    new RegExp(source, 'i');
  } catch (error) {
    return `not a valid regular expression: ${(error as Error).message}`;
  }
  try {
    RE2JS.compile(RE2JS.translateRegExp(source), RE2JS.CASE_INSENSITIVE);
    return undefined;
  } catch (error) {
    return (
      `runs only on a backtracking engine (${(error as Error).message}); mnemo runs patterns on RE2 in linear time, ` +
      'so backreferences and lookahead/lookbehind are not available: rewrite the pattern without them'
    );
  }
}
