import { createHash } from 'node:crypto';
import { memoized } from '../memo.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashId } from '../logger.js';
import type { AssembledPrompt } from '../memory/assemble.js';
import { foldCredentials } from '../memory/folds.js';
import { buildPrompt } from '../memory/prompt.js';
import { loadTurn, toStored, type TurnRequest, type TurnState } from '../memory/transcript.js';
import { newMessageId, type StoredMessage } from '../memory/messages.js';
import { commitOrQueue } from './commit-or-queue.js';
import { withPendingTurns } from '../memory/outbox-replay.js';
import type { PendingTurn } from '../store/outbox.js';
import { StoreUnavailableError, UpstreamTimeoutError } from '../errors.js';
import type { RequestFacts } from '../metrics/http.js';
import { providerName } from '../metrics/metrics.js';
import { callCost, priceFor, savedCost } from '../metrics/pricing.js';
import type { UpstreamResponse } from '../upstream/client.js';
import { forwardRequestHeaders, upstreamTarget } from '../upstream/headers.js';
import { chooseUpstream, type UpstreamChoice } from '../upstream/routing.js';
import { peekModel } from './chat-body.js';
import type { ApiAdapter, ApiRequest } from './api-adapter.js';
import { MESSAGE_FRAMING, REPLY_PRIMING } from '../tokenizer.js';
import type { Config } from '../config/schema.js';
import { sessionHeaders, type ProxyDeps } from './deps.js';
import { readSessionId, readUserId, requestTenant, sessionKey } from './identify.js';
import type { CapturedReply } from './reply-capture.js';
import { relayJson, relayStream, relayUnchanged, upstreamFailure, type RelayHooks } from './relay.js';
import { answerFor, answerName, readIdempotencyKey, replay, requestFingerprint, type StoredAnswer } from './idempotency.js';
import type { PassThrough } from './pass-through.js';
import { readBody } from './read-body.js';
import type { NotStoredReason } from './capture-guard.js';
import { jsonLimits } from './json-limits.js';

/**
 * POST …/chat/completions and …/responses, one handler for both: an adapter
 * (api-adapter.ts) turns each API's body into the neutral transcript and back.
 * The life of a call, top to bottom:
 * identify → load and reconcile → assemble → forward → capture → commit → record.
 * Requests without a session header are forwarded byte for byte: streamed
 * through `passThrough` unread, or read only for their model when model routes
 * are configured.
 */
export function memoryRoute<Body>(
  deps: ProxyDeps,
  passThrough: PassThrough,
  api: ApiAdapter<Body>,
): (req: IncomingMessage, res: ServerResponse, facts: RequestFacts) => Promise<void> {
  return async (req, res, facts) => {
    const config = deps.config();
    const sessionId = readSessionId(req.headers, sessionHeaders(config));
    if (sessionId === undefined) {
      res.setHeader('X-Mnemo-Memory', 'bypass');
      facts.memory = 'bypass';
      if (config.upstream.routes.length === 0) return passThrough(req, res);
      const raw = await readBody(req, config.server.body_limit);
      const route = chooseUpstream(config.upstream, peekModel(raw));
      await forward(deps, req, res, facts, { body: raw, route }, (upstream, hooks) => relayUnchanged(upstream, res, hooks));
      return;
    }

    const raw = await readBody(req, config.server.body_limit);
    const { body, request } = api.parse(raw, req.headers['content-type'], jsonLimits(config.server), { pathModel: deploymentOf(req.url) });
    const tenant = requestTenant(req.headers, config.tenancy);
    const key = sessionKey(tenant, sessionId);
    const idempotencyKey = readIdempotencyKey(req.headers);
    const user = readUserId(req.headers, { user: request.user }, config.users);
    const turn = {
      messages: request.messages,
      model: request.model,
      tenant,
      user,
      idempotencyKey,
      turnId: newMessageId(),
      startedAt: deps.now(),
    };
    Object.assign(facts, { session: hashId(key), model: request.model, stream: request.stream });
    deps.metrics.seen(facts.session!, deps.now());

    const route = chooseUpstream(config.upstream, request.model);
    const credentials = foldCredentials(req.headers);
    let state: TurnState;
    let prompt: AssembledPrompt;
    try {
      // Turns of this session still waiting in the outbox go first, so the conversation does not
      // skip; while they cannot land, they are shown from the outbox and this turn queues behind them.
      const waiting = await waitingTurns(deps, key);
      state = withPendingTurns(await loadTurn(deps, key, turn, config), waiting, deps);
      if (idempotencyKey && state.meta?.memory.idempotency?.includes(idempotencyKey)) {
        // The first attempt completed: the retry gets its answer, and nothing is recorded twice.
        const [stored] = await deps.store.readAux<StoredAnswer>(key, [answerName(idempotencyKey)]);
        const answer = answerFor(stored, idempotencyKey, requestFingerprint(raw), deps.now(), config.session.idempotency_ttl_ms);
        if (answer) return replay(res, answer);
      }
      // A provider holding the conversation (Responses previous_response_id) gets the request as sent.
      prompt = request.providerHeldHistory ? asSent(state) : await buildPrompt(deps, key, state, request, config.memory, credentials);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || config.store.on_store_error !== 'pass_through') throw error;
      // Fail open: the request goes as the client sent it, without memory; its answer waits in
      // the outbox and joins the session once the store is back.
      deps.logger.warn({ err: error, session: facts.session }, 'store unavailable; forwarding without memory');
      deps.metrics.memoryDegraded.inc({ reason: 'store_unavailable' });
      facts.memory = 'degraded';
      res.setHeader('X-Mnemo-Memory', 'degraded');
      const queue = async (reply: CapturedReply | undefined) => {
        if (reply?.complete) queueOnly(deps, key, turn, storedReply(reply, request.model, deps, config));
      };
      await forward(deps, req, res, facts, { body: raw, route }, (upstream, hooks) =>
        relayReply(upstream, res, hooks, { stripUsage: false, keepCopy: false }, queue).then(() => undefined),
      );
      return;
    }
    const injectUsage = !request.providerHeldHistory && api.injectsUsage(body, request, route);
    const cacheKey =
      route.promptCacheKey && (body as { prompt_cache_key?: unknown }).prompt_cache_key === undefined ? promptCacheKey(key) : undefined;
    const outbound = request.providerHeldHistory
      ? raw
      : Buffer.from(
          JSON.stringify(
            api.outbound(
              body,
              request,
              prompt.messages.map((entry) => entry.message),
              { injectUsage, cacheKey },
            ),
          ),
        );

    Object.assign(facts, { baselineTokens: prompt.baselineTokens, sentTokens: prompt.sentTokens, memory: state.meta ? 'hit' : 'miss' });
    res.setHeader('X-Mnemo-Session', sessionId);
    res.setHeader('X-Mnemo-Memory', facts.memory!);
    res.setHeader('X-Mnemo-Tokens-Baseline', String(prompt.baselineTokens));
    res.setHeader('X-Mnemo-Tokens-Sent', String(prompt.sentTokens));

    let factsExtracted = 0;
    const queueBehind = deps.outbox?.box.hasPending(key) === true;
    const commit = async (reply: CapturedReply | undefined, sent: Buffer) => {
      if (!reply?.complete) return;
      const outcome = await commitOrQueue(deps, key, turn, config, state, queueBehind, storedReply(reply, request.model, deps, config), {
        baselineTokens: prompt.baselineTokens,
        sentTokens: prompt.sentTokens,
        providerPromptTokens: reply.usage?.prompt_tokens,
        providerCachedTokens: reply.usage?.prompt_tokens_details?.cached_tokens,
        completionTokens: reply.usage?.completion_tokens,
      });
      if (outcome.kind === 'committed') {
        factsExtracted = outcome.factsExtracted;
        try {
          if (idempotencyKey) {
            const answer: StoredAnswer = {
              key: idempotencyKey,
              fingerprint: requestFingerprint(raw),
              at: deps.now(),
              status: 200,
              contentType: request.stream ? 'text/event-stream' : 'application/json',
              body: sent.toString('base64'),
            };
            await deps.store.writeAux(key, [{ name: answerName(idempotencyKey), value: answer }]);
          }
        } catch (error) {
          // The turn is in; only a retry's replay of this answer is lost (it would be answered anew, recorded once).
          deps.logger.warn({ err: error, session: facts.session }, 'idempotent answer not stored');
        }
        deps.folds.maybeSchedule(key, outcome.meta, credentials);
        return;
      }
      // The provider already answered (and billed): the answer is delivered either way.
      if (outcome.kind === 'queued') {
        deps.logger.warn({ err: outcome.error, session: facts.session }, 'turn not committed; queued in the outbox');
        deps.metrics.outboxWrites.inc();
      } else if (outcome.kind === 'lost') {
        deps.logger.error({ err: outcome.error, session: facts.session }, 'turn not committed');
        deps.metrics.turnsLost.inc();
      }
      deps.metrics.memoryDegraded.inc({
        reason: outcome.kind === 'erased' ? 'erased' : outcome.kind === 'queued' ? 'queued' : 'commit_failed',
      });
      facts.memory = outcome.kind === 'queued' ? 'queued' : 'degraded';
      if (!res.headersSent) res.setHeader('X-Mnemo-Memory', facts.memory);
    };
    const headers = { 'content-type': 'application/json' };
    await forward(deps, req, res, facts, { body: outbound, route, headers }, async (upstream, hooks) => {
      const reply = await relayReply(upstream, res, hooks, { stripUsage: injectUsage, keepCopy: idempotencyKey !== undefined }, commit);
      if (reply?.complete) recordTurn(deps, { request, route, prompt, reply, facts, factsExtracted, firstChunkMs: hooks.firstChunkMs });
    });
  };

  /**
   * Relays a provider answer: errors unchanged; a success through the capture, whose reply
   * `beforeEnd` commits (or queues) before the response ends.
   */
  async function relayReply(
    upstream: UpstreamResponse,
    res: ServerResponse,
    hooks: TimedHooks,
    options: { stripUsage: boolean; keepCopy: boolean },
    beforeEnd: (reply: CapturedReply | undefined, sent: Buffer) => Promise<void>,
  ): Promise<CapturedReply | undefined> {
    const facts = hooks.facts;
    if (upstream.status < 200 || upstream.status >= 300) {
      await relayUnchanged(upstream, res, hooks);
      return undefined;
    }
    const capture = {
      maxCaptureBytes: deps.config().upstream.max_capture_bytes,
      onNotStored: (reason: NotStoredReason) => {
        deps.metrics.repliesNotStored.inc({ reason });
        facts.memory = 'degraded';
        if (!res.headersSent) res.setHeader('X-Mnemo-Memory', 'degraded');
      },
    };
    const reply = facts.stream
      ? await relayStream(upstream, res, { ...capture, ...options, reader: api.streamReader() }, beforeEnd, hooks)
      : await relayJson(upstream, res, { ...capture, capture: api.captureJson }, beforeEnd, hooks);
    if (facts.stream) deps.metrics.streamEnds.inc({ reason: reply?.complete ? 'complete' : 'upstream_error' });
    return reply;
  }
}

/**
 * The captured reply as stored. Its size is what the provider billed (completion tokens and the
 * message's framing) when it said so: tokenizing a reply the provider has just counted was a
 * tenth of a turn's CPU. Reasoning tokens are in that count too, which only errs on the safe side.
 */
function storedReply(reply: CapturedReply, model: string, deps: ProxyDeps, config: Config): StoredMessage {
  const billed = reply.usage?.completion_tokens;
  const known = typeof billed === 'number' && Number.isFinite(billed) && billed >= 0 ? billed + MESSAGE_FRAMING : undefined;
  return toStored(reply.message, model, deps, config.privacy.redact, undefined, known);
}

/** The session's turns still in the outbox after trying to replay them (none, usually). */
async function waitingTurns(deps: ProxyDeps, sessionKey: string): Promise<PendingTurn[]> {
  if (!deps.outbox?.box.hasPending(sessionKey)) return [];
  try {
    await deps.outbox.replayer.flushSession(sessionKey);
    return [];
  } catch (error) {
    deps.logger.warn({ err: error }, 'waiting turns could not land yet');
    return deps.outbox.box.forSession(sessionKey).map((entry) => entry.turn);
  }
}

/** A turn answered while the store could not even be read: straight to the outbox (or counted as lost without one). */
function queueOnly(deps: ProxyDeps, sessionKey: string, request: TurnRequest & { turnId: string }, reply: StoredMessage): void {
  const accounting = { baselineTokens: 0, sentTokens: 0 };
  try {
    if (!deps.outbox) throw new Error('no outbox (store.outbox is null)');
    deps.outbox.box.add({ sessionKey, request, bornOf: null, reply, accounting, at: reply.at });
    deps.metrics.outboxWrites.inc();
  } catch (error) {
    deps.logger.error({ err: error }, 'turn answered without memory not kept');
    deps.metrics.turnsLost.inc();
  }
}

/** The deployment an Azure-style path names (/openai/deployments/{deployment}/…), which stands for the model. */
function deploymentOf(url: string | undefined): string | undefined {
  const match = /\/deployments\/([^/?]+)\//.exec(url ?? '');
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
}

/** The client's own messages, unchanged, accounted as sent: for a provider that holds the history itself. */
function asSent(state: TurnState): AssembledPrompt {
  const messages = [
    ...state.instructions.map((message) => ({ message, tokens: 0, block: 'instructions' as const })),
    ...state.fresh.map((stored) => ({ message: stored.message, tokens: stored.tokens, block: 'new' as const })),
  ];
  const tokens = messages.reduce((total, entry) => total + entry.tokens, REPLY_PRIMING);
  return { messages, sentTokens: tokens, baselineTokens: tokens, overflow: false, recalled: 0 };
}

/** Same session → same key, so the provider routes its calls to one prompt cache; never the raw id. */
const promptCacheKey = memoized(
  (sessionKey: string): string => `mnemo-${createHash('sha256').update(sessionKey).digest('base64url').slice(0, 24)}`,
);

type TimedHooks = RelayHooks & { firstChunkMs?: number; facts: RequestFacts };

/**
 * Calls the provider and hands the response to `relay`, timing the upstream
 * part and setting X-Mnemo-Overhead-Ms (mnemo's own time so far) before the
 * status line. A client that goes away aborts the provider call, and nothing
 * is committed for it.
 */
async function forward(
  deps: ProxyDeps,
  req: IncomingMessage,
  res: ServerResponse,
  facts: RequestFacts,
  call: { body: Buffer; route: UpstreamChoice; headers?: Record<string, string> },
  relay: (upstream: UpstreamResponse, hooks: TimedHooks) => Promise<void>,
): Promise<void> {
  const config = deps.config();
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  };
  res.on('close', onClose);
  // One deadline for the whole exchange: a provider trickling bytes or SSE keep-alives cannot
  // hold a request past upstream.timeout_ms (the idle timeout alone never fires on those).
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    controller.abort(new UpstreamTimeoutError(config.upstream.timeout_ms));
  }, config.upstream.timeout_ms);
  facts.provider = providerName(call.route.url);
  const upstreamStarted = performance.now();
  let upstreamEnded: number | undefined;
  const hooks: TimedHooks = {
    facts,
    beforeHead: () => {
      const upstreamMs = (upstreamEnded ?? performance.now()) - upstreamStarted;
      res.setHeader('X-Mnemo-Overhead-Ms', (performance.now() - facts.started - upstreamMs).toFixed(2));
    },
    onFirstChunk: () => (hooks.firstChunkMs = performance.now() - upstreamStarted),
    onUpstreamDone: () => {
      upstreamEnded = performance.now();
      facts.upstreamMs = upstreamEnded - upstreamStarted;
    },
  };
  try {
    let upstream: UpstreamResponse;
    try {
      upstream = await deps.upstream({
        url: upstreamTarget(call.route.url, req.url ?? '/'),
        method: 'POST',
        headers: { ...forwardRequestHeaders(req.headers, new Set(sessionHeaders(config))), ...call.headers },
        body: call.body,
        signal: controller.signal,
      });
    } catch (error) {
      facts.upstreamMs = performance.now() - upstreamStarted;
      if (timedOut) throw new UpstreamTimeoutError(config.upstream.timeout_ms);
      if (controller.signal.aborted) return;
      throw upstreamFailure(error, config.upstream.timeout_ms);
    }
    const upstreamId = upstream.headers['x-request-id'];
    if (typeof upstreamId === 'string') facts.upstreamRequestId = upstreamId;
    try {
      await relay(upstream, hooks);
    } catch (error) {
      upstream.discard();
      facts.upstreamMs ??= performance.now() - upstreamStarted;
      const clientGone = controller.signal.aborted && !timedOut;
      if (facts.stream) deps.metrics.streamEnds.inc({ reason: clientGone ? 'client_abort' : 'upstream_error' });
      if (clientGone) return;
      // Past the status line the client's connection is closed (respondWithError destroys it).
      if (timedOut) throw res.headersSent ? error : new UpstreamTimeoutError(config.upstream.timeout_ms);
      throw res.headersSent ? error : upstreamFailure(error, config.upstream.timeout_ms);
    }
  } finally {
    clearTimeout(deadline);
    res.off('close', onClose);
  }
}

/** Token, cost and latency figures of a completed turn. */
function recordTurn(
  deps: ProxyDeps,
  turn: {
    request: ApiRequest;
    route: UpstreamChoice;
    prompt: AssembledPrompt;
    reply: CapturedReply;
    facts: RequestFacts;
    factsExtracted: number;
    firstChunkMs?: number;
  },
): void {
  const { request, prompt, reply } = turn;
  const pricing = deps.config().pricing;
  const price = priceFor(request.model, pricing);
  const usage = reply.usage;
  const cost = callCost(price, {
    input: usage?.prompt_tokens ?? prompt.sentTokens,
    cached: usage?.prompt_tokens_details?.cached_tokens,
    output: usage?.completion_tokens ?? 0,
  });
  deps.metrics.turn({
    model: request.model,
    responseModel: reply.model,
    provider: providerName(turn.route.url),
    stream: request.stream,
    baselineTokens: prompt.baselineTokens,
    sentTokens: prompt.sentTokens,
    providerPromptTokens: usage?.prompt_tokens,
    cachedTokens: usage?.prompt_tokens_details?.cached_tokens,
    completionTokens: usage?.completion_tokens,
    upstreamSeconds: (turn.facts.upstreamMs ?? 0) / 1000,
    firstChunkSeconds: turn.firstChunkMs === undefined ? undefined : turn.firstChunkMs / 1000,
    costSavedUsd: savedCost(price, prompt.baselineTokens - prompt.sentTokens),
    costPromptUsd: cost.prompt,
    costCompletionUsd: cost.completion,
    factsExtracted: turn.factsExtracted,
    recalled: prompt.recalled,
  });
}
