import express, { Router } from 'express';
import { NotFoundError } from '../errors.js';
import type { AssembledMessage, Block } from '../memory/assemble.js';
import { buildPrompt } from '../memory/prompt.js';
import { foldCredentials } from '../memory/folds.js';
import type { SessionMemory } from '../memory/state.js';
import { REPLY_PRIMING } from '../tokenizer.js';
import { loadTurn } from '../memory/transcript.js';
import { parseChatBody } from '../proxy/chat-body.js';
import type { ProxyDeps } from '../proxy/deps.js';
import { DEFAULT_TENANT, sessionKey, validateSessionId } from '../proxy/identify.js';
import { adminGuard } from './guard.js';

/** /mnemo/*: look into and manage sessions. */
export function adminRoutes(deps: ProxyDeps, options: { bodyLimit: number | string }): Router {
  const router = Router();
  router.use(adminGuard(deps.config));

  router.get('/sessions/:id', async (req, res) => {
    const id = validateSessionId(req.params.id);
    const key = sessionKey(DEFAULT_TENANT, id);
    const meta = await deps.store.getMeta(key);
    if (!meta) throw new NotFoundError(`No session ${id}.`, 'session_not_found');
    const messages = await deps.store.readMessages(key, meta, 0, meta.count);
    res.json({
      object: 'mnemo.session',
      id,
      version: meta.version,
      created_at: meta.createdAt,
      updated_at: meta.updatedAt,
      message_count: meta.count,
      summary: meta.memory.summary
        ? {
            text: meta.memory.summary.text,
            tokens: meta.memory.summary.tokens,
            covers_messages: meta.memory.summary.upTo,
            at: meta.memory.summary.at,
          }
        : null,
      facts: Object.values(meta.memory.facts).map((fact) => ({
        name: fact.name,
        value: fact.value,
        scope: fact.scope,
        source_message_id: fact.source,
        at: fact.at,
        history: fact.history,
      })),
      usage: snakeUsage(meta.memory),
      messages: messages.map((stored, index) => ({ index, id: stored.id, at: stored.at, tokens: stored.tokens, ...stored.message })),
    });
  });

  router.delete('/sessions/:id', async (req, res) => {
    const id = validateSessionId(req.params.id);
    const deleted = await deps.store.delete(sessionKey(DEFAULT_TENANT, id));
    if (!deleted) throw new NotFoundError(`No session ${id}.`, 'session_not_found');
    res.json({ object: 'mnemo.session.deleted', id, deleted: true });
  });

  // The exact prompt a chat-completions call would send now; reads only, never calls the provider.
  router.post('/sessions/:id/preview', express.raw({ type: () => true, limit: options.bodyLimit }), async (req, res) => {
    const id = validateSessionId(req.params.id);
    const body = parseChatBody(req.body as Buffer, req.headers['content-type']);
    const key = sessionKey(DEFAULT_TENANT, id);
    const memory = deps.config().memory;
    const state = await loadTurn(deps, key, body.messages, body.model, memory);
    const prompt = await buildPrompt(deps, key, state, body, memory, foldCredentials(req.headers));
    res.json({
      object: 'mnemo.preview',
      session: id,
      model: body.model,
      memory: state.meta ? 'hit' : 'miss',
      reconcile: state.reconciliation.mode,
      messages: prompt.messages.map((entry) => entry.message),
      breakdown: prompt.messages.map((entry) => ({ block: entry.block, role: entry.message.role, tokens: entry.tokens })),
      tokens: {
        sent: prompt.sentTokens,
        baseline: prompt.baselineTokens,
        saved: prompt.baselineTokens - prompt.sentTokens,
        by_block: byBlock(prompt.messages),
        reply_priming: REPLY_PRIMING,
      },
      overflow: prompt.overflow,
    });
  });

  router.use((req) => {
    throw new NotFoundError(`Unknown route ${req.method} ${req.originalUrl}.`, 'unknown_route');
  });
  return router;
}

function byBlock(messages: AssembledMessage[]): Record<Block, number> {
  const totals: Record<Block, number> = { instructions: 0, memory: 0, recall: 0, history: 0, new: 0 };
  for (const entry of messages) totals[entry.block] += entry.tokens;
  return totals;
}

function snakeUsage(memory: SessionMemory) {
  const usage = memory.usage;
  return {
    requests: usage.requests,
    stored_tokens: memory.tokens,
    baseline_tokens: usage.baselineTokens,
    sent_tokens: usage.sentTokens,
    side_input_tokens: usage.sideInputTokens,
    side_output_tokens: usage.sideOutputTokens,
    provider_prompt_tokens: usage.providerPromptTokens,
    provider_cached_tokens: usage.providerCachedTokens,
    completion_tokens: usage.completionTokens,
  };
}
