import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { SessionStore } from '../store/types.js';
import type { Tokenizer } from '../tokenizer.js';
import type { UpstreamClient } from '../upstream/client.js';
import type { FoldScheduler } from '../memory/folds.js';
import type { Embedder } from '../memory/embeddings.js';
import type { Metrics } from '../metrics/metrics.js';
import type { OutboxReplayer } from '../memory/outbox-replay.js';
import type { Outbox } from '../store/outbox.js';

/** Everything the request path touches outside itself; built once in main, injected in tests. */
export interface ProxyDeps {
  /** Read per request so a config reload applies to the next request. */
  config: () => Config;
  store: SessionStore;
  tokenizer: Tokenizer;
  upstream: UpstreamClient;
  logger: Logger;
  now: () => number;
  /** Background summary folds, scheduled after a turn commits. */
  folds: FoldScheduler;
  /** Where turns go whose commit failed after the provider answered (store.outbox), and their replayer. */
  outbox?: { box: Outbox; replayer: OutboxReplayer };
  embedder: Embedder;
  metrics: Metrics;
  /** Told when an idle session is found expired on a request. */
  onExpired?: () => void;
}

/** Session header names in lookup order. */
export function sessionHeaders(config: Config): string[] {
  return [config.session.header, ...config.session.aliases].map((name) => name.toLowerCase());
}
