import { createHash, randomUUID } from 'node:crypto';
import { GenerationalCache } from '../generational-cache.js';
import { contentText, type ChatMessage, type StoredMessage, type ToolCall } from './messages.js';
import { terms } from './lexical-index.js';

/** A retrieved document, record or captured tool result kept for later turns. */
export interface ContextFact {
  id: string;
  text: string;
  source: string;
  metadata: Record<string, unknown>;
  at: number;
  /** Epoch ms after which the fact is ignored and dropped (undefined = never). */
  expiresAt?: number;
  /** Dedup key: the same text from the same source is one fact. */
  hash: string;
}

/** A scratchpad entry: any JSON value, optionally shown to the model. */
export interface ScratchEntry {
  value: unknown;
  inject: boolean;
  at: number;
}

export const MAX_FACTS_PER_SESSION = 500;
const MAX_TOOL_RESULT_CHARS = 4_000;

export function contextFact(
  input: { text: string; source?: string; metadata?: Record<string, unknown>; ttlMs?: number },
  now: number,
): ContextFact {
  const source = input.source ?? 'api';
  return {
    id: `fact_${randomUUID().replace(/-/g, '').slice(0, 20)}`,
    text: input.text,
    source,
    metadata: input.metadata ?? {},
    at: now,
    expiresAt: input.ttlMs ? now + input.ttlMs : undefined,
    hash: createHash('sha256')
      .update(`${source}\n${input.text.trim().replace(/\s+/g, ' ')}`)
      .digest('base64url')
      .slice(0, 22),
  };
}

/** Adds facts, dropping duplicates (same source and text: the newer replaces the older) and expired ones; keeps the newest N. */
export function addFacts(existing: ContextFact[], added: ContextFact[], now: number): ContextFact[] {
  const byHash = new Map<string, ContextFact>();
  for (const fact of [...existing, ...added]) if (!isExpired(fact, now)) byHash.set(fact.hash, fact);
  return [...byHash.values()].sort((a, b) => a.at - b.at).slice(-MAX_FACTS_PER_SESSION);
}

export function isExpired(fact: ContextFact, now: number): boolean {
  return fact.expiresAt !== undefined && fact.expiresAt <= now;
}

/**
 * Tool results the client sent, as facts: "name(args) → result", so a later
 * turn about the same thing can use what a lookup already returned.
 */
export function toolResultFacts(fresh: StoredMessage[], earlier: ChatMessage[], now: number): ContextFact[] {
  // By id, so a request with thousands of calls and results costs linear time, not their product.
  const calls = new Map<string, ToolCall>();
  for (const message of [...earlier, ...fresh.map((stored) => stored.message)]) {
    for (const call of message.tool_calls ?? []) if (!calls.has(call.id)) calls.set(call.id, call);
  }
  return fresh
    .filter((stored) => stored.message.role === 'tool')
    .map((stored) => {
      const call = calls.get(stored.message.tool_call_id ?? '');
      const name = call?.function.name ?? 'tool';
      const text = `${name}(${call?.function.arguments ?? ''}) → ${contentText(stored.message.content).slice(0, MAX_TOOL_RESULT_CHARS)}`;
      return contextFact(
        { text, source: `tool:${name}`, metadata: { tool_call_id: stored.message.tool_call_id, message_id: stored.id } },
        now,
      );
    });
}

// A fact's terms never change (its hash covers its text), so they are computed once per process.
const TERMS_LIMIT = 50_000;
const termsByHash = new GenerationalCache<string, Set<string>>(TERMS_LIMIT);

function factTerms(fact: ContextFact): Set<string> {
  let cached = termsByHash.get(fact.hash);
  if (!cached) {
    cached = new Set(terms(fact.text));
    termsByHash.set(fact.hash, cached);
  }
  return cached;
}

/** Facts most relevant to `query` (term overlap weighted by rarity), best first, only those sharing a term. */
export function relevantFacts(facts: ContextFact[], query: string, now: number): ContextFact[] {
  const live = facts.filter((fact) => !isExpired(fact, now));
  if (live.length === 0) return [];
  const queryTerms = new Set(terms(query));
  if (queryTerms.size === 0) return [];
  const documents = live.map(factTerms);
  const frequency = new Map<string, number>();
  for (const document of documents) for (const term of document) frequency.set(term, (frequency.get(term) ?? 0) + 1);
  return live
    .map((fact, index) => {
      let score = 0;
      for (const term of queryTerms) if (documents[index]!.has(term)) score += Math.log(1 + live.length / (frequency.get(term) ?? 1));
      return { fact, score };
    })
    .filter((entry) => entry.score > 0)
    .sort((a, b) => b.score - a.score || b.fact.at - a.fact.at)
    .map((entry) => entry.fact);
}
