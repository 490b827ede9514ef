import { z } from 'zod';
import { linearPatternError } from '../linear-regex.js';
import bytes from 'bytes';
import { DEFAULT_BLOCK_CACHE_BYTES } from '../memory/lexical-index.js';
import { DEFAULT_CHUNK_CACHE_BYTES } from '../store/chunk-cache.js';

/** Accepts a key's former name: moves `from` to `to` unless `to` is also given. */
function renameKey(from: string, to: string) {
  return (value: unknown) => {
    if (!value || typeof value !== 'object' || !(from in value) || to in value) return value;
    const { [from]: moved, ...rest } = value as Record<string, unknown>;
    return { ...rest, [to]: moved };
  };
}

/**
 * The single source of mnemo's configuration: shape, defaults and the
 * environment variable that overrides each key. `config/mnemo.yaml` documents
 * the same keys for operators; `loadConfig` validates once at start.
 */

// Parsed once here (with `bytes`, the parser body-parser uses) so the request path compares numbers.
const sizeInput = z.union([z.number().int().min(0), z.string().regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i)]);
const toBytes = (value: number | string): number => (typeof value === 'number' ? value : bytes.parse(value)!);
const byteSize = sizeInput.transform(toBytes).pipe(z.number().positive()).describe('a size in bytes, or a string such as "10mb"');
const byteSizeOrZero = sizeInput.transform(toBytes).describe('a size in bytes, or a string such as "64mb"; 0 turns it off');

const upstreamRoute = z.strictObject({
  /** Glob on the request's `model` ("gpt-4o*", "llama3:*"); first match wins. */
  model: z.string().min(1),
  /** Base URL of the OpenAI-compatible server that serves these models. */
  url: z.url(),
  /** Overrides `upstream.inject_stream_usage` for this server. */
  inject_stream_usage: z.boolean().optional(),
  /** Overrides `upstream.prompt_cache_key` for this server. */
  prompt_cache_key: z.union([z.boolean(), z.literal('auto')]).optional(),
});

const pruningRule = z.discriminatedUnion('kind', [
  z.strictObject({
    /** Drop history messages whose whole text matches one of `patterns` (case-insensitive): small talk. */
    kind: z.literal('drop_matching'),
    patterns: z.array(linearRegExp()).min(1),
    roles: z.array(z.enum(['user', 'assistant'])).default(['user', 'assistant']),
  }),
  z.strictObject({
    /** Replace tool results older than `older_than_turns` turns with a one-line stub naming the call. */
    kind: z.literal('stub_tool_results'),
    older_than_turns: z.number().int().min(0),
  }),
  z.strictObject({
    /** Cut any single history message over `max_tokens`, ending it with `marker`. */
    kind: z.literal('truncate'),
    max_tokens: z.number().int().positive(),
    marker: z.string().default(' […truncated by mnemo]'),
  }),
  z.strictObject({
    /** Replace images, audio and files in history messages older than `older_than_turns` turns with a text stand-in. */
    kind: z.literal('stub_media'),
    older_than_turns: z.number().int().min(0),
  }),
  z.strictObject({
    /** Keep at most `max_messages` history messages of `role` (older tool results become stubs, others are dropped). */
    kind: z.literal('role_limit'),
    role: z.enum(['user', 'assistant', 'tool']),
    max_messages: z.number().int().min(0),
  }),
]);

const factExtractor = z.strictObject({
  /** Fact key as shown to the model, e.g. order_id. */
  name: z.string().regex(/^[A-Za-z][\w.-]*$/),
  /** Regular expression in JavaScript syntax, run on RE2 in linear time (no backreferences or lookaround), case-insensitively, against message text and tool arguments/results. */
  pattern: linearRegExp(),
  /** Capture group holding the value (0 = whole match). */
  group: z.number().int().min(0).default(1),
  /** session: this conversation; user: the user's profile across sessions. */
  scope: z.enum(['session', 'user']).default('session'),
  /** Which messages to scan. */
  roles: z.array(z.enum(['user', 'assistant', 'tool'])).default(['user', 'assistant', 'tool']),
});

/** Context windows of common models, from the providers' model pages (checked 2026-11). */
export const CONTEXT_WINDOWS: Record<string, number> = {
  'gpt-4.1*': 1_047_576,
  'gpt-5*': 400_000,
  'gpt-4o*': 128_000,
  'chatgpt-4o*': 128_000,
  'o1-mini*': 128_000,
  'o1*': 200_000,
  'o3*': 200_000,
  'o4-mini*': 200_000,
  'gpt-4-turbo*': 128_000,
  'gpt-4-32k*': 32_768,
  'gpt-4': 8_192,
  'gpt-4-0613': 8_192,
  'gpt-3.5-turbo*': 16_385,
};

const memorySchema = z.strictObject({
  /** Master switch: false forwards the full stored history (issue #2 behaviour). */
  enabled: z.boolean().default(true),
  budget: z
    .strictObject({
      /** Context window of models not in `context_windows`. */
      default_context_window: z.number().int().positive().default(128_000),
      /** Context window per model (glob on the model name; first match wins, so list specific globs first). */
      context_windows: z.record(z.string(), z.number().int().positive()).default(CONTEXT_WINDOWS),
      /** Tokens for memory + recall + window together (the client's instructions and new messages come on top). */
      prompt_tokens: z.number().int().positive().default(6_000),
      /** Tokens kept free for the reply when the request sets no max_tokens / max_completion_tokens. */
      completion_reserve: z.number().int().min(0).default(4_096),
      /** Per-model overrides of prompt_tokens / completion_reserve (glob on the model name; first match wins). */
      models: z
        .record(
          z.string(),
          z.strictObject({ prompt_tokens: z.number().int().positive().optional(), completion_reserve: z.number().int().min(0).optional() }),
        )
        .default({}),
    })
    .prefault({}),
  window: z.preprocess(
    renameKey('keep_tokens', 'min_tokens'),
    z
      .strictObject({
        /** Most recent turns (a turn starts at a user message) always considered for the prompt. */
        max_turns: z.number().int().positive().default(50),
        /**
         * The verbatim window holds between min_tokens and min_tokens + step_tokens of the newest
         * turns; its start moves in steps of step_tokens (at a turn start), so the prompt's prefix
         * stays cacheable between steps. Older turns reach the prompt through recall and the summary.
         */
        min_tokens: z.number().int().positive().default(300),
        step_tokens: z.number().int().positive().default(700),
        /**
         * While the summary is short, the window holds more, so memory block and window reach this
         * many tokens: providers cache only prompts of 1,024+ tokens. 0 turns it off.
         */
        cache_prefix_tokens: z.number().int().min(0).default(1_100),
      })
      .prefault({}),
  ),
  /**
   * Where mnemo's blocks go. messages: their own system messages (memory first, recall and
   * context just before the new messages: the cached prefix stays intact). leading_system: inside
   * the client's leading system message (or as the first message), for chat templates that
   * reject a system message anywhere but first (Mistral, Gemma on vLLM).
   */
  placement: z.enum(['messages', 'leading_system']).default('messages'),
  /** Applied to the window in this order, before the budget. */
  rules: z.array(pruningRule).default([]),
  summary: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Fold when the turns before the window not yet summarized exceed this many tokens. */
      trigger_tokens: z.number().int().positive().default(5_000),
      /** Model for summary calls, through the same upstream. */
      model: z.string().default('gpt-4o-mini'),
      /** Reply limit of one summary call. */
      max_tokens: z.number().int().positive().default(400),
      timeout_ms: z.number().int().positive().default(60_000),
      /** First retry delay after a failed fold; doubles per failure up to `retry_max_ms`. */
      retry_base_ms: z.number().int().positive().default(2_000),
      retry_max_ms: z.number().int().positive().default(300_000),
      prompt: z
        .string()
        .default(
          'You maintain the running memory of a conversation between a user and an assistant. ' +
            'Merge the existing summary and the new turns into one updated summary. Keep every concrete detail the assistant may ' +
            'need later: names, identifiers, numbers, dates, decisions, open questions, user preferences. Drop greetings and small ' +
            'talk. Write compact third-person notes, no preamble.',
        ),
    })
    .prefault({}),
  context: z
    .strictObject({
      /** Tokens for retrieved facts, captured tool results and injected scratchpad entries. */
      max_tokens: z.number().int().min(0).default(800),
      /** At most this many facts per request, the most relevant to the new message. */
      max_facts: z.number().int().min(0).default(6),
      /** Capture tool results the client sends as facts. */
      capture_tool_results: z.boolean().default(true),
    })
    .prefault({}),
  facts: z
    .strictObject({
      extractors: z.array(factExtractor).default([]),
      /** Also ask the summarizer for facts (same call, JSON-schema'd reply). */
      llm: z.boolean().default(false),
      /** At most this many tokens of facts in the memory block (newest first). */
      max_tokens: z.number().int().positive().default(400),
    })
    .prefault({}),
  recall: z
    .strictObject({
      enabled: z.boolean().default(true),
      /**
       * bm25: lexical, local, no extra calls. hybrid: bm25 fused with embeddings (reciprocal rank
       * fusion); passages are embedded in the background through the upstream's /v1/embeddings,
       * the new message on the request path. embeddings: embeddings alone. Both fall back to bm25
       * when the request-path call fails or times out.
       */
      method: z.enum(['bm25', 'hybrid', 'embeddings']).default('bm25'),
      embeddings: z
        .strictObject({
          model: z.string().default('text-embedding-3-small'),
          /** Vector size requested from the provider (text-embedding-3-* can shorten); smaller = less storage. */
          dimensions: z.number().int().positive().default(256),
          /** Bound on the request-path call that embeds the new message. */
          timeout_ms: z.number().int().positive().default(2_000),
          /** method embeddings: minimum cosine similarity for a passage to be recalled (hybrid fuses ranks). */
          min_similarity: z.number().min(-1).max(1).default(0.35),
          /** Passages are embedded once this many messages wait (fewer, larger calls). */
          batch_messages: z.number().int().positive().default(8),
        })
        .prefault({}),
      /** Most passages considered per request (best first; the token budget decides how many fit). */
      top_k: z.number().int().min(0).default(48),
      /** Tokens for recalled passages, filled best first. */
      max_tokens: z.number().int().min(0).default(2_500),
      /**
       * hybrid: once the lexical gate decides the message needs the past, at least this many
       * passages of the fused ranking are considered, however few matched its words.
       */
      min_hits: z.number().int().min(0).default(12),
      /**
       * A passage is recalled only if it matches at least this share of the new message's weight
       * (BM25 score over that of a passage holding every query term once): a turn that needs
       * nothing gets nothing.
       */
      min_coverage: z.number().min(0).max(1).default(0.15),
      /**
       * Recall happens at all only when the best passage matches at least this share of a message
       * that asks something (a question mark in any script), and `statement_trigger_coverage` of one
       * that does not: most chat turns are statements that need nothing from the past, and recall is
       * paid in uncached tokens.
       */
      trigger_coverage: z.number().min(0).max(1).default(0.2),
      statement_trigger_coverage: z.number().min(0).max(1).default(0.9),
      /** Passages on each side of a hit brought along when the budget allows (context, the date of a reply). */
      neighbours: z.number().int().min(0).max(3).default(1),
      /**
       * The summarizer also writes keywords and short paraphrases for each folded turn, in the same
       * call, and they are indexed with the turn: a later question in other words ("relationship
       * status" for "single") still finds it. Costs summarizer output tokens; needs summary.enabled.
       */
      llm_keys: z.boolean().default(false),
      /** before_new keeps the cached prefix intact (recommended); before_window follows the reading order. */
      position: z.enum(['before_new', 'before_window']).default('before_new'),
    })
    .prefault({}),
});

const price = z.strictObject({
  /** USD per million uncached input tokens. */
  input: z.number().min(0),
  /** USD per million cached input tokens (defaults to `input`). */
  cached_input: z.number().min(0).optional(),
  /** USD per million output tokens. */
  output: z.number().min(0),
});

/**
 * OpenAI list prices in USD per million tokens, as published on openai.com/api/pricing
 * (standard tier) when last checked in 2025-08. Override in YAML for your contract or provider.
 */
export const PRICES: Record<string, z.infer<typeof price>> = {
  'gpt-4o-mini*': { input: 0.15, cached_input: 0.075, output: 0.6 },
  'gpt-4o*': { input: 2.5, cached_input: 1.25, output: 10 },
  'gpt-4.1-nano*': { input: 0.1, cached_input: 0.025, output: 0.4 },
  'gpt-4.1-mini*': { input: 0.4, cached_input: 0.1, output: 1.6 },
  'gpt-4.1*': { input: 2, cached_input: 0.5, output: 8 },
  'gpt-5-nano*': { input: 0.05, cached_input: 0.005, output: 0.4 },
  'gpt-5-mini*': { input: 0.25, cached_input: 0.025, output: 2 },
  'gpt-5*': { input: 1.25, cached_input: 0.125, output: 10 },
  'o4-mini*': { input: 1.1, cached_input: 0.275, output: 4.4 },
  'o3-mini*': { input: 1.1, cached_input: 0.55, output: 4.4 },
  'o3*': { input: 2, cached_input: 0.5, output: 8 },
  'gpt-3.5-turbo*': { input: 0.5, output: 1.5 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
};

const configFields = z.strictObject({
  server: z
    .strictObject({
      /** Interface to bind. Env: MNEMO_HOST. */
      host: z.string().default('0.0.0.0'),
      /** TCP port. Env: MNEMO_PORT. */
      port: z.number().int().min(0).max(65535).default(8080),
      /** Largest request body accepted on memory routes; larger gets 413. */
      body_limit: byteSize.prefault('10mb'),
      /** Most messages one chat request may carry; more gets 400 (work per request stays bounded). */
      max_messages: z.number().int().positive().default(10_000),
      /** Deepest JSON nesting accepted in a request body (chat and admin); deeper gets 400. */
      max_json_depth: z.number().int().min(8).default(64),
      /** Bearer token for /mnemo/* admin routes. Unset: admin routes answer only on loopback. Env: MNEMO_ADMIN_TOKEN. */
      admin_token: z.string().min(16).nullable().default(null),
      /** Reload the config file when it changes (SIGHUP always reloads). */
      watch_config: z.boolean().default(false),
      /** On SIGTERM/SIGINT, how long in-flight requests, streams and summary folds may take to finish. */
      shutdown_grace_ms: z.number().int().min(0).default(15_000),
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
      /** Longest silence between two chunks of a provider's body (streams included). */
      idle_timeout_ms: z.number().int().positive().default(120_000),
      /** Replies larger than this are delivered but not stored (and counted in mnemo_replies_not_stored_total). */
      max_capture_bytes: byteSize.prefault('1mb'),
      /**
       * Add `stream_options.include_usage` to streamed requests that lack it so
       * mnemo learns the provider's token counts; the extra usage chunk is removed
       * before the client sees the stream. Turn off for servers that reject it.
       */
      inject_stream_usage: z.boolean().default(true),
      /**
       * Send `prompt_cache_key` (a hash of the session) so the provider routes a session's calls
       * to the same prompt cache. auto: only to OpenAI (api.openai.com), where the field is known;
       * other OpenAI-compatible servers may reject unknown fields. true/false force it.
       */
      prompt_cache_key: z.union([z.boolean(), z.literal('auto')]).default('auto'),
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
      /**
       * Each call to a networked store (Redis, PostgreSQL) fails after this long instead of hanging a
       * request. SQLite and memory calls run inside the process and return before any timer could fire.
       */
      timeout_ms: z.number().int().positive().default(2_000),
      /**
       * Decoded sealed transcript chunks kept in memory, so a turn's recent window is read without a
       * store round trip. Sealed chunks never change under their key, so entries never go stale, even
       * with several instances writing a session. 0 turns it off.
       */
      chunk_cache: byteSizeOrZero.prefault(DEFAULT_CHUNK_CACHE_BYTES),
      /**
       * Recall index blocks (and embedding segments) kept in memory (per instance) once read, so a
       * search reads only the index's stats record. Both are written once under their names, so entries never
       * go stale. Too small a cache makes a JSON store (SQLite, Redis) read and unpack a session's
       * whole index on its searches. 0 turns it off.
       */
      index_cache: byteSizeOrZero.prefault(DEFAULT_BLOCK_CACHE_BYTES),
      /**
       * A local file (SQLite, fsynced) for turns the provider answered whose commit failed: they are
       * replayed in order once the store answers. One per instance, on its own disk; null turns it
       * off (such turns are then lost, and counted). Env: MNEMO_OUTBOX.
       */
      outbox: z.string().min(1).nullable().default('./data/outbox.db'),
      /** How often the outbox retries the store (ms). */
      outbox_interval_ms: z.number().int().positive().default(1_000),
      /**
       * When the store fails or times out on a chat request: fail answers 503 with an error object;
       * pass_through forwards the request as sent, with no memory, marked X-Mnemo-Memory: degraded.
       * Memory resumes by itself when the store answers again.
       */
      on_store_error: z.enum(['fail', 'pass_through']).default('fail'),
      /**
       * A durable cold tier (postgres://user@host/db or sqlite://path.db; empty = one tier). Sessions
       * idle longer than hot_ttl_ms move there and come back on their next request. Env: MNEMO_COLD_STORE.
       */
      cold_url: z.string().default(''),
      /** How long a session stays in `url` after its last activity before moving to `cold_url` (ms). */
      hot_ttl_ms: z.number().int().min(1_000).default(3_600_000),
      /** How often each instance looks for sessions to move cold (ms). */
      tier_interval_ms: z.number().int().positive().default(60_000),
    })
    .refine((store) => store.cold_url === '' || store.cold_url !== store.url, {
      message: 'cold_url must name a different store than url',
      path: ['cold_url'],
    })
    .prefault({}),
  session: z
    .preprocess(
      renameKey('idle_ttl_ms', 'retention_ms'),
      z.strictObject({
        /** Header that carries the conversation id. */
        header: z.string().min(1).default('x-session-id'),
        /** Other accepted header names, checked after `header`. */
        aliases: z.array(z.string().min(1)).default(['x-mnemo-session-id']),
        /**
         * Sessions idle this long are erased from every tier (ms; 0 = keep forever). The former
         * name idle_ttl_ms is still accepted.
         */
        retention_ms: z.number().int().min(0).default(0),
        /** How often idle sessions and old tombstones are swept (ms); sessions are also expired when next touched. */
        sweep_interval_ms: z.number().int().positive().default(600_000),
        /**
         * How long an erased session's tombstone is kept (ms). Until then a turn that began before
         * the erase (in flight, retrying, or waiting in an instance's outbox) cannot create the
         * session again; a turn older than this cannot create a session at all (an outbox replay
         * that waited longer is dropped), since an erase would no longer show. Default: 7 days.
         */
        tombstone_ttl_ms: z.number().int().min(60_000).default(604_800_000),
        /** How long an Idempotency-Key's answer is replayed to retries (ms). */
        idempotency_ttl_ms: z.number().int().positive().default(86_400_000),
      }),
    )
    .prefault({}),
  tenancy: z
    .strictObject({
      /**
       * api_key: each provider credential (Authorization of any scheme, api-key, x-api-key,
       * x-goog-api-key) is its own tenant, by hash; a session request without one gets 401.
       * header: a trusted gateway names the tenant in `header`. none: one tenant.
       */
      mode: z.enum(['api_key', 'header', 'none']).default('api_key'),
      header: z.string().min(1).default('x-mnemo-tenant'),
    })
    .prefault({}),
  users: z
    .strictObject({
      /** Header carrying the end user's id (the request body's `user` field is used when absent). */
      header: z.string().min(1).default('x-user-id'),
      aliases: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  privacy: z
    .strictObject({
      /** Applied to message text before anything is stored (not to what the current request forwards). */
      redact: z
        .array(
          z.strictObject({
            name: z.string().min(1),
            pattern: linearRegExp(),
            replacement: z.string().default('[redacted]'),
          }),
        )
        .default([]),
    })
    .prefault({}),
  memory: memorySchema.prefault({}),
  metrics: z
    .strictObject({
      /** Serve GET /metrics (Prometheus text format). */
      enabled: z.boolean().default(true),
      /** When set, /metrics requires `Authorization: Bearer <token>`. Env: MNEMO_METRICS_TOKEN. */
      token: z.string().min(16).nullable().default(null),
      /** A session counts as active for this long after its last request. */
      active_session_window_ms: z.number().int().positive().default(900_000),
    })
    .prefault({}),
  pricing: z
    .strictObject({
      /** The date the prices were last checked; shown nowhere but here, so readers know how stale they are. */
      as_of: z.string().default('2025-08'),
      /** Prices per model (glob, first match wins). Models without a price count tokens but no money. */
      models: z.record(z.string(), price).default(PRICES),
    })
    .prefault({}),
});

// A turn lives at most about as long as its upstream call: a tombstone gone sooner could let a slow
// turn that began before an erase create the session again, or refuse a slow new session's first
// turn (erase.ts).
export const configSchema = configFields.refine((config) => config.session.tombstone_ttl_ms > 2 * config.upstream.timeout_ms, {
  message: 'session.tombstone_ttl_ms must exceed twice upstream.timeout_ms',
  path: ['session', 'tombstone_ttl_ms'],
});

export type Config = z.infer<typeof configSchema>;
export type MemoryConfig = z.infer<typeof memorySchema>;
export type PruningRule = z.infer<typeof pruningRule>;
export type FactExtractor = z.infer<typeof factExtractor>;
export type Price = z.infer<typeof price>;

/** A pattern mnemo runs on message text: valid, and runnable on the linear-time engine. */
function linearRegExp() {
  return z
    .string()
    .min(1)
    .superRefine((source, context) => {
      const problem = linearPatternError(source);
      if (problem) context.addIssue({ code: 'custom', message: problem });
    });
}
