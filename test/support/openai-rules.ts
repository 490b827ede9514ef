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
export function chatRequestProblem(body: Json, options: { modelInPath?: boolean } = {}): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  // Azure OpenAI names the model by the deployment in the path; OpenAI requires it in the body.
  if (!(options.modelInPath && body.model === undefined) && (typeof body.model !== 'string' || body.model === '')) {
    return "'model' must be a non-empty string";
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "'messages' must be a non-empty array";
  if (body.stream_options !== undefined && body.stream !== true) return "'stream_options' is only allowed when 'stream' is true";
  if (body.response_format !== undefined) {
    const problem = responseFormatProblem(body.response_format);
    if (problem) return problem;
  }
  for (const [index, message] of body.messages.entries()) {
    const problem = messageProblem(message);
    if (problem) return `messages[${index}]: ${problem}`;
  }
  return toolOrderProblem(body.messages);
}

/** response_format as OpenAI validates it; a strict JSON schema must close every object and require every property. */
function responseFormatProblem(format: Json): string | undefined {
  if (format === null || typeof format !== 'object') return "'response_format' must be an object";
  if (!['text', 'json_object', 'json_schema'].includes(format.type))
    return "response_format.type must be 'text', 'json_object' or 'json_schema'";
  if (format.type !== 'json_schema') return undefined;
  const spec = format.json_schema;
  if (spec === null || typeof spec !== 'object' || typeof spec.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(spec.name)) {
    return 'response_format.json_schema.name must match ^[a-zA-Z0-9_-]{1,64}$';
  }
  return spec.strict === true ? strictSchemaProblem(spec.schema, 'root') : undefined;
}

function strictSchemaProblem(schema: Json, context: string): string | undefined {
  if (schema === null || typeof schema !== 'object') return `Invalid schema: ${context} must be an object`;
  if (schema.type === 'object') {
    if (schema.additionalProperties !== false)
      return `Invalid schema: in ${context}, 'additionalProperties' is required to be supplied and to be false`;
    const keys = Object.keys(schema.properties ?? {});
    const required: string[] = Array.isArray(schema.required) ? schema.required : [];
    const missing = keys.find((key) => !required.includes(key));
    if (missing) return `Invalid schema: in ${context}, 'required' must include every key in properties; missing '${missing}'`;
    for (const key of keys) {
      const problem = strictSchemaProblem(schema.properties[key], `${context}.${key}`);
      if (problem) return problem;
    }
  }
  if (schema.type === 'array' && schema.items !== undefined) return strictSchemaProblem(schema.items, `${context}[]`);
  return undefined;
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
      if (message.audio !== undefined && (typeof message.audio?.id !== 'string' || Object.keys(message.audio).length !== 1)) {
        return "assistant 'audio' must be { id } (the id of an earlier audio reply)";
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

const INPUT_PARTS = new Set(['input_text', 'input_image', 'input_file']);
const OUTPUT_PARTS = new Set(['output_text', 'refusal']);

/**
 * Why OpenAI would reject this Responses body: unknown item types, malformed messages, a
 * function_call_output with no function_call before it (here or in the previous response), a
 * function_call with no output after it, an unknown previous_response_id.
 */
export function responsesRequestProblem(body: Json, known: Map<string, Json[]>): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  if (typeof body.model !== 'string' || body.model === '') return "'model' must be a non-empty string";
  if (body.previous_response_id !== undefined && body.previous_response_id !== null && !known.has(body.previous_response_id)) {
    return `Previous response with id '${body.previous_response_id}' not found.`;
  }
  if (typeof body.input === 'string') return undefined;
  if (!Array.isArray(body.input)) return "'input' must be a string or an array of items";
  const calls = new Set<string>();
  const answered = new Set<string>();
  for (const item of known.get(body.previous_response_id) ?? []) if (item?.type === 'function_call') calls.add(item.call_id);
  for (const [index, item] of body.input.entries()) {
    const at = `input[${index}]`;
    if (item === null || typeof item !== 'object') return `${at}: must be an object`;
    const type = item.type ?? 'message';
    if (type === 'message') {
      if (!['user', 'assistant', 'system', 'developer'].includes(item.role)) return `${at}: invalid role ${JSON.stringify(item.role)}`;
      if (typeof item.content === 'string') continue;
      if (!Array.isArray(item.content)) return `${at}: content must be a string or an array`;
      const allowed = item.role === 'assistant' ? OUTPUT_PARTS : INPUT_PARTS;
      for (const part of item.content)
        if (!allowed.has(part?.type)) return `${at}: content part ${JSON.stringify(part?.type)} not allowed for ${item.role}`;
    } else if (type === 'function_call') {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string' || typeof item.arguments !== 'string')
        return `${at}: malformed function_call`;
      calls.add(item.call_id);
    } else if (type === 'function_call_output') {
      if (!calls.has(item.call_id)) return `${at}: No tool call found for function call output with call_id ${item.call_id}.`;
      if (typeof item.output !== 'string' && !Array.isArray(item.output)) return `${at}: output must be a string or an array`;
      answered.add(item.call_id);
    } else if (type === 'reasoning') {
      if (typeof item.id !== 'string' || !Array.isArray(item.summary)) return `${at}: malformed reasoning item`;
    } else {
      return `${at}: Invalid value: ${JSON.stringify(type)}.`;
    }
  }
  for (const call of calls) {
    const inInput = body.input.some((item: Json) => item?.type === 'function_call' && item.call_id === call);
    if (inInput && !answered.has(call)) return `No tool output found for function call ${call}.`;
  }
  return undefined;
}
