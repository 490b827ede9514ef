import { z } from 'zod';

/**
 * The single source of mnemo's configuration: shape, defaults and the
 * environment variable that overrides each key. `config/mnemo.yaml` documents
 * the same keys for operators; `loadConfig` validates once at start.
 */

const byteSize = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i)])
  .describe('a size in bytes, or a string such as "10mb"');

const upstreamRoute = z.strictObject({
  /** Glob on the request's `model` ("gpt-4o*", "llama3:*"); first match wins. */
  model: z.string().min(1),
  /** Base URL of the OpenAI-compatible server that serves these models. */
  url: z.url(),
  /** Overrides `upstream.inject_stream_usage` for this server. */
  inject_stream_usage: z.boolean().optional(),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      /** Interface to bind. Env: MNEMO_HOST. */
      host: z.string().default('0.0.0.0'),
      /** TCP port. Env: MNEMO_PORT. */
      port: z.number().int().min(0).max(65535).default(8080),
      /** Largest request body accepted on memory routes; larger gets 413. */
      body_limit: byteSize.default('10mb'),
      /** Bearer token for /mnemo/* admin routes. Unset: admin routes answer only on loopback. Env: MNEMO_ADMIN_TOKEN. */
      admin_token: z.string().min(16).nullable().default(null),
    })
    .prefault({}),
  log: z
    .strictObject({
      /** pino level: fatal, error, warn, info, debug, trace, silent. Env: MNEMO_LOG_LEVEL. */
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Human-readable lines instead of JSON; default: only when stdout is a terminal. */
      pretty: z.boolean().optional(),
    })
    .prefault({}),
  upstream: z
    .strictObject({
      /** Base URL of the provider. Env: MNEMO_UPSTREAM_URL. */
      url: z.url().default('https://api.openai.com/v1'),
      /** Upper bound for one upstream call, headers and body included. */
      timeout_ms: z.number().int().positive().default(600_000),
      /**
       * Add `stream_options.include_usage` to streamed requests that lack it so
       * mnemo learns the provider's token counts; the extra usage chunk is removed
       * before the client sees the stream. Turn off for servers that reject it.
       */
      inject_stream_usage: z.boolean().default(true),
      /** Route chat completions to other servers by model name. */
      routes: z.array(upstreamRoute).default([]),
    })
    .prefault({}),
  store: z
    .strictObject({
      /**
       * sqlite://./relative.db, sqlite:///absolute.db, redis://host:port, memory://.
       * Env: MNEMO_STORE.
       */
      url: z.string().min(1).default('sqlite://./data/mnemo.db'),
      /** Each store call fails after this long instead of hanging a request. */
      timeout_ms: z.number().int().positive().default(2_000),
    })
    .prefault({}),
  session: z
    .strictObject({
      /** Header that carries the conversation id. */
      header: z.string().min(1).default('x-session-id'),
      /** Other accepted header names, checked after `header`. */
      aliases: z.array(z.string().min(1)).default(['x-mnemo-session-id']),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type UpstreamRoute = z.infer<typeof upstreamRoute>;
