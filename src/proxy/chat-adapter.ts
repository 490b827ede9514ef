import { contentText, type ChatMessage } from '../memory/messages.js';
import type { ApiAdapter } from './api-adapter.js';
import { parseChatBody, type ChatBody } from './chat-body.js';
import { captureJsonReply, StreamCapture } from './reply-capture.js';
import { REASONING_FIELD } from './responses-adapter.js';

/**
 * A neutral message as chat completions take it: without what only the Responses API reads
 * (reasoning items), and an audio reply as `audio: {id}` while the provider still holds it, as its
 * transcript after (an expired id is a 400).
 */
function chatOnly(message: ChatMessage, nowSeconds: number): ChatMessage {
  if (!(REASONING_FIELD in message) && message.audio === undefined) return message;
  const { [REASONING_FIELD]: _reasoning, audio, ...rest } = message;
  const reply = audio as { id?: string; expires_at?: number; transcript?: string } | undefined;
  if (!reply) return rest as ChatMessage;
  if (reply.id && (reply.expires_at ?? 0) > nowSeconds) return { ...rest, audio: { id: reply.id } } as ChatMessage;
  return { ...rest, content: reply.transcript ?? contentText(rest.content) } as ChatMessage;
}

/** POST …/chat/completions: the neutral transcript is chat-shaped already, so this adapter is thin. */
export const chatCompletionsAdapter: ApiAdapter<ChatBody> = {
  route: 'chat_completions',
  parse(raw, contentType, limits, context) {
    const { body, model } = parseChatBody(raw, contentType, limits, context.pathModel);
    return {
      body,
      request: {
        model,
        stream: body.stream === true,
        messages: body.messages,
        providerHeldHistory: false,
        user: body.user,
        max_tokens: body.max_tokens,
        max_completion_tokens: body.max_completion_tokens,
      },
    };
  },
  outbound(body, _request, prompt: ChatMessage[], options) {
    const now = Date.now() / 1000;
    const out: ChatBody = { ...body, messages: prompt.map((message) => chatOnly(message, now)) };
    if (options.injectUsage) out.stream_options = { ...body.stream_options, include_usage: true };
    if (options.cacheKey) out.prompt_cache_key = options.cacheKey;
    return out;
  },
  injectsUsage(body, request, route) {
    return request.stream && route.injectStreamUsage && body.stream_options?.include_usage !== true;
  },
  captureJson: captureJsonReply,
  streamReader: () => new StreamCapture(),
};
