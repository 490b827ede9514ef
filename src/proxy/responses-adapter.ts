import { createParser, type EventSourceParser } from 'eventsource-parser';
import { BadRequestError } from '../errors.js';
import { contentText, type ChatMessage, type ToolCall } from '../memory/messages.js';
import type { ApiAdapter, ApiRequest, StreamReader } from './api-adapter.js';
import { parseJsonObject } from './chat-body.js';
import { assertMessageCount } from './json-limits.js';
import type { CapturedReply, Usage } from './reply-capture.js';

/**
 * POST …/responses (OpenAI's Responses API). Items become neutral messages:
 * a message item is a message; `function_call` items join the assistant
 * message they follow as its tool_calls, `function_call_output` items become
 * tool messages; reasoning items ride on the assistant message after them
 * (`reasoning_items`), so they are resent with it and never split from it.
 * `instructions` stays a field of the request: kept, forwarded, never stored.
 */
export interface ResponsesBody {
  model: string;
  input: string | Item[];
  instructions?: unknown;
  stream?: boolean;
  previous_response_id?: unknown;
  conversation?: unknown;
  prompt_cache_key?: unknown;
  user?: unknown;
  max_output_tokens?: unknown;
  [field: string]: unknown;
}

type Item = Record<string, unknown> & { type?: unknown; role?: unknown; content?: unknown };

/** A neutral assistant message may carry the Responses reasoning items that came before it. */
export const REASONING_FIELD = 'reasoning_items';

const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

export const responsesAdapter: ApiAdapter<ResponsesBody> = {
  route: 'responses',
  parse(raw, contentType, limits, context) {
    const body = parseJsonObject(raw, contentType, limits) as Partial<ResponsesBody>;
    const model = body.model === undefined && context.pathModel ? context.pathModel : body.model;
    if (typeof model !== 'string' || model.length === 0) {
      throw new BadRequestError("'model' is required and must be a string.", { param: 'model', code: 'invalid_model' });
    }
    if (body.stream !== undefined && typeof body.stream !== 'boolean') {
      throw new BadRequestError("'stream' must be a boolean.", { param: 'stream', code: 'invalid_stream' });
    }
    if (typeof body.input !== 'string' && !Array.isArray(body.input)) {
      throw new BadRequestError("'input' is required: a string or an array of input items.", { param: 'input', code: 'invalid_input' });
    }
    if (Array.isArray(body.input)) assertMessageCount(body.input, limits.maxMessages, 'input');
    const request: ApiRequest = {
      model,
      stream: body.stream === true,
      messages: toMessages(body.input),
      providerHeldHistory: (typeof body.previous_response_id === 'string' && body.previous_response_id !== '') || body.conversation != null,
      user: body.user,
      max_completion_tokens: body.max_output_tokens,
    };
    return { body: body as ResponsesBody, request };
  },
  outbound(body, _request, prompt, options) {
    const out: ResponsesBody = { ...body, input: prompt.flatMap(toItems) };
    if (options.cacheKey) out.prompt_cache_key = options.cacheKey;
    return out;
  },
  injectsUsage: () => false, // the Responses API always reports usage
  captureJson(raw) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return undefined;
    }
    return capturedResponse(parsed);
  },
  streamReader: () => new ResponsesStreamReader(),
};

/** The request's input as neutral messages. */
function toMessages(input: string | Item[]): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  const out: ChatMessage[] = [];
  let reasoning: unknown[] = [];
  input.forEach((item, index) => {
    const param = `input[${index}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw new BadRequestError(`${param} must be an object.`, { param, code: 'invalid_input_item' });
    }
    const type = item.type ?? 'message';
    if (type === 'reasoning') {
      reasoning.push(item);
      return;
    }
    if (type === 'message') {
      if (typeof item.role !== 'string' || !MESSAGE_ROLES.has(item.role)) {
        throw new BadRequestError(`${param}.role must be one of user, assistant, system, developer.`, {
          param: `${param}.role`,
          code: 'invalid_role',
        });
      }
      const message: ChatMessage = { role: item.role, content: toContent(item.content, `${param}.content`) };
      out.push(withReasoning(message, reasoning));
      reasoning = [];
      return;
    }
    if (type === 'function_call') {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string' || typeof item.arguments !== 'string') {
        throw new BadRequestError(`${param}: a function_call needs call_id, name and arguments (strings).`, {
          param,
          code: 'invalid_input_item',
        });
      }
      const call: ToolCall = { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } };
      const previous = out[out.length - 1];
      // Calls of one reply follow its message item (or each other): one assistant turn.
      if (previous?.role === 'assistant' && reasoning.length === 0) previous.tool_calls = [...(previous.tool_calls ?? []), call];
      else out.push(withReasoning({ role: 'assistant', content: null, tool_calls: [call] }, reasoning));
      reasoning = [];
      return;
    }
    if (type === 'function_call_output') {
      if (typeof item.call_id !== 'string') {
        throw new BadRequestError(`${param}.call_id is required.`, { param: `${param}.call_id`, code: 'invalid_input_item' });
      }
      out.push({ role: 'tool', tool_call_id: item.call_id, content: outputText(item.output) });
      return;
    }
    throw new BadRequestError(
      `${param}: item type ${JSON.stringify(type)} is not supported with a session header (supported: message, function_call, ` +
        'function_call_output, reasoning). Send it without X-Session-Id to pass it through unchanged.',
      { param: `${param}.type`, code: 'unsupported_input_item' },
    );
  });
  // Reasoning items at the very end (no reply after them yet) belong to nothing mnemo stores.
  return out;
}

function withReasoning(message: ChatMessage, reasoning: unknown[]): ChatMessage {
  return reasoning.length > 0 ? { ...message, [REASONING_FIELD]: reasoning } : message;
}

/** A message item's content in the neutral (chat) form: text parts as text, images as image_url, files as file. */
function toContent(content: unknown, param: string): ChatMessage['content'] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content))
    throw new BadRequestError(`${param} must be a string or an array of content parts.`, { param, code: 'invalid_content' });
  const parts = content.map((part: Record<string, unknown>) => {
    switch (part?.type) {
      case 'input_text':
      case 'output_text':
        return { type: 'text', text: String(part.text ?? '') };
      case 'refusal':
        return { type: 'text', text: String(part.refusal ?? '') };
      case 'input_image':
        return { type: 'image_url', image_url: { url: part.image_url ?? part.file_id, detail: part.detail ?? 'auto' } };
      case 'input_file':
        return { type: 'file', file: { file_id: part.file_id, file_data: part.file_data, filename: part.filename } };
      default:
        throw new BadRequestError(`${param}: content part type ${JSON.stringify(part?.type)} is not supported.`, {
          param,
          code: 'invalid_content',
        });
    }
  });
  return parts.every((part) => part.type === 'text') ? contentText(parts) : parts;
}

function outputText(output: unknown): string {
  if (typeof output === 'string') return output;
  return Array.isArray(output) ? contentText(output) : JSON.stringify(output ?? '');
}

/** A neutral message as Responses input items. */
function toItems(message: ChatMessage): Item[] {
  if (message.role === 'tool')
    return [{ type: 'function_call_output', call_id: message.tool_call_id, output: contentText(message.content) }];
  const items: Item[] = [...((message[REASONING_FIELD] as Item[] | undefined) ?? [])];
  const audio = message.audio as { transcript?: string } | undefined;
  const text = message.role === 'assistant' ? contentText(message.content) || audio?.transcript : undefined;
  if (message.role !== 'assistant') items.push({ type: 'message', role: message.role, content: toInputParts(message.content) });
  else if (text) items.push({ type: 'message', role: 'assistant', content: text });
  for (const call of message.tool_calls ?? []) {
    items.push({ type: 'function_call', call_id: call.id, name: call.function.name, arguments: call.function.arguments });
  }
  return items;
}

function toInputParts(content: unknown): unknown {
  if (typeof content === 'string' || !Array.isArray(content)) return contentText(content);
  return content.map((part: Record<string, unknown>) => {
    if (part?.type === 'image_url') {
      const image = part.image_url as { url?: string; detail?: string } | undefined;
      return { type: 'input_image', image_url: image?.url, detail: image?.detail ?? 'auto' };
    }
    if (part?.type === 'file') return { type: 'input_file', ...(part.file as object) };
    return { type: 'input_text', text: String(part?.text ?? '') };
  });
}

/** A Responses `response` object as a captured reply: complete only when its status is completed. */
function capturedResponse(response: unknown): CapturedReply | undefined {
  const value = response as {
    object?: string;
    status?: string;
    output?: Item[];
    usage?: { input_tokens?: number; output_tokens?: number; input_tokens_details?: { cached_tokens?: number } };
    model?: string;
  } | null;
  if (!value || typeof value !== 'object' || !Array.isArray(value.output)) return undefined;
  const texts: string[] = [];
  const calls: ToolCall[] = [];
  const reasoning: unknown[] = [];
  for (const item of value.output) {
    if (item?.type === 'message') texts.push(contentText((item.content as unknown[] | undefined)?.map(textOf) ?? []));
    else if (item?.type === 'function_call' && typeof item.call_id === 'string') {
      calls.push({
        id: item.call_id,
        type: 'function',
        function: { name: String(item.name ?? ''), arguments: String(item.arguments ?? '') },
      });
    } else if (item?.type === 'reasoning') reasoning.push(item);
  }
  const message: ChatMessage = { role: 'assistant', content: texts.join('') || (calls.length > 0 ? null : '') };
  if (calls.length > 0) message.tool_calls = calls;
  const usage: Usage | undefined = value.usage && {
    prompt_tokens: value.usage.input_tokens,
    completion_tokens: value.usage.output_tokens,
    prompt_tokens_details: { cached_tokens: value.usage.input_tokens_details?.cached_tokens },
  };
  return {
    complete: value.status === 'completed',
    message: withReasoning(message, reasoning),
    finishReason: value.status ?? null,
    usage,
    model: value.model,
  };
}

function textOf(part: unknown): { text: string } {
  const value = part as { type?: string; text?: string; refusal?: string } | null;
  return { text: value?.type === 'refusal' ? (value.refusal ?? '') : (value?.text ?? '') };
}

/**
 * Reads a copy of a Responses event stream: the reply is the `response` of the
 * `response.completed` event. `response.failed`, `response.incomplete`,
 * `error`, or a stream that ends without completing leave it incomplete, and
 * nothing is committed.
 */
class ResponsesStreamReader implements StreamReader {
  private readonly parser: EventSourceParser;
  private readonly decoder = new TextDecoder();
  private completed: CapturedReply | undefined;

  constructor() {
    this.parser = createParser({ onEvent: (event) => this.onData(event.data) });
  }

  write(bytes: Uint8Array): void {
    this.parser.feed(this.decoder.decode(bytes, { stream: true }));
  }

  result(): CapturedReply {
    return this.completed ?? { complete: false, message: { role: 'assistant', content: '' }, finishReason: null };
  }

  private onData(data: string): void {
    let event: { type?: string; response?: unknown };
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (event?.type === 'response.completed') this.completed = capturedResponse(event.response);
  }
}
