import type { MemoryConfig } from '../config/schema.js';
import { REPLY_PRIMING } from '../tokenizer.js';
import { renderFacts } from './facts.js';
import { CONTEXT_HEADER, dataLine, MEMORY_HEADER, quotedBlock, RECALL_HEADER } from './framing.js';
import { contentText, type ChatMessage, type StoredMessage } from './messages.js';
import { passageTokens, STAMP_TOKENS } from './passages.js';
import { isQuestion } from './lexical-index.js';
import type { RecalledPassage, Recollection } from './recall.js';
import { applyRules, type WindowEntry } from './rules/index.js';
import type { SessionMemory } from './state.js';

export type Block = 'instructions' | 'memory' | 'recall' | 'history' | 'context' | 'new';

export interface AssembledMessage {
  message: ChatMessage;
  tokens: number;
  /** Which part of the prompt it came from, for the preview and accounting. */
  block: Block;
}

export interface AssembledPrompt {
  messages: AssembledMessage[];
  /** Tokens of the prompt as assembled (reply priming included). */
  sentTokens: number;
  /** Tokens the full stored history plus the new messages would have cost. */
  baselineTokens: number;
  /** The context window was too small even for the client's own messages: they go as sent. */
  overflow: boolean;
  /** Archived messages recalled into the prompt. */
  recalled: number;
}

export interface Indexed {
  index: number;
  stored: StoredMessage;
}

export interface AssemblyInput {
  instructions: ChatMessage[];
  fresh: StoredMessage[];
  /** Stored messages after the summary, oldest first (the candidates for the recent window). */
  window: Indexed[];
  memory: SessionMemory;
  /** Passages of earlier messages recalled for this request, best first, with their neighbours. */
  recalled: Recollection[];
  /** The user's profile, rendered (part of the slowly-changing memory block). */
  profile?: string;
  /** Retrieved facts / tool results relevant to this request (best first) and injected scratchpad entries. */
  context?: { facts: string[]; scratch: string[] };
  /** Tokens of all stored messages that stay, for the baseline. */
  storedTokens: number;
  contextWindow: number;
  completionReserve: number;
  config: MemoryConfig;
  countMessage(message: ChatMessage): number;
  countText(text: string): number;
}

/**
 * The outbound prompt, in this order: the client's instructions; the memory
 * block (summary and facts); recalled turns (when `recall.position` is
 * before_window); the recent window; recalled turns (before_new, the default);
 * the new messages. The first three change only when a summary folds, so the
 * provider's prefix cache keeps hitting; per-request material sits late.
 *
 * Guarantees: the total never exceeds context window minus the completion
 * reserve; instructions and new messages are never dropped; a tool call and
 * its results are kept or dropped together.
 */
export function assemble(input: AssemblyInput): AssembledPrompt {
  const instructions = input.instructions.map((message) => entry(message, input.countMessage(message), 'instructions'));
  const fresh = input.fresh.map((stored) => entry(stored.message, stored.tokens, 'new'));
  // A new tool result answers the window's last assistant tool_calls message: that group is
  // pinned next to it, whole and unpruned, and nothing of mnemo's goes in between (OpenAI
  // rejects any message between a tool_calls message and its results).
  const open = openToolGroup(input.window, input.fresh);
  const pinned = open.map(({ stored }) => entry(stored.message, stored.tokens, 'history'));
  const fixed = sum(instructions) + sum(pinned) + sum(fresh) + REPLY_PRIMING;
  const baselineTokens = sum(instructions) + input.storedTokens + sum(fresh) + REPLY_PRIMING;
  const limit = input.contextWindow - input.completionReserve;
  if (fixed > limit) return finish([...instructions, ...pinned, ...fresh], baselineTokens, true);

  const available = Math.min(input.config.budget.prompt_tokens, limit - fixed);
  const earlier = input.window.slice(0, input.window.length - open.length);
  const candidates = applyRules(windowEntries(earlier, input.fresh), input.config.rules, input).filter(
    (candidate) => candidate.turnsAgo <= input.config.window.max_turns,
  );
  const windowStart = (entries: WindowEntry[]) => Math.min(firstIndex(entries), open[0]?.index ?? Number.POSITIVE_INFINITY);

  const recallBudget = Math.min(input.config.recall.max_tokens, available);
  const recall = recallMessage(input.recalled, recallBudget, input);
  const context = contextMessage(input, Math.min(input.config.context.max_tokens, available - tokensOf(recall)));
  // Facts from messages the window no longer shows; recomputed once if the budget drops more.
  let memory = memoryMessage(input, windowStart(candidates));
  const late = tokensOf(recall) + tokensOf(context);
  let window = fitWindow(candidates, available - tokensOf(memory) - late);
  if (window.length < candidates.length) {
    memory = memoryMessage(input, windowStart(window));
    window = fitWindow(candidates, available - tokensOf(memory) - late);
  }
  if (tokensOf(memory) + late > available) memory = undefined;

  const history = window.map((candidate) => entry(candidate.message, candidate.tokens, 'history'));
  const recalled = recall ? [entry(recall.message, recall.tokens, 'recall')] : [];
  const before = input.config.recall.position === 'before_window' ? recalled : [];
  const after = [...(input.config.recall.position === 'before_new' ? recalled : []), ...(context ? [context] : [])];
  const mnemo = { memory: memory ? [memory] : [], before, after };
  const messages =
    input.config.placement === 'leading_system'
      ? [...intoLeadingSystem(instructions, [...mnemo.memory, ...before, ...after], input), ...history, ...pinned, ...fresh]
      : [...instructions, ...mnemo.memory, ...before, ...history, ...after, ...pinned, ...fresh];
  return finish(messages, baselineTokens, false, recall?.lines ?? 0);
}

/** The window's trailing tool-call group (assistant tool_calls and results so far) when the new messages continue it. */
function openToolGroup(window: Indexed[], fresh: StoredMessage[]): Indexed[] {
  if (fresh[0]?.message.role !== 'tool') return [];
  let start = window.length;
  while (start > 0 && window[start - 1]!.stored.message.role === 'tool') start--;
  const head = window[start - 1];
  return head && head.stored.message.role === 'assistant' && head.stored.message.tool_calls?.length ? window.slice(start - 1) : [];
}

/**
 * `placement: leading_system`, for chat templates that accept one system message and only
 * first (Mistral, Gemma on vLLM): mnemo's blocks join the client's leading system message,
 * or become the first message when the client sent none. Costs prefix caching on the
 * per-request blocks, which now sit at the front.
 */
function intoLeadingSystem(instructions: AssembledMessage[], blocks: AssembledMessage[], input: AssemblyInput): AssembledMessage[] {
  if (blocks.length === 0) return instructions;
  const text = blocks.map((block) => contentText(block.message.content)).join('\n\n');
  const lead = instructions[0]?.message;
  if (!lead || lead.role !== 'system') {
    const message: ChatMessage = { role: 'system', content: text };
    return [entry(message, input.countMessage(message), 'memory'), ...instructions];
  }
  const content =
    typeof lead.content === 'string'
      ? `${lead.content}\n\n${text}`
      : [...((lead.content as unknown[] | null | undefined) ?? []), { type: 'text', text }];
  const message = { ...lead, content } as ChatMessage;
  return [entry(message, input.countMessage(message), 'instructions'), ...instructions.slice(1)];
}

function entry(message: ChatMessage, tokens: number, block: Block): AssembledMessage {
  return { message, tokens, block };
}

function sum(entries: Array<{ tokens: number }>): number {
  return entries.reduce((total, item) => total + item.tokens, 0);
}

function tokensOf(message: AssembledMessage | undefined): number {
  return message?.tokens ?? 0;
}

function finish(messages: AssembledMessage[], baselineTokens: number, overflow: boolean, recalled = 0): AssembledPrompt {
  return { messages, sentTokens: sum(messages) + REPLY_PRIMING, baselineTokens, overflow, recalled };
}

function firstIndex(entries: WindowEntry[]): number {
  return entries[0]?.index ?? Number.POSITIVE_INFINITY;
}

/** Window candidates with how many turns ago each was (the new messages count as the current turn). */
function windowEntries(window: Indexed[], fresh: StoredMessage[]): WindowEntry[] {
  // A new user message opens the current turn, making the last stored turn 1 ago;
  // a tool result alone continues the last stored turn (0 ago).
  let turnsAgo = fresh.some((stored) => stored.message.role === 'user') ? 1 : 0;
  const entries: WindowEntry[] = [];
  for (let position = window.length - 1; position >= 0; position--) {
    const { index, stored } = window[position]!;
    entries.push({ index, stored, message: stored.message, tokens: stored.tokens, turnsAgo });
    if (stored.message.role === 'user') turnsAgo++;
  }
  return entries.reverse();
}

/**
 * The newest messages that fit in `budget`, taken whole tool-call group by
 * group (an assistant tool_calls message with its results), never starting
 * with an orphaned tool result.
 */
export function fitWindow(candidates: WindowEntry[], budget: number): WindowEntry[] {
  const kept: WindowEntry[] = [];
  let used = 0;
  let position = candidates.length - 1;
  while (position >= 0) {
    let start = position;
    while (start > 0 && candidates[start]!.message.role === 'tool') start--;
    const group = candidates.slice(start, position + 1);
    if (group[0]!.message.role === 'tool') break; // results whose call is gone
    const cost = sum(group);
    if (used + cost > budget) break;
    kept.unshift(...group);
    used += cost;
    position = start - 1;
  }
  return kept;
}

function memoryMessage(input: AssemblyInput, windowStart: number): AssembledMessage | undefined {
  const facts = Object.values(input.memory.facts).filter((fact) => fact.index < windowStart);
  const lines = renderFacts(facts, input.countText, input.config.facts.max_tokens);
  const summary = input.memory.summary?.text;
  if (!summary && lines.length === 0 && !input.profile) return undefined;
  const parts = [MEMORY_HEADER];
  if (input.profile) parts.push(`About the user:\n${input.profile.split('\n').map(dataLine).join('\n')}`);
  if (summary) parts.push(`Summary of earlier turns:\n${quotedBlock(summary)}`);
  if (lines.length > 0) parts.push(`Known facts:\n${lines.map(dataLine).join('\n')}`);
  const message: ChatMessage = { role: 'system', content: parts.join('\n\n') };
  return entry(message, input.countMessage(message), 'memory');
}

/**
 * Recalled passages within `budget`, filled best first: every hit that fits
 * (a question with its answer), then their neighbours (the line with the date);
 * shown in transcript order under the time their messages were said. Lines
 * said at the same minute share one time line: repeated on every line, the
 * time cost a third of a short line's tokens.
 */
function recallMessage(recalled: Recollection[], budget: number, input: AssemblyInput): (AssembledMessage & { lines: number }) | undefined {
  if (recalled.length === 0 || budget <= 0) return undefined;
  const lines = new Map<number, { stamp: string; line: string }>();
  const stamps = new Set<string>();
  const header = input.countText(RECALL_HEADER) + 4; // the header is always the same text: counted once, then cached
  let used = header;
  const add = (passage: RecalledPassage) => {
    if (lines.has(passage.doc)) return;
    const stamp = formatTime(passage.stored.at);
    const cost = passageTokens(passage) + (stamps.has(stamp) ? 0 : STAMP_TOKENS);
    if (used + cost > budget) return;
    lines.set(passage.doc, { stamp, line: `${passage.stored.message.role}: ${dataLine(passage.text)}` });
    stamps.add(stamp);
    used += cost;
  };
  for (const { passage, neighbours } of recalled) {
    add(passage);
    // A hit that asks something ("What genre is your screenplay?") matched the new message's words,
    // but its answer is the passage after it: that comes along at once, before weaker hits.
    // (bench:locomo: BM25 0.765 -> 0.778, hybrid 0.793 -> 0.797, same tokens.)
    if (isQuestion(passage.text)) {
      const answer = neighbours.find((near) => near.doc > passage.doc);
      if (answer) add(answer);
    }
  }
  for (const { neighbours } of recalled) neighbours.forEach(add);
  if (lines.size === 0) return undefined;
  // Each time line once, even if a clock stepped back between messages: the budget counted one.
  const groups = new Map<string, string[]>();
  for (const [, { stamp, line }] of [...lines].sort((a, b) => a[0] - b[0])) {
    const group = groups.get(stamp);
    if (group) group.push(line);
    else groups.set(stamp, [line]);
  }
  const content = [RECALL_HEADER, ...[...groups].flatMap(([stamp, group]) => [`[${stamp}]`, ...group])];
  const message: ChatMessage = { role: 'system', content: content.join('\n') };
  return { ...entry(message, used, 'recall'), lines: lines.size };
}

function formatTime(at: number): string {
  return new Date(at).toISOString().slice(0, 16).replace('T', ' ');
}

/** Relevant facts and injected scratchpad entries, per request, within `budget`. */
function contextMessage(input: AssemblyInput, budget: number): AssembledMessage | undefined {
  if (!input.context || budget <= 0) return undefined;
  const sections: Array<[string, string[]]> = [
    ['Relevant facts and earlier tool results:', input.context.facts],
    ['Working notes:', input.context.scratch],
  ];
  const parts: string[] = [CONTEXT_HEADER];
  let used = input.countText(parts[0]!) + 4;
  for (const [title, items] of sections) {
    const kept: string[] = [];
    for (const item of items) {
      const cost = input.countText(item) + 2;
      if (used + cost > budget) continue;
      kept.push(`- ${dataLine(item)}`);
      used += cost;
    }
    if (kept.length > 0) parts.push(`${title}\n${kept.join('\n')}`);
  }
  if (parts.length === 1) return undefined;
  const message: ChatMessage = { role: 'system', content: parts.join('\n\n') };
  return entry(message, input.countMessage(message), 'context');
}
