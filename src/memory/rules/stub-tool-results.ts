import type { ToolCall } from '../messages.js';
import type { RuleContext, WindowEntry } from './types.js';

/** The tool calls of the window by id, looked up once per rule rather than once per result. */
export function callsById(entries: WindowEntry[]): Map<string, ToolCall> {
  const calls = new Map<string, ToolCall>();
  for (const entry of entries) for (const call of entry.message.tool_calls ?? []) calls.set(call.id, call);
  return calls;
}

/** A one-line stand-in for a tool result: what was called, not what it returned. */
export function toolStub(calls: Map<string, ToolCall>, entry: WindowEntry): WindowEntry['message'] {
  const callId = entry.message.tool_call_id;
  const call = calls.get(callId ?? '');
  const description = call ? `${call.function.name}(${call.function.arguments})` : `call ${callId}`;
  return { ...entry.message, content: `[result of ${description} omitted by mnemo]` };
}

export function stubbed(calls: Map<string, ToolCall>, entry: WindowEntry, context: RuleContext): WindowEntry {
  const message = toolStub(calls, entry);
  return { ...entry, message, tokens: context.countMessage(message) };
}

/** Tool results older than N turns become stubs; the pair (call + result) stays whole. */
export function stubToolResults(entries: WindowEntry[], rule: { older_than_turns: number }, context: RuleContext): WindowEntry[] {
  const calls = callsById(entries);
  return entries.map((entry) =>
    entry.message.role === 'tool' && entry.turnsAgo >= rule.older_than_turns ? stubbed(calls, entry, context) : entry,
  );
}
