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
  /** Legacy function calling (before tool_calls). */
  function_call?: { name?: string; arguments?: string };
  /** An audio reply: its id (resendable until expires_at), the audio itself, and its transcript. */
  audio?: { id?: string; data?: string; transcript?: string; expires_at?: number };
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
  const choice = Array.isArray(parsed?.choices) ? parsed.choices[0] : undefined;
  if (!isObject(choice) || !isObject(choice.message)) return undefined;
  const reply = choice.message;
  return {
    complete: typeof choice.finish_reason === 'string',
    message: withExtras(
      assistantMessage(reply.content ?? null, reply.refusal ?? null, normalizeCalls(reply.tool_calls)),
      reply.function_call,
      reply.audio,
    ),
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
  private functionCall?: { name: string; arguments: string };
  private audio?: { id?: string; transcript: string; expires_at?: number };
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
    const media = this.functionCall || this.audio;
    return {
      complete: this.done && this.finishReason !== null,
      message: withExtras(
        assistantMessage(this.content || (calls.length > 0 || media ? null : ''), this.refusal || null, calls),
        this.functionCall,
        this.audio,
      ),
      finishReason: this.finishReason,
      usage: this.usage,
      model: this.model,
    };
  }

  private onData(data: string): void {
    // Clients stop reading at [DONE]: whatever follows is not part of the reply they got.
    if (this.done) return;
    if (data.trim() === '[DONE]') {
      this.done = true;
      return;
    }
    // An event mnemo cannot read means a reply it cannot vouch for: the guard (capture-guard.ts)
    // turns the throw into "delivered, not stored"; the client's bytes are unaffected.
    const chunk = JSON.parse(data) as {
      choices?: Array<{ index?: number; delta?: ChoiceMessage; finish_reason?: string | null }>;
      usage?: Usage | null;
      model?: string;
    };
    if (!isObject(chunk)) throw new Error('an SSE event that is not a chunk object');
    if (chunk.choices !== undefined && (!Array.isArray(chunk.choices) || !chunk.choices.every(isObject))) {
      throw new Error('chunk choices that are not objects');
    }
    if (chunk.usage) this.usage = chunk.usage;
    if (typeof chunk.model === 'string') this.model = chunk.model;
    const choice = chunk.choices?.find((candidate) => (candidate.index ?? 0) === 0);
    if (!choice) return;
    if (choice.delta !== undefined && !isObject(choice.delta)) throw new Error('a delta that is not an object');
    const delta = choice.delta ?? {};
    if (typeof delta.content === 'string') this.content += delta.content;
    if (typeof delta.refusal === 'string') this.refusal += delta.refusal;
    if (delta.tool_calls !== undefined && !Array.isArray(delta.tool_calls)) throw new Error('tool_calls that are not an array');
    for (const call of delta.tool_calls ?? []) this.mergeCall(call);
    if (delta.function_call) {
      this.functionCall ??= { name: '', arguments: '' };
      this.functionCall.name += delta.function_call.name ?? '';
      this.functionCall.arguments += delta.function_call.arguments ?? '';
    }
    if (delta.audio) {
      this.audio ??= { transcript: '' };
      if (delta.audio.id) this.audio.id = delta.audio.id;
      if (delta.audio.expires_at) this.audio.expires_at = delta.audio.expires_at;
      this.audio.transcript += delta.audio.transcript ?? '';
    }
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

/**
 * A legacy function_call is kept as sent; of an audio reply mnemo keeps the id, expiry and
 * transcript, never the base64 audio (the chat adapter resends the id while it is valid, the
 * transcript after).
 */
function withExtras(message: ChatMessage, functionCall: ChoiceMessage['function_call'], audio: ChoiceMessage['audio']): ChatMessage {
  if (functionCall && typeof functionCall === 'object')
    message.function_call = { name: functionCall.name ?? '', arguments: functionCall.arguments ?? '' };
  if (audio && typeof audio === 'object') {
    message.audio = { id: audio.id, expires_at: audio.expires_at, transcript: audio.transcript ?? '' };
  }
  return message;
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function normalizeCalls(calls: ChoiceMessage['tool_calls']): ToolCall[] {
  if (calls !== undefined && calls !== null && (!Array.isArray(calls) || !calls.every(isObject))) throw new Error('malformed tool_calls');
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
