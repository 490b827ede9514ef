import type { RuleContext, WindowEntry } from './types.js';

/** A one-line stand-in for a tool result: what was called, not what it returned. */
export function toolStub(entries: WindowEntry[], entry: WindowEntry): WindowEntry['message'] {
  const callId = entry.message.tool_call_id;
  const call = entries.flatMap((candidate) => candidate.message.tool_calls ?? []).find((candidate) => candidate.id === callId);
  const description = call ? `${call.function.name}(${call.function.arguments})` : `call ${callId}`;
  return { ...entry.message, content: `[result of ${description} omitted by mnemo]` };
}

export function stubbed(entries: WindowEntry[], entry: WindowEntry, context: RuleContext): WindowEntry {
  const message = toolStub(entries, entry);
  return { ...entry, message, tokens: context.countMessage(message) };
}

/** Tool results older than N turns become stubs; the pair (call + result) stays whole. */
export function stubToolResults(entries: WindowEntry[], rule: { older_than_turns: number }, context: RuleContext): WindowEntry[] {
  return entries.map((entry) =>
    entry.message.role === 'tool' && entry.turnsAgo >= rule.older_than_turns ? stubbed(entries, entry, context) : entry,
  );
}
