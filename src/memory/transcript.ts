import { randomInt } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { addFacts, toolResultFacts, type ContextFact, type ScratchEntry } from './context.js';
import { withUserFacts, type UserProfile } from './profile.js';
import { redactMessage } from './redact.js';
import { userKey } from '../proxy/identify.js';
import { RECENT_KEYS } from '../proxy/idempotency.js';
import type { SessionStore, SessionMeta } from '../store/types.js';
import type { Tokenizer } from '../tokenizer.js';
import { extractFacts, mergeFacts, type ExtractedFact } from './facts.js';
import { isInstruction, messageHash, newMessageId, type ChatMessage, type StoredMessage } from './messages.js';
import { rangesNeeded, reconcile, type Reconciliation, type StoredView } from './reconcile.js';
import { emptyMemory, type SessionMemory, type Summary } from './state.js';
import { indexGeneration } from './lexical-index.js';
import { windowMinTokens } from './window.js';
import { eraseSession, erasedSince } from './erase.js';
import type { Indexed } from './assemble.js';

/** A session as one request sees it: the head, how the client's messages fit, and the history the prompt draws on. */
export interface TurnState {
  meta: SessionMeta | undefined;
  reconciliation: Reconciliation;
  /** The client's system/developer messages, kept first and never stored as turns. */
  instructions: ChatMessage[];
  /** Client messages that are new to the store, ready to append (tokens counted once, here). */
  fresh: StoredMessage[];
  /** Stored messages after the summary, up to `keep`: candidates for the recent window (bounded, newest last). */
  window: Indexed[];
  /** Tokens of the stored messages that stay, [0, keep). */
  storedTokens: number;
  /** The summary, if it still describes the kept history. */
  summary: Summary | undefined;
  /** The end user's profile, when the request names a user who has one. */
  profile: UserProfile | undefined;
  /** Retrieved facts and captured tool results of the session. */
  contextFacts: ContextFact[];
  scratch: Record<string, ScratchEntry>;
}

/** What a turn is about: the client's messages, for which model, on behalf of which user and tenant. */
export interface TurnRequest {
  messages: ChatMessage[];
  model: string;
  tenant: string;
  user?: string;
  /** The client's Idempotency-Key: a turn carrying one is committed at most once. */
  idempotencyKey?: string;
  /** Unique per turn: the commit applies it at most once (see SessionMemory.turns). */
  turnId?: string;
  /** When the turn began: an erase after it means the turn must not create the session again. */
  startedAt?: number;
}

/** How many recent turn ids a head keeps: the reach of an outbox replay behind other instances' turns. */
export const RECENT_TURNS = 64;

/** The session a turn was loaded from was erased (or erased and started anew) before it committed. */
export class SessionErasedError extends Error {
  override name = 'SessionErasedError';
}

/** A turn that kept losing its compare-and-set race. */
export class CommitConflictError extends Error {
  override name = 'CommitConflictError';
}

export const CONTEXT_FACTS = 'ctx:facts';
export const CONTEXT_SCRATCH = 'ctx:scratch';

export interface TurnDeps {
  store: SessionStore;
  tokenizer: Tokenizer;
  now: () => number;
  /** The time now, where `now` is a replayed turn's own time (the outbox keeps it for the turn's messages). */
  clock?: () => number;
  /** Told when an idle session is found expired and erased. */
  onExpired?: () => void;
}

/** Per-request token figures, added to the session's running totals at commit. */
export interface TurnAccounting {
  baselineTokens: number;
  sentTokens: number;
  providerPromptTokens?: number;
  providerCachedTokens?: number;
  completionTokens?: number;
}

/**
 * A message as stored: redacted per `privacy.redact` before anything is kept,
 * while its identity hash is the original's, so a client resending the
 * original still matches it.
 */
export function toStored(
  message: ChatMessage,
  model: string,
  deps: Pick<TurnDeps, 'tokenizer' | 'now'>,
  redact: Config['privacy']['redact'] = [],
  hash = messageHash(message),
  /** A count already known (a reply's completion tokens, as the provider billed them): no tokenizing. */
  knownTokens?: number,
): StoredMessage {
  const kept = redactMessage(message, redact);
  return {
    id: newMessageId(),
    message: kept,
    tokens: knownTokens ?? deps.tokenizer.countMessage(kept, model),
    hash,
    at: deps.now(),
  };
}

/** Loads what reconciling needs, reconciles, and loads the bounded window the prompt is built from. */
export async function loadTurn(deps: TurnDeps, sessionKey: string, request: TurnRequest, config: Config): Promise<TurnState> {
  const { messages, model } = request;
  const memory = config.memory;
  const instructions = messages.filter(isInstruction);
  const conversation = messages.filter((message) => !isInstruction(message));
  const hashes = conversation.map(messageHash);
  const [meta, profile] = await Promise.all([
    loadMeta(deps, sessionKey, config.session.retention_ms),
    request.user ? deps.store.getRecord<UserProfile>(userKey(request.tenant, request.user)) : undefined,
  ]);
  const loaded = new Map<number, StoredMessage>();
  if (meta) {
    for (const [from, to] of mergeRanges(rangesNeeded(meta.count, conversation))) {
      const slice = await deps.store.readMessages(sessionKey, meta, from, to);
      slice.forEach((message, offset) => loaded.set(from + offset, message));
    }
  }
  const view: StoredView = {
    count: meta?.count ?? 0,
    at: (index) => {
      const entry = loaded.get(index);
      return entry && { hash: entry.hash, role: entry.message.role, tool_calls: entry.message.tool_calls };
    },
  };
  const reconciliation = reconcile(view, conversation, hashes);
  // Hashed once above for reconciling; the stored copies reuse those hashes.
  const fresh = conversation
    .slice(reconciliation.from)
    .map((message, offset) => toStored(message, model, deps, config.privacy.redact, hashes[reconciliation.from + offset]));
  const keep = reconciliation.keep;
  const summary = validSummary(meta, keep);
  let window: Indexed[] = [];
  if (meta && keep > 0) {
    window = memory.enabled
      ? await loadWindow(deps.store, sessionKey, meta, summary?.upTo ?? 0, keep, memory, loaded)
      : await readIndexed(deps.store, sessionKey, meta, 0, keep, loaded);
  }
  const storedTokens = !meta ? 0 : keep === meta.count ? meta.memory.tokens : sumLoaded(loaded, keep);
  const { contextFacts, scratch } = await loadContext(deps.store, sessionKey, meta);
  return { meta, reconciliation, instructions, fresh, window, storedTokens, summary, profile, contextFacts, scratch };
}

/** The head, unless the session has been idle past its TTL — then it is erased and the turn starts fresh. */
async function loadMeta(deps: TurnDeps, sessionKey: string, retentionMs: number): Promise<SessionMeta | undefined> {
  const meta = await deps.store.getMeta(sessionKey);
  if (!meta || retentionMs === 0 || deps.now() - meta.updatedAt <= retentionMs) return meta;
  // Tombstoned as of its last activity: this turn, which found it expired, starts it anew.
  await eraseSession(deps.store, sessionKey, meta.updatedAt);
  deps.onExpired?.();
  return undefined;
}

async function loadContext(store: SessionStore, sessionKey: string, meta: SessionMeta | undefined) {
  const counts = meta?.memory.context;
  if (!counts || (counts.facts === 0 && counts.scratch === 0)) return { contextFacts: [], scratch: {} };
  const [facts, scratch] = await store.readAux<unknown>(sessionKey, [CONTEXT_FACTS, CONTEXT_SCRATCH]);
  return { contextFacts: (facts as ContextFact[] | undefined) ?? [], scratch: (scratch as Record<string, ScratchEntry> | undefined) ?? {} };
}

/**
 * Appends the turn (the client's new messages and the captured reply) with
 * compare-and-set, updating facts and running totals in the same write. On a
 * conflict (another request committed first) it reloads and reconciles again,
 * so concurrent turns are all kept, in commit order.
 */
export async function commitTurn(
  deps: TurnDeps,
  sessionKey: string,
  request: TurnRequest,
  config: Config,
  first: TurnState,
  reply: StoredMessage,
  accounting: TurnAccounting,
  options: {
    attempts?: number;
    /** The createdAt of the session the turn was first loaded from (null: none), when that was earlier (an outbox replay). */
    bornOf?: number | null;
  } = {},
): Promise<{ meta: SessionMeta; factsExtracted: number }> {
  // Many writers on one session (retries, parallel tabs, several instances) each need a turn:
  // retry with growing, jittered pauses rather than give up early.
  const attempts = options.attempts ?? 100;
  let state = first;
  let attempt: number;
  const bornOf = options.bornOf !== undefined ? options.bornOf : (first.meta?.createdAt ?? null);
  for (attempt = 1; ; attempt++) {
    // Erasure wins: a turn belongs to the session it loaded. Gone, or erased and started anew
    // (another createdAt), it is not written: nothing from before a delete can bring it back.
    if (bornOf !== null && (!state.meta || state.meta.createdAt !== bornOf)) throw new SessionErasedError(sessionKey);
    const horizon = (deps.clock ?? deps.now)() - config.session.tombstone_ttl_ms;
    if (!state.meta && request.startedAt !== undefined && (await erasedSince(deps.store, sessionKey, request.startedAt, horizon))) {
      throw new SessionErasedError(sessionKey);
    }
    if (
      (request.turnId && state.meta?.memory.turns?.includes(request.turnId)) ||
      (request.idempotencyKey && state.meta?.memory.idempotency?.includes(request.idempotencyKey))
    ) {
      // This turn (or a retry of its request) already landed: another attempt, a late commit, a replay.
      return { meta: state.meta!, factsExtracted: 0 };
    }
    const append = [...state.fresh, reply];
    const extracted = extractFacts(
      append.map((stored, offset) => ({ stored, index: state.reconciliation.keep + offset })),
      config.memory.facts.extractors,
    );
    // Side records first (idempotent: facts dedupe by hash); the head commit below is what makes them count.
    const contextFacts = await captureToolResults(deps, sessionKey, state, config);
    const memory = nextMemory(
      state,
      append,
      extracted.filter((fact) => fact.scope === 'session'),
      accounting,
    );
    memory.user = request.user ?? memory.user;
    if (request.idempotencyKey) memory.idempotency = [...(memory.idempotency ?? []), request.idempotencyKey].slice(-RECENT_KEYS);
    if (request.turnId) memory.turns = [...(memory.turns ?? []), request.turnId].slice(-RECENT_TURNS);
    if (contextFacts !== undefined) memory.context = { facts: contextFacts, scratch: memory.context?.scratch ?? 0 };
    const result = await deps.store.commit(sessionKey, state.meta?.version ?? 0, {
      keep: state.reconciliation.keep,
      append,
      memory,
      base: state.meta,
    });
    if (result.ok) {
      await saveUserFacts(deps, request, state.profile, extracted);
      return { meta: result.meta, factsExtracted: extracted.length };
    }
    if (attempt >= attempts) throw new CommitConflictError(`session ${sessionKey}: gave up after ${attempts} conflicting commits`);
    await sleep(Math.random() * Math.min(2 ** attempt, 50));
    state = await loadTurn(deps, sessionKey, request, config);
  }
}

/** Stores tool results from this turn as context facts; returns the new fact count, or undefined when there were none. */
async function captureToolResults(deps: TurnDeps, sessionKey: string, state: TurnState, config: Config): Promise<number | undefined> {
  if (!config.memory.context.capture_tool_results || !state.fresh.some((stored) => stored.message.role === 'tool')) return undefined;
  const captured = toolResultFacts(
    state.fresh,
    state.window.map((item) => item.stored.message),
    deps.now(),
  );
  const facts = addFacts(state.contextFacts, captured, deps.now());
  await deps.store.writeAux(sessionKey, [{ name: CONTEXT_FACTS, value: facts }]);
  return facts.length;
}

/** Facts extracted with `scope: user` go to the user's profile, across sessions. */
async function saveUserFacts(
  deps: TurnDeps,
  request: TurnRequest,
  profile: UserProfile | undefined,
  extracted: ExtractedFact[],
): Promise<void> {
  if (!request.user) return;
  const updated = withUserFacts(
    profile,
    extracted.filter((fact) => fact.scope === 'user'),
    deps.now(),
  );
  if (updated) await deps.store.setRecord(userKey(request.tenant, request.user), updated);
}

function nextMemory(state: TurnState, append: StoredMessage[], extracted: ExtractedFact[], accounting: TurnAccounting): SessionMemory {
  const base = state.meta?.memory ?? emptyMemory();
  const keep = state.reconciliation.keep;
  const usage = base.usage;
  return {
    ...base,
    // A fork below the summary invalidates it; any fork starts a new recall index generation
    // (rebuilt in the background), since the replaced messages may be indexed.
    summary: state.summary,
    recall: !state.meta
      ? // A new session's index gets a generation of its own: records an erased predecessor's background
        // job wrote late under the same session key are never read as this one's.
        { docs: 0, length: 0, generation: randomInt(2, 2 ** 31) }
      : keep < state.meta.count
        ? { docs: 0, length: 0, generation: indexGeneration(base.recall) + 1 }
        : base.recall,
    facts: mergeFacts(Object.fromEntries(Object.entries(base.facts).filter(([, fact]) => fact.index < keep)), extracted),
    tokens: state.storedTokens + append.reduce((total, stored) => total + stored.tokens, 0),
    usage: {
      ...usage,
      requests: usage.requests + 1,
      baselineTokens: usage.baselineTokens + accounting.baselineTokens,
      sentTokens: usage.sentTokens + accounting.sentTokens,
      providerPromptTokens: usage.providerPromptTokens + (accounting.providerPromptTokens ?? 0),
      providerCachedTokens: usage.providerCachedTokens + (accounting.providerCachedTokens ?? 0),
      completionTokens: usage.completionTokens + (accounting.completionTokens ?? 0),
    },
  };
}

/** The summary, unless the client forked below the point it covers (then it describes a history that is gone). */
function validSummary(meta: SessionMeta | undefined, keep: number): Summary | undefined {
  const summary = meta?.memory.summary;
  return summary && summary.upTo <= keep ? summary : undefined;
}

const WINDOW_PAGE = 64;

/**
 * The newest stored messages in [floor, keep), read a page at a time from the
 * end until they cover the largest window and the turn limit: bounded by the
 * window's size, not by the session's length.
 */
async function loadWindow(
  store: SessionStore,
  sessionKey: string,
  meta: SessionMeta,
  floor: number,
  keep: number,
  memory: Config['memory'],
  loaded: Map<number, StoredMessage>,
): Promise<Indexed[]> {
  const out: Indexed[] = [];
  let tokens = 0;
  let turns = 0;
  let to = keep;
  // The window holds at most min + step tokens (see window.ts); one page more finds its turn start.
  const enough = windowMinTokens(memory.window, meta.memory.summary?.tokens ?? 0) + memory.window.step_tokens;
  while (to > floor && tokens <= enough && turns <= memory.window.max_turns) {
    const from = Math.max(floor, to - WINDOW_PAGE);
    const page = await readIndexed(store, sessionKey, meta, from, to, loaded);
    for (let position = page.length - 1; position >= 0; position--) {
      const item = page[position]!;
      tokens += item.stored.tokens;
      if (item.stored.message.role === 'user') turns++;
    }
    out.unshift(...page);
    to = from;
  }
  return out;
}

async function readIndexed(
  store: SessionStore,
  sessionKey: string,
  meta: SessionMeta,
  from: number,
  to: number,
  loaded: Map<number, StoredMessage>,
): Promise<Indexed[]> {
  let missingFrom = from;
  while (missingFrom < to && loaded.has(missingFrom)) missingFrom++;
  let missingTo = to;
  while (missingTo > missingFrom && loaded.has(missingTo - 1)) missingTo--;
  if (missingFrom < missingTo) {
    const slice = await store.readMessages(sessionKey, meta, missingFrom, missingTo);
    slice.forEach((message, offset) => loaded.set(missingFrom + offset, message));
  }
  const out: Indexed[] = [];
  for (let index = from; index < to; index++) {
    const stored = loaded.get(index);
    if (stored) out.push({ index, stored });
  }
  return out;
}

function sumLoaded(loaded: Map<number, StoredMessage>, keep: number): number {
  let total = 0;
  for (let index = 0; index < keep; index++) total += loaded.get(index)?.tokens ?? 0;
  return total;
}

function mergeRanges(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = ranges.filter(([from, to]) => to > from).sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const range of sorted) {
    const last = out[out.length - 1];
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
    else out.push([...range]);
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
