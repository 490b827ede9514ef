import type { Config } from '../config/schema.js';
import type { ChatMessage } from './messages.js';

type Rules = Config['privacy']['redact'];
const compiled = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let value = compiled.get(pattern);
  if (!value) {
    value = new RegExp(pattern, 'g');
    compiled.set(pattern, value);
  }
  return value;
}

export function redactText(text: string, rules: Rules): string {
  return rules.reduce((current, rule) => current.replace(regex(rule.pattern), rule.replacement), text);
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
