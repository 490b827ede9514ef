import { contentText } from '../messages.js';
import type { RuleContext, WindowEntry } from './types.js';

/** Cuts any message over `max_tokens` to fit, ending it with `marker`. */
export function truncateLong(entries: WindowEntry[], rule: { max_tokens: number; marker: string }, context: RuleContext): WindowEntry[] {
  return entries.map((entry) => (entry.tokens > rule.max_tokens ? truncateEntry(entry, rule, context) : entry));
}

function truncateEntry(entry: WindowEntry, rule: { max_tokens: number; marker: string }, context: RuleContext): WindowEntry {
  const text = contentText(entry.message.content);
  if (text.length === 0) return entry;
  // Characters per token is roughly constant within a message, so scale, then shrink until it fits.
  let keep = Math.floor((text.length * rule.max_tokens) / entry.tokens);
  for (;;) {
    const message = { ...entry.message, content: text.slice(0, Math.max(0, keep)) + rule.marker };
    const tokens = context.countMessage(message);
    if (tokens <= rule.max_tokens || keep <= 0) return { ...entry, message, tokens };
    keep = Math.floor(keep * 0.9);
  }
}
