import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { BadRequestError, ConflictError, NotFoundError } from '../errors.js';
import type { AssembledMessage, Block } from '../memory/assemble.js';
import { addFacts, contextFact, type ContextFact, type ScratchEntry } from '../memory/context.js';
import type { StoredMessage } from '../memory/messages.js';
import { buildPrompt } from '../memory/prompt.js';
import { eraseSession } from '../memory/erase.js';
import { redactText } from '../memory/redact.js';
import type { SessionMemory } from '../memory/state.js';
import { CONTEXT_FACTS, CONTEXT_SCRATCH, loadTurn } from '../memory/transcript.js';
import { parseChatBody } from '../proxy/chat-body.js';
import { jsonLimits } from '../proxy/json-limits.js';
import type { ProxyDeps } from '../proxy/deps.js';
import { adminTenant, readUserId, sessionKey, validateId } from '../proxy/identify.js';
import type { SessionMeta } from '../store/types.js';
import { REPLY_PRIMING } from '../tokenizer.js';
import { updateMemory } from './session-update.js';
import { parseBody } from './validate.js';

const factInput = z.strictObject({
  text: z.string().min(1).max(100_000),
  source: z.string().min(1).max(200).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  ttl_seconds: z.number().int().positive().optional(),
});

const scratchInput = z.strictObject({ value: z.unknown(), inject: z.boolean().default(false) });

// An import is checked against everything the store and a later turn read, so no document can
// leave a session that breaks its next turn (a fact of null, a negative token count).
const count = z.number().int().min(0);
const time = z.number().finite().min(0);
const factVersion = z.strictObject({ value: z.string(), source: z.string(), at: time });
const storedFact = z.strictObject({
  ...factVersion.shape,
  name: z.string().min(1),
  scope: z.enum(['session', 'user']),
  index: count,
  history: z.array(factVersion),
});
const exportDocument = z.object({
  object: z.literal('mnemo.session.export'),
  format: z.literal(1),
  id: z.string(),
  user: z.string().nullable(),
  created_at: time,
  updated_at: time,
  messages: z.array(
    z.object({
      id: z.string().min(1),
      message: z.looseObject({
        role: z.enum(['user', 'assistant', 'tool', 'function', 'system', 'developer']),
        content: z.union([z.string(), z.array(z.unknown()), z.null()]).optional(),
      }),
      tokens: count,
      hash: z.string().min(1),
      at: time,
    }),
  ),
  memory: z.looseObject({
    facts: z.record(z.string(), storedFact),
    tokens: count,
    usage: z.record(z.string(), count),
    summary: z.strictObject({ text: z.string(), tokens: count, upTo: count, foldedTokens: count, lastId: z.string(), at: time }).optional(),
    user: z.string().optional(),
  }),
  facts: z.array(
    z.strictObject({
      id: z.string(),
      text: z.string(),
      source: z.string(),
      metadata: z.record(z.string(), z.unknown()),
      at: time,
      expiresAt: time.optional(),
      hash: z.string(),
    }),
  ),
  scratch: z.record(z.string(), z.strictObject({ value: z.unknown(), inject: z.boolean(), at: time })),
});

/** /mnemo/sessions/*: inspect, preview, list, export/import, erase; facts and scratchpad. */
export function sessionRoutes(deps: ProxyDeps, options: { bodyLimit: number | string }): Router {
  const router = Router();
  const target = (req: Request) => {
    const id = validateId(String(req.params.id));
    return { id, key: sessionKey(adminTenant(req.headers, deps.config().tenancy), id) };
  };
  const existing = async (req: Request) => {
    const { id, key } = target(req);
    const meta = await deps.store.getMeta(key);
    if (!meta) throw new NotFoundError(`No session ${id}.`, 'session_not_found');
    return { id, key, meta };
  };

  router.get('/', async (req, res) => {
    const tenant = adminTenant(req.headers, deps.config().tenancy);
    const user = typeof req.query.user === 'string' ? validateId(req.query.user, 'user') : undefined;
    const limit = Math.min(Math.max(Number(req.query.limit ?? 20) || 20, 1), 100);
    const offset = Math.max(Number(req.query.after ?? 0) || 0, 0);
    const all: Array<{ id: string; meta: SessionMeta }> = [];
    for await (const { sessionKey: key, meta } of deps.store.listSessions(`${tenant}:`)) {
      if (user === undefined || meta.memory.user === user) all.push({ id: key.slice(tenant.length + 1), meta });
    }
    all.sort((a, b) => b.meta.updatedAt - a.meta.updatedAt || a.id.localeCompare(b.id));
    const page = all.slice(offset, offset + limit);
    res.json({
      object: 'list',
      data: page.map(({ id, meta }) => summaryOf(id, meta)),
      has_more: offset + limit < all.length,
      next_after: offset + limit < all.length ? String(offset + limit) : null,
    });
  });

  router.get('/:id', async (req, res) => {
    const { id, key, meta } = await existing(req);
    const messages = await deps.store.readMessages(key, meta, 0, meta.count);
    res.json({
      ...summaryOf(id, meta),
      object: 'mnemo.session',
      version: meta.version,
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

  router.delete('/:id', async (req, res) => {
    const { id, key } = target(req);
    if (!(await eraseSession(deps.store, key, deps.now()))) throw new NotFoundError(`No session ${id}.`, 'session_not_found');
    res.json({ object: 'mnemo.session.deleted', id, deleted: true });
  });

  // The exact prompt a chat-completions call would send now; reads only, never calls the provider.
  router.post('/:id/preview', express.raw({ type: () => true, limit: options.bodyLimit }), async (req, res) => {
    const config = deps.config();
    const { id, key } = target(req);
    const { body } = parseChatBody(req.body as Buffer, req.headers['content-type'], jsonLimits(config.server));
    const tenant = adminTenant(req.headers, config.tenancy);
    const turn = { messages: body.messages, model: body.model, tenant, user: readUserId(req.headers, body, config.users) };
    const state = await loadTurn(deps, key, turn, config);
    const prompt = await buildPrompt(deps, key, state, body, config.memory, previewCredentials(req.headers));
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

  router.get('/:id/export', async (req, res) => {
    const { id, key, meta } = await existing(req);
    const [messages, [facts, scratch]] = await Promise.all([
      deps.store.readMessages(key, meta, 0, meta.count),
      deps.store.readAux<unknown>(key, [CONTEXT_FACTS, CONTEXT_SCRATCH]),
    ]);
    res.json({
      object: 'mnemo.session.export',
      format: 1,
      id,
      user: meta.memory.user ?? null,
      created_at: meta.createdAt,
      updated_at: meta.updatedAt,
      messages,
      memory: { ...meta.memory, recall: undefined },
      facts: (facts as ContextFact[] | undefined) ?? [],
      scratch: (scratch as Record<string, ScratchEntry> | undefined) ?? {},
    });
  });

  router.post('/:id/import', async (req, res) => {
    const { id, key } = target(req);
    const document = parseBody(exportDocument, req.body);
    const replace = req.query.replace === 'true';
    if (await deps.store.getMeta(key)) {
      if (!replace) throw new ConflictError(`Session ${id} exists; delete it first or import with ?replace=true.`, 'session_exists');
      await deps.store.delete(key);
    }
    const messages = document.messages as StoredMessage[];
    const covered = document.memory.summary?.upTo ?? 0;
    if (covered > messages.length || Object.values(document.memory.facts).some((fact) => fact.index >= messages.length)) {
      throw new BadRequestError('memory.summary.upTo and every fact index must point into messages.', {
        param: 'memory',
        code: 'invalid_body',
      });
    }
    await deps.store.writeAux(key, [
      { name: CONTEXT_FACTS, value: document.facts },
      { name: CONTEXT_SCRATCH, value: document.scratch },
    ]);
    // The recall index is rebuilt from the messages in the background rather than trusted from the document.
    const memory = { ...(document.memory as unknown as SessionMemory), recall: { docs: 0, length: 0, generation: 1 } };
    const result = await deps.store.commit(key, 0, {
      keep: 0,
      append: messages,
      memory,
      times: { createdAt: document.created_at, updatedAt: document.updated_at },
    });
    if (!result.ok) throw new ConflictError(`Session ${id} was written while importing; try again.`, 'session_conflict');
    deps.folds.maybeSchedule(key, result.meta, {});
    res.status(201).json(summaryOf(id, result.meta));
  });

  router.post('/:id/facts', async (req, res) => {
    const { key } = await existing(req);
    const now = deps.now();
    const inputs = Array.isArray(req.body) ? req.body : [req.body];
    const redact = deps.config().privacy.redact;
    const added = inputs.map((input) => {
      const fact = parseBody(factInput, input);
      return contextFact(
        {
          text: redactText(fact.text, redact),
          source: fact.source,
          metadata: fact.metadata,
          ttlMs: fact.ttl_seconds && fact.ttl_seconds * 1000,
        },
        now,
      );
    });
    const facts = await editFacts(key, (current) => addFacts(current, added, now));
    const stored = added.map((fact) => facts.find((candidate) => candidate.hash === fact.hash) ?? fact);
    res.status(201).json({ object: 'list', data: stored.map(factView) });
  });

  router.get('/:id/facts', async (req, res) => {
    const { key } = await existing(req);
    const [facts] = await deps.store.readAux<ContextFact[]>(key, [CONTEXT_FACTS]);
    const now = deps.now();
    res.json({ object: 'list', data: (facts ?? []).filter((fact) => !fact.expiresAt || fact.expiresAt > now).map(factView) });
  });

  router.delete('/:id/facts/:factId', async (req, res) => {
    const { key } = await existing(req);
    const factId = String(req.params.factId);
    let found = false;
    await editFacts(key, (current) => {
      found = current.some((fact) => fact.id === factId);
      return current.filter((fact) => fact.id !== factId);
    });
    if (!found) throw new NotFoundError(`No fact ${factId}.`, 'fact_not_found');
    res.json({ object: 'mnemo.fact.deleted', id: factId, deleted: true });
  });

  router.get('/:id/scratch/:name', async (req, res) => {
    const { key } = await existing(req);
    const name = validateId(String(req.params.name), 'Scratch key');
    const [scratch] = await deps.store.readAux<Record<string, ScratchEntry>>(key, [CONTEXT_SCRATCH]);
    // Own properties only: "valueOf" or "__proto__" are not entries.
    const entry = scratch && Object.hasOwn(scratch, name) ? scratch[name] : undefined;
    if (!entry) throw new NotFoundError(`No scratch entry ${name}.`, 'scratch_not_found');
    res.json({ object: 'mnemo.scratch', key: name, value: entry.value, inject: entry.inject, updated_at: entry.at });
  });

  router.put('/:id/scratch/:name', async (req, res) => {
    const { key } = await existing(req);
    const name = validateId(String(req.params.name), 'Scratch key');
    const input = parseBody(scratchInput, req.body);
    const entry: ScratchEntry = { value: input.value ?? null, inject: input.inject, at: deps.now() };
    await editScratch(key, (current) => ({ ...current, [name]: entry }));
    res.json({ object: 'mnemo.scratch', key: name, value: entry.value, inject: entry.inject, updated_at: entry.at });
  });

  router.delete('/:id/scratch/:name', async (req, res) => {
    const { key } = await existing(req);
    const name = validateId(String(req.params.name), 'Scratch key');
    let found = false;
    await editScratch(key, (current) => {
      found = Object.hasOwn(current, name);
      const { [name]: _removed, ...rest } = current;
      return rest;
    });
    if (!found) throw new NotFoundError(`No scratch entry ${name}.`, 'scratch_not_found');
    res.json({ object: 'mnemo.scratch.deleted', key: name, deleted: true });
  });

  /** Rewrites the facts record, then records its size in the head (CAS), so turns know whether to read it. */
  async function editFacts(key: string, edit: (facts: ContextFact[]) => ContextFact[]): Promise<ContextFact[]> {
    const [current] = await deps.store.readAux<ContextFact[]>(key, [CONTEXT_FACTS]);
    const facts = edit(current ?? []);
    await deps.store.writeAux(key, [{ name: CONTEXT_FACTS, value: facts }]);
    await updateMemory(deps.store, key, (memory) => ({
      ...memory,
      context: { facts: facts.length, scratch: memory.context?.scratch ?? 0 },
    }));
    return facts;
  }

  async function editScratch(key: string, edit: (scratch: Record<string, ScratchEntry>) => Record<string, ScratchEntry>): Promise<void> {
    const [current] = await deps.store.readAux<Record<string, ScratchEntry>>(key, [CONTEXT_SCRATCH]);
    const scratch = edit(current ?? {});
    await deps.store.writeAux(key, [{ name: CONTEXT_SCRATCH, value: scratch }]);
    await updateMemory(deps.store, key, (memory) => ({
      ...memory,
      context: { facts: memory.context?.facts ?? 0, scratch: Object.keys(scratch).length },
    }));
  }

  return router;
}

function summaryOf(id: string, meta: SessionMeta) {
  return {
    object: 'mnemo.session',
    id,
    user: meta.memory.user ?? null,
    message_count: meta.count,
    created_at: meta.createdAt,
    updated_at: meta.updatedAt,
  };
}

function factView(fact: ContextFact) {
  return {
    object: 'mnemo.fact',
    id: fact.id,
    text: fact.text,
    source: fact.source,
    metadata: fact.metadata,
    created_at: fact.at,
    expires_at: fact.expiresAt ?? null,
  };
}

function byBlock(messages: AssembledMessage[]): Record<Block, number> {
  const totals: Record<Block, number> = { instructions: 0, memory: 0, recall: 0, history: 0, context: 0, new: 0 };
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

/**
 * Credentials a preview may send upstream (embedding recall): the tenant's provider key from
 * X-Mnemo-Tenant-Key, never the request's Authorization, which holds mnemo's admin token.
 * Without a key, embedding recall fails upstream and the preview falls back to BM25.
 */
function previewCredentials(headers: Request['headers']): Record<string, string> {
  const key = headers['x-mnemo-tenant-key'];
  return typeof key === 'string' && key.trim() ? { authorization: `Bearer ${key.trim()}` } : {};
}
