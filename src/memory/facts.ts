import type { FactExtractor } from '../config/schema.js';
import { linearPattern } from '../linear-regex.js';
import { contentText, type StoredMessage } from './messages.js';
import type { Fact } from './state.js';

const HISTORY_LIMIT = 10;

/** Text an extractor scans: content, plus tool-call arguments (where ids often hide). */
function scannable(stored: StoredMessage): string {
  const calls = (stored.message.tool_calls ?? []).map((call) => `${call.function?.name ?? ''} ${call.function?.arguments ?? ''}`);
  return [contentText(stored.message.content), ...calls].join('\n');
}

export interface ExtractedFact {
  name: string;
  value: string;
  scope: 'session' | 'user';
  source: string;
  index: number;
  at: number;
}

/** Runs the YAML-declared extractors over messages; the last match in a message wins. */
export function extractFacts(messages: Array<{ stored: StoredMessage; index: number }>, extractors: FactExtractor[]): ExtractedFact[] {
  const out: ExtractedFact[] = [];
  for (const { stored, index } of messages) {
    const role = stored.message.role;
    const text = scannable(stored);
    if (text.length === 0) continue;
    for (const extractor of extractors) {
      if (!extractor.roles.includes(role as 'user')) continue;
      let value: string | undefined;
      for (const match of linearPattern(extractor.pattern, { caseInsensitive: true }).matchAll(text))
        value = match[extractor.group]?.trim() || value;
      if (value) out.push({ name: extractor.name, value, scope: extractor.scope, source: stored.id, index, at: stored.at });
    }
  }
  return out;
}

/** A newer value replaces an older one; the older one moves to history. */
export function mergeFacts(current: Record<string, Fact>, extracted: ExtractedFact[]): Record<string, Fact> {
  if (extracted.length === 0) return current;
  const next = { ...current };
  for (const fact of extracted) {
    const previous = next[fact.name];
    if (previous?.value === fact.value) continue;
    const history = previous
      ? [{ value: previous.value, source: previous.source, at: previous.at }, ...previous.history].slice(0, HISTORY_LIMIT)
      : [];
    next[fact.name] = { ...fact, history };
  }
  return next;
}

/** `name: value` lines, newest first, within `maxTokens`. */
export function renderFacts(facts: Fact[], countTokens: (text: string) => number, maxTokens: number): string[] {
  const lines: string[] = [];
  let used = 0;
  for (const fact of [...facts].sort((a, b) => b.at - a.at || b.index - a.index)) {
    const line = `${fact.name}: ${fact.value}`;
    const cost = countTokens(line) + 1;
    if (used + cost > maxTokens) continue;
    lines.push(line);
    used += cost;
  }
  return lines.sort();
}
