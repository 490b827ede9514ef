import type { Fact } from './state.js';
import { mergeFacts, type ExtractedFact } from './facts.js';

/** What mnemo keeps about an end user across all of their sessions. */
export interface UserProfile {
  /** Free-text persona or preferences, written by the app. */
  text: string;
  /** Key/value preferences, written by the app. */
  attributes: Record<string, string>;
  /** Facts extracted with `scope: user`. */
  facts: Record<string, Fact>;
  updatedAt: number;
}

export function emptyProfile(now: number): UserProfile {
  return { text: '', attributes: {}, facts: {}, updatedAt: now };
}

export function isEmptyProfile(profile: UserProfile | undefined): boolean {
  return !profile || (profile.text === '' && Object.keys(profile.attributes).length === 0 && Object.keys(profile.facts).length === 0);
}

/** Adds user-scope facts; returns undefined when nothing changed (no write needed). */
export function withUserFacts(profile: UserProfile | undefined, facts: ExtractedFact[], now: number): UserProfile | undefined {
  if (facts.length === 0) return undefined;
  const base = profile ?? emptyProfile(now);
  const merged = mergeFacts(base.facts, facts);
  const changed = Object.keys(merged).some((name) => merged[name]?.value !== base.facts[name]?.value);
  return changed ? { ...base, facts: merged, updatedAt: now } : undefined;
}

/** Lines for the memory block; stable between profile edits so the prompt prefix stays cached. */
export function renderProfile(profile: UserProfile | undefined): string | undefined {
  if (isEmptyProfile(profile)) return undefined;
  const lines: string[] = [];
  if (profile!.text) lines.push(profile!.text);
  for (const [key, value] of Object.entries(profile!.attributes).sort()) lines.push(`${key}: ${value}`);
  for (const fact of Object.values(profile!.facts).sort((a, b) => a.name.localeCompare(b.name))) lines.push(`${fact.name}: ${fact.value}`);
  return lines.join('\n');
}
