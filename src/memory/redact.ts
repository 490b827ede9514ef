import type { Config } from '../config/schema.js';
import type { ChatMessage } from './messages.js';
import { linearPattern } from '../linear-regex.js';

type Rules = Config['privacy']['redact'];

export function redactText(text: string, rules: Rules): string {
  return rules.reduce((current, rule) => linearPattern(rule.pattern).replaceAll(current, rule.replacement), text);
}

/** The message with every configured pattern replaced in its text, parts and tool-call arguments. */
export function redactMessage(message: ChatMessage, rules: Rules): ChatMessage {
  if (rules.length === 0) return message;
  const out: ChatMessage = { ...message };
  if (typeof message.content === 'string') out.content = redactText(message.content, rules);
  else if (Array.isArray(message.content)) {
    out.content = message.content.map((part) =>
      part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string'
        ? { ...part, text: redactText((part as { text: string }).text, rules) }
        : part,
    );
  }
  if (message.tool_calls) {
    out.tool_calls = message.tool_calls.map((call) => ({
      ...call,
      function: { ...call.function, arguments: redactText(call.function.arguments, rules) },
    }));
  }
  return out;
}
