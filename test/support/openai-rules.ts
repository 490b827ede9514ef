/**
 * What OpenAI's API rejects with 400, as its API reference and error messages
 * document it. The fake provider checks every request against these rules, so
 * a test cannot pass on a request the real API would refuse.
 */

type Json = any;

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const USER_PARTS = new Set(['text', 'image_url', 'input_audio', 'file']);
const ASSISTANT_PARTS = new Set(['text', 'refusal']);

/** Why OpenAI would reject this chat-completions body, or undefined when it would accept it. */
export function chatRequestProblem(body: Json): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  if (typeof body.model !== 'string' || body.model === '') return "'model' must be a non-empty string";
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "'messages' must be a non-empty array";
  if (body.stream_options !== undefined && body.stream !== true) return "'stream_options' is only allowed when 'stream' is true";
  for (const [index, message] of body.messages.entries()) {
    const problem = messageProblem(message);
    if (problem) return `messages[${index}]: ${problem}`;
  }
  return toolOrderProblem(body.messages);
}

function messageProblem(message: Json): string | undefined {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return 'must be an object';
  if (!ROLES.has(message.role)) return `unknown role ${JSON.stringify(message.role)}`;
  if (message.name !== undefined && typeof message.name !== 'string') return "'name' must be a string";
  const content = message.content;
  switch (message.role) {
    case 'system':
    case 'developer':
      return textContentProblem(content, new Set(['text']));
    case 'user':
      return textContentProblem(content, USER_PARTS);
    case 'tool':
      if (typeof message.tool_call_id !== 'string' || message.tool_call_id === '') return "'tool_call_id' is required";
      return textContentProblem(content, new Set(['text']));
    case 'assistant': {
      if (message.tool_calls !== undefined) {
        if (!Array.isArray(message.tool_calls) || message.tool_calls.length === 0) return "'tool_calls' must be a non-empty array";
        for (const call of message.tool_calls) {
          if (typeof call?.id !== 'string' || call.type !== 'function' || typeof call.function?.name !== 'string') {
            return 'each tool call needs an id, type "function" and a function name';
          }
          if (typeof call.function.arguments !== 'string') return 'tool call arguments must be a string';
        }
      }
      const exempt = message.tool_calls !== undefined || message.function_call !== undefined || message.audio !== undefined;
      if ((content === null || content === undefined) && !exempt)
        return "assistant 'content' is required unless tool_calls or function_call is set";
      if (content === null || content === undefined) return undefined;
      return textContentProblem(content, ASSISTANT_PARTS);
    }
    default:
      return undefined;
  }
}

function textContentProblem(content: Json, parts: Set<string>): string | undefined {
  if (typeof content === 'string') return undefined;
  if (!Array.isArray(content)) return "'content' must be a string or an array of content parts";
  for (const part of content) {
    if (part === null || typeof part !== 'object' || !parts.has(part.type))
      return `content part type ${JSON.stringify(part?.type)} is not allowed here`;
    if (part.type === 'text' && typeof part.text !== 'string') return "a text part needs 'text'";
  }
  return undefined;
}

/**
 * "An assistant message with 'tool_calls' must be followed by tool messages responding to each
 * 'tool_call_id'", and "messages with role 'tool' must be a response to a preceding message
 * with 'tool_calls'": nothing may come between a tool_calls message and its results.
 */
function toolOrderProblem(messages: Json[]): string | undefined {
  let open: Set<string> | undefined;
  for (const [index, message] of messages.entries()) {
    if (message.role === 'tool') {
      if (!open?.has(message.tool_call_id)) {
        return `messages[${index}]: a 'tool' message must answer a tool_call_id of the assistant message just before it`;
      }
      open.delete(message.tool_call_id);
      continue;
    }
    if (open && open.size > 0) return `messages[${index}]: tool_call_ids ${[...open].join(', ')} have no response messages`;
    open =
      message.role === 'assistant' && Array.isArray(message.tool_calls)
        ? new Set(message.tool_calls.map((call: Json) => call.id))
        : undefined;
  }
  if (open && open.size > 0) return `tool_call_ids ${[...open].join(', ')} have no response messages`;
  return undefined;
}

/** Why OpenAI would reject this embeddings body. */
export function embeddingsRequestProblem(body: Json): string | undefined {
  if (body === null || typeof body !== 'object') return 'body must be a JSON object';
  if (typeof body.model !== 'string' || body.model === '') return "'model' must be a non-empty string";
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  if (inputs.length === 0 || inputs.some((input: Json) => typeof input !== 'string' || input === '')) {
    return "'input' must be a non-empty string or an array of non-empty strings";
  }
  return undefined;
}
