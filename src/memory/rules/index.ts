import type { PruningRule } from '../../config/schema.js';
import { dropMatching } from './drop-matching.js';
import { roleLimit } from './role-limit.js';
import { stubMedia } from './stub-media.js';
import { stubToolResults } from './stub-tool-results.js';
import { truncateLong } from './truncate.js';
import type { RuleContext, WindowEntry } from './types.js';

export type { RuleContext, WindowEntry } from './types.js';

type RuleOf<K extends PruningRule['kind']> = Extract<PruningRule, { kind: K }>;

/** One function per rule kind; adding a kind = a schema entry + a function here. */
const RULES: { [K in PruningRule['kind']]: (entries: WindowEntry[], rule: RuleOf<K>, context: RuleContext) => WindowEntry[] } = {
  drop_matching: dropMatching,
  stub_tool_results: stubToolResults,
  truncate: truncateLong,
  role_limit: roleLimit,
  stub_media: stubMedia,
};

/** Applies the configured rules in the order the YAML lists them. */
export function applyRules(entries: WindowEntry[], rules: PruningRule[], context: RuleContext): WindowEntry[] {
  return rules.reduce(
    (current, rule) => (RULES[rule.kind] as (e: WindowEntry[], r: PruningRule, c: RuleContext) => WindowEntry[])(current, rule, context),
    entries,
  );
}
