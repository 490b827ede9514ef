import type { ChatMessage } from '../memory/messages.js';
import type { UpstreamChoice } from '../upstream/routing.js';
import type { JsonLimits } from './json-limits.js';
import type { CapturedReply } from './reply-capture.js';

/** Incremental capture of a streamed reply: fed a copy of every byte, asked for the reply at the end. */
export interface StreamReader {
  write(bytes: Uint8Array): void;
  result(): CapturedReply;
}

/** A client request as memory sees it, whatever API it came in on. */
export interface ApiRequest {
  model: string;
  stream: boolean;
  /** The conversation the request carries, as neutral (chat-shaped) messages; instructions first, as system messages. */
  messages: ChatMessage[];
  /**
   * The provider already holds the conversation (Responses `previous_response_id` or
   * `conversation`): the request goes as sent, and the turn is still recorded.
   */
  providerHeldHistory: boolean;
  /** The end user the body names (`user`), if any. */
  user?: unknown;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
}

/**
 * One client API at the edge of the request path. Memory keeps one
 * API-neutral transcript (chat-shaped messages); an adapter turns a request
 * into it, the assembled prompt back into a request body, and the reply into
 * one assistant message. Reconcile, assembly, recall, folds and the store
 * never see an API's own format: a third API is one more adapter.
 */
export interface ApiAdapter<Body = unknown> {
  /** The route label in metrics and logs. */
  readonly route: 'chat_completions' | 'responses';
  /** Request in: validated (400 with the offending param otherwise), and its neutral view. */
  parse(raw: Buffer, contentType: string | undefined, limits: JsonLimits, context: ParseContext): { body: Body; request: ApiRequest };
  /** Neutral prompt out: the body to send upstream with mnemo's messages in place of the client's. */
  outbound(body: Body, request: ApiRequest, prompt: ChatMessage[], options: OutboundOptions): unknown;
  /** Whether a streamed request gets `include_usage` (chat completions only). */
  injectsUsage(body: Body, request: ApiRequest, route: UpstreamChoice): boolean;
  /** Reply in: a non-streamed body, or undefined when it is not a reply mnemo can read. */
  captureJson(body: Buffer): CapturedReply | undefined;
  streamReader(): StreamReader;
}

export interface ParseContext {
  /** The model the path names (Azure: /openai/deployments/{deployment}/…), for bodies without `model`. */
  pathModel?: string;
}

export interface OutboundOptions {
  injectUsage: boolean;
  cacheKey?: string;
}
