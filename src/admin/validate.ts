import type { z } from 'zod';
import { BadRequestError } from '../errors.js';

/** Parses an admin request body, naming the first offending field like OpenAI's `param`. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined) throw new BadRequestError('Expected a JSON body (Content-Type: application/json).', { code: 'invalid_body' });
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.join('.') || null;
  throw new BadRequestError(`${param ?? 'body'}: ${issue.message}`, { param: param ?? undefined, code: 'invalid_body' });
}
