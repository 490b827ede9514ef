import { randomUUID } from 'node:crypto';
import type { SessionStore, SessionMeta } from '../store/types.js';
import type { Tokenizer } from '../tokenizer.js';
import { isInstruction, messageHash, type ChatMessage, type StoredMessage } from './messages.js';
import { rangesNeeded, reconcile, type Reconciliation, type StoredView } from './reconcile.js';

/** A session as one request sees it: the head, the loaded stored messages, and how the client's messages fit. */
export interface TurnState {
  meta: SessionMeta | undefined;
  reconciliation: Reconciliation;
  /** The client's system/developer messages, kept first and never stored as turns. */
  instructions: ChatMessage[];
  /** Client messages that are new to the store, ready to append (tokens counted once, here). */
  fresh: StoredMessage[];
  /** Stored messages that stay, [0, keep) — the history the prompt is built from. */
  history: StoredMessage[];
}

export interface TurnDeps {
  store: SessionStore;
  tokenizer: Tokenizer;
  now: () => number;
}

export function toStored(message: ChatMessage, model: string, deps: Pick<TurnDeps, 'tokenizer' | 'now'>): StoredMessage {
  return { id: randomUUID(), message, tokens: deps.tokenizer.countMessage(message, model), hash: messageHash(message), at: deps.now() };
}

/** Loads what reconciling needs, reconciles, and loads the history that stays. */
export async function loadTurn(deps: TurnDeps, sessionKey: string, messages: ChatMessage[], model: string): Promise<TurnState> {
  const instructions = messages.filter(isInstruction);
  const conversation = messages.filter((message) => !isInstruction(message));
  const hashes = conversation.map(messageHash);
  const meta = await deps.store.getMeta(sessionKey);
  const loaded = new Map<number, StoredMessage>();
  if (meta) {
    for (const [from, to] of mergeRanges(rangesNeeded(meta.count, conversation.length))) {
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
  const fresh = conversation.slice(reconciliation.from).map((message, offset) => ({
    ...toStored(message, model, deps),
    hash: hashes[reconciliation.from + offset]!,
  }));
  const history = meta ? await readRange(deps.store, sessionKey, meta, 0, reconciliation.keep, loaded) : [];
  return { meta, reconciliation, instructions, fresh, history };
}

/**
 * Appends the turn (the client's new messages and the captured reply) with
 * compare-and-set. On a conflict (another request committed first) it reloads
 * and reconciles again, so concurrent turns are all kept, in commit order.
 */
export async function commitTurn(
  deps: TurnDeps,
  sessionKey: string,
  messages: ChatMessage[],
  model: string,
  first: TurnState,
  reply: StoredMessage,
  options: { attempts?: number } = {},
): Promise<SessionMeta> {
  const attempts = options.attempts ?? 8;
  let state = first;
  for (let attempt = 1; ; attempt++) {
    const result = await deps.store.commit(sessionKey, state.meta?.version ?? 0, {
      keep: state.reconciliation.keep,
      append: [...state.fresh, reply],
    });
    if (result.ok) return result.meta;
    if (attempt >= attempts) throw new Error(`session ${sessionKey}: gave up after ${attempts} conflicting commits`);
    await sleep(Math.random() * 5 * attempt);
    state = await loadTurn(deps, sessionKey, messages, model);
  }
}

async function readRange(
  store: SessionStore,
  sessionKey: string,
  meta: SessionMeta,
  from: number,
  to: number,
  loaded: Map<number, StoredMessage>,
): Promise<StoredMessage[]> {
  let missingFrom = from;
  while (missingFrom < to && loaded.has(missingFrom)) missingFrom++;
  let missingTo = to;
  while (missingTo > missingFrom && loaded.has(missingTo - 1)) missingTo--;
  if (missingFrom < missingTo) {
    const slice = await store.readMessages(sessionKey, meta, missingFrom, missingTo);
    slice.forEach((message, offset) => loaded.set(missingFrom + offset, message));
  }
  const out: StoredMessage[] = [];
  for (let index = from; index < to; index++) {
    const message = loaded.get(index);
    if (message) out.push(message);
  }
  return out;
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
