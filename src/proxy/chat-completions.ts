import type { Request, RequestHandler, Response } from 'express';
import { createHash } from 'node:crypto';
import type { AssembledPrompt } from '../memory/assemble.js';
import { foldCredentials } from '../memory/folds.js';
import { buildPrompt } from '../memory/prompt.js';
import { commitTurn, loadTurn, toStored } from '../memory/transcript.js';
import { forwardRequestHeaders, upstreamTarget } from '../upstream/headers.js';
import { chooseUpstream, type UpstreamChoice } from '../upstream/routing.js';
import type { UpstreamResponse } from '../upstream/client.js';
import { parseChatBody, peekModel, type ChatBody } from './chat-body.js';
import { sessionHeaders, type ProxyDeps } from './deps.js';
import { DEFAULT_TENANT, readSessionId, sessionKey } from './identify.js';
import { hashId } from '../logger.js';
import type { CapturedReply } from './reply-capture.js';
import { relayJson, relayStream, relayUnchanged, upstreamFailure } from './relay.js';

/**
 * POST …/chat/completions. The life of a call, top to bottom:
 * identify → load and reconcile → assemble → forward → capture → commit.
 * Requests without a session header are forwarded byte for byte.
 */
export function chatCompletions(deps: ProxyDeps): RequestHandler {
  return async (req, res) => {
    const config = deps.config();
    const raw = req.body as Buffer;
    const sessionId = readSessionId(req.headers, sessionHeaders(config));
    if (sessionId === undefined) {
      res.setHeader('X-Mnemo-Memory', 'bypass');
      const route = chooseUpstream(config.upstream, peekModel(raw));
      await forward(deps, req, res, { body: raw, route }, async (upstream) => relayUnchanged(upstream, res));
      return;
    }

    const body = parseChatBody(raw, req.headers['content-type']);
    const key = sessionKey(DEFAULT_TENANT, sessionId);
    const state = await loadTurn(deps, key, body.messages, body.model, config.memory);
    const credentials = foldCredentials(req.headers);
    const prompt = await buildPrompt(deps, key, state, body, config.memory, credentials);
    const route = chooseUpstream(config.upstream, body.model);
    const injectUsage = body.stream === true && route.injectStreamUsage && body.stream_options?.include_usage !== true;
    const cacheKey = route.promptCacheKey && body.prompt_cache_key === undefined ? promptCacheKey(key) : undefined;
    const outbound = Buffer.from(JSON.stringify(outboundBody(body, prompt, { injectUsage, cacheKey })));

    res.setHeader('X-Mnemo-Session', sessionId);
    res.setHeader('X-Mnemo-Memory', state.meta ? 'hit' : 'miss');
    res.setHeader('X-Mnemo-Tokens-Baseline', String(prompt.baselineTokens));
    res.setHeader('X-Mnemo-Tokens-Sent', String(prompt.sentTokens));

    const commit = async (reply: CapturedReply | undefined) => {
      if (!reply?.complete) return;
      try {
        const meta = await commitTurn(
          deps,
          key,
          { messages: body.messages, model: body.model, memory: config.memory },
          state,
          toStored(reply.message, body.model, deps),
          {
            baselineTokens: prompt.baselineTokens,
            sentTokens: prompt.sentTokens,
            providerPromptTokens: reply.usage?.prompt_tokens,
            providerCachedTokens: reply.usage?.prompt_tokens_details?.cached_tokens,
            completionTokens: reply.usage?.completion_tokens,
          },
        );
        deps.folds.maybeSchedule(key, meta, credentials);
      } catch (error) {
        // The provider already answered (and billed); deliver the answer and say memory missed it.
        deps.logger.error({ err: error, session: hashId(sessionId) }, 'turn not committed');
        if (!res.headersSent) res.setHeader('X-Mnemo-Memory', 'degraded');
      }
    };
    const headers = { 'content-type': 'application/json' };
    await forward(deps, req, res, { body: outbound, route, headers }, async (upstream) => {
      if (upstream.status < 200 || upstream.status >= 300) return relayUnchanged(upstream, res);
      if (body.stream === true) await relayStream(upstream, res, { stripUsage: injectUsage }, commit);
      else await relayJson(upstream, res, commit);
    });
  };
}

/** The request body with mnemo's messages in place of the client's. */
function outboundBody(body: ChatBody, prompt: AssembledPrompt, options: { injectUsage: boolean; cacheKey?: string }): ChatBody {
  const out: ChatBody = { ...body, messages: prompt.messages.map((entry) => entry.message) };
  if (options.injectUsage) out.stream_options = { ...body.stream_options, include_usage: true };
  if (options.cacheKey) out.prompt_cache_key = options.cacheKey;
  return out;
}

/** Same session → same key, so the provider routes its calls to one prompt cache; never the raw id. */
function promptCacheKey(sessionKey: string): string {
  return `mnemo-${createHash('sha256').update(sessionKey).digest('base64url').slice(0, 24)}`;
}

/**
 * Calls the provider and hands the response to `relay`. A client that goes
 * away aborts the provider call, and nothing is committed for it.
 */
async function forward(
  deps: ProxyDeps,
  req: Request,
  res: Response,
  call: { body: Buffer; route: UpstreamChoice; headers?: Record<string, string> },
  relay: (upstream: UpstreamResponse) => Promise<void>,
): Promise<void> {
  const config = deps.config();
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  };
  res.on('close', onClose);
  let upstream: UpstreamResponse;
  try {
    upstream = await deps.upstream({
      url: upstreamTarget(call.route.url, req.originalUrl),
      method: 'POST',
      headers: { ...forwardRequestHeaders(req.headers, new Set(sessionHeaders(config))), ...call.headers },
      body: call.body,
      signal: controller.signal,
    });
  } catch (error) {
    res.off('close', onClose);
    if (controller.signal.aborted) return;
    throw upstreamFailure(error, config.upstream.timeout_ms);
  }
  try {
    await relay(upstream);
  } catch (error) {
    upstream.discard();
    if (controller.signal.aborted) return;
    throw res.headersSent ? error : upstreamFailure(error, config.upstream.timeout_ms);
  } finally {
    res.off('close', onClose);
  }
}
