import { createParser, type EventSourceParser } from 'eventsource-parser';
import type { ChatMessage, ToolCall } from '../memory/messages.js';

/** Provider-reported usage, as OpenAI spells it. */
export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number };
}

export interface CapturedReply {
  /** True only for a clean finish: a finish_reason and, for streams, `[DONE]`. */
  complete: boolean;
  message: ChatMessage;
  finishReason: string | null;
  usage?: Usage;
  model?: string;
}

interface ChoiceMessage {
  role?: string;
  content?: string | null;
  refusal?: string | null;
  tool_calls?: Array<Partial<ToolCall> & { index?: number; function?: Partial<ToolCall['function']> }>;
}

/** Reads the assistant message out of a non-streamed chat.completion body. */
export function captureJsonReply(body: Buffer): CapturedReply | undefined {
  let parsed: { choices?: Array<{ message?: ChoiceMessage; finish_reason?: string | null }>; usage?: Usage; model?: string };
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const choice = parsed?.choices?.[0];
  if (!choice?.message) return undefined;
  return {
    complete: typeof choice.finish_reason === 'string',
    message: assistantMessage(choice.message.content ?? null, choice.message.refusal ?? null, normalizeCalls(choice.message.tool_calls)),
    finishReason: choice.finish_reason ?? null,
    usage: parsed.usage,
    model: parsed.model,
  };
}

/**
 * Rebuilds the assistant message from a copy of an SSE stream: content and
 * refusal deltas are concatenated, tool_call deltas merged by index. Only
 * choice 0 is remembered (n>1 replies are alternatives, not the conversation).
 */
export class StreamCapture {
  private readonly parser: EventSourceParser;
  private readonly decoder = new TextDecoder();
  private content = '';
  private refusal = '';
  private readonly calls = new Map<number, { id: string; type: string; name: string; arguments: string }>();
  private finishReason: string | null = null;
  private done = false;
  private usage?: Usage;
  private model?: string;

  constructor() {
    this.parser = createParser({ onEvent: (event) => this.onData(event.data) });
  }

  write(bytes: Uint8Array): void {
    this.parser.feed(this.decoder.decode(bytes, { stream: true }));
  }

  result(): CapturedReply {
    const calls = [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => ({ id: call.id, type: call.type, function: { name: call.name, arguments: call.arguments } }));
    return {
      complete: this.done && this.finishReason !== null,
      message: assistantMessage(this.content || (calls.length > 0 ? null : ''), this.refusal || null, calls),
      finishReason: this.finishReason,
      usage: this.usage,
      model: this.model,
    };
  }

  private onData(data: string): void {
    if (data.trim() === '[DONE]') {
      this.done = true;
      return;
    }
    let chunk: {
      choices?: Array<{ index?: number; delta?: ChoiceMessage; finish_reason?: string | null }>;
      usage?: Usage | null;
      model?: string;
    };
    try {
      chunk = JSON.parse(data);
    } catch {
      return;
    }
    if (chunk.usage) this.usage = chunk.usage;
    if (chunk.model) this.model = chunk.model;
    const choice = chunk.choices?.find((candidate) => (candidate.index ?? 0) === 0);
    if (!choice) return;
    const delta = choice.delta ?? {};
    if (typeof delta.content === 'string') this.content += delta.content;
    if (typeof delta.refusal === 'string') this.refusal += delta.refusal;
    for (const call of delta.tool_calls ?? []) this.mergeCall(call);
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
  }

  private mergeCall(delta: NonNullable<ChoiceMessage['tool_calls']>[number]): void {
    const index = delta.index ?? 0;
    const call = this.calls.get(index) ?? { id: '', type: 'function', name: '', arguments: '' };
    if (delta.id) call.id = delta.id;
    if (delta.type) call.type = delta.type;
    if (delta.function?.name) call.name += delta.function.name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
    this.calls.set(index, call);
  }
}

function normalizeCalls(calls: ChoiceMessage['tool_calls']): ToolCall[] {
  return (calls ?? []).map((call) => ({
    id: call.id ?? '',
    type: call.type ?? 'function',
    function: { name: call.function?.name ?? '', arguments: call.function?.arguments ?? '' },
  }));
}

function assistantMessage(content: string | null, refusal: string | null, calls: ToolCall[]): ChatMessage {
  const message: ChatMessage = { role: 'assistant', content };
  if (calls.length > 0) message.tool_calls = calls;
  if (refusal) message.refusal = refusal;
  return message;
}
