import { callsById, stubbed } from './stub-tool-results.js';
import type { RuleContext, WindowEntry } from './types.js';

/** At most N messages of a role: older tool results become stubs, older user/assistant messages go (tool calls stay). */
export function roleLimit(entries: WindowEntry[], rule: { role: string; max_messages: number }, context: RuleContext): WindowEntry[] {
  let seen = 0;
  const out: WindowEntry[] = [];
  const calls = callsById(entries);
  for (let position = entries.length - 1; position >= 0; position--) {
    const entry = entries[position]!;
    if (entry.message.role !== rule.role || entry.message.tool_calls?.length) {
      out.push(entry);
      continue;
    }
    seen++;
    if (seen <= rule.max_messages) out.push(entry);
    else if (rule.role === 'tool') out.push(stubbed(calls, entry, context));
  }
  return out.reverse();
}
