import { linearPattern } from '../../linear-regex.js';
import { contentText } from '../messages.js';
import type { RuleContext, WindowEntry } from './types.js';

/** Drops small talk: user/assistant messages whose whole (trimmed) text matches a pattern. Tool calls are never dropped. */
export function dropMatching(entries: WindowEntry[], rule: { patterns: string[]; roles: string[] }, _context: RuleContext): WindowEntry[] {
  const patterns = rule.patterns.map((pattern) => linearPattern(pattern, { caseInsensitive: true }));
  return entries.filter((entry) => {
    if (!rule.roles.includes(entry.message.role) || entry.message.tool_calls?.length) return true;
    const text = contentText(entry.message.content).trim();
    return !patterns.some((pattern) => pattern.matchesWhole(text));
  });
}
