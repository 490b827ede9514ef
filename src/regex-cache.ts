/**
 * Patterns from the YAML are compiled once and reused on the hot path; a
 * config reload brings new strings and so new entries. Global regexes carry
 * `lastIndex`, so it is reset on every hand-out.
 */
const cache = new Map<string, RegExp>();

export function cachedRegExp(source: string, flags = ''): RegExp {
  const key = `${flags}/${source}`;
  let regex = cache.get(key);
  if (!regex) {
    regex = new RegExp(source, flags);
    cache.set(key, regex);
  }
  regex.lastIndex = 0;
  return regex;
}
