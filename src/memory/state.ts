/** A fact's earlier value, kept when a newer one replaces it. */
export interface FactVersion {
  value: string;
  source: string;
  at: number;
}

/** One structured fact (`order_id: 7890`) with where and when it was learned. */
export interface Fact extends FactVersion {
  name: string;
  scope: 'session' | 'user';
  /** Transcript index of the source message (facts from messages the prompt still shows are not repeated). */
  index: number;
  history: FactVersion[];
}

/** The rolling summary: messages [0, upTo) are folded into `text`. */
export interface Summary {
  text: string;
  tokens: number;
  upTo: number;
  /** Tokens of the folded messages, so unsummarized tokens are known without reading them. */
  foldedTokens: number;
  /** Id of the last folded message: a fork below it invalidates the summary. */
  lastId: string;
  at: number;
}

/** Running totals per session, read by the metrics exporter and the admin API. */
export interface SessionUsage {
  requests: number;
  baselineTokens: number;
  sentTokens: number;
  sideInputTokens: number;
  sideOutputTokens: number;
  providerPromptTokens: number;
  providerCachedTokens: number;
  completionTokens: number;
}

/** Everything about a session besides its transcript; lives in the head, so one CAS covers both. */
export interface SessionMemory {
  summary?: Summary;
  facts: Record<string, Fact>;
  /** Tokens of the whole stored transcript. */
  tokens: number;
  usage: SessionUsage;
  /**
   * The recall index. Its statistics and progress live in a side record of their own (see
   * lexical-index.ts), so background indexing never rewrites the head; the head only names the
   * index `generation`, which a fork below the indexed messages moves on (the new generation is
   * rebuilt from the first message). `docs`, `length`, `segments` and `common` are what an older
   * mnemo kept here for an index over folded messages only; such a session is reindexed.
   */
  recall: {
    docs: number;
    length: number;
    segments?: string[];
    common?: Array<[string, number]>;
    generation?: number;
  };
  /** The end user this session belongs to, when the app says. */
  user?: string;
  /** How many context facts and scratchpad entries exist, so turns without any skip reading them. */
  context?: { facts: number; scratch: number };
  /** Idempotency keys of recent committed turns: a retried request is recorded once. */
  idempotency?: string[];
  /**
   * Ids of the most recent committed turns: a commit applies a turn at most once, so a commit
   * that timed out but ran late, a retry and an outbox replay never record a turn twice, and
   * whether a turn landed can always be looked up.
   */
  turns?: string[];
}

export function emptyMemory(): SessionMemory {
  return {
    facts: {},
    tokens: 0,
    usage: {
      requests: 0,
      baselineTokens: 0,
      sentTokens: 0,
      sideInputTokens: 0,
      sideOutputTokens: 0,
      providerPromptTokens: 0,
      providerCachedTokens: 0,
      completionTokens: 0,
    },
    recall: { docs: 0, length: 0, generation: 1 },
  };
}
