import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics/metrics.js';
import { PeriodicTask } from '../periodic-task.js';
import type { Outbox, OutboxEntry } from '../store/outbox.js';
import type { SessionStore } from '../store/types.js';
import type { Tokenizer } from '../tokenizer.js';
import type { PendingTurn } from '../store/outbox.js';
import { isInstruction, messageHash } from './messages.js';
import { commitTurn, loadTurn, SessionErasedError, toStored, type TurnState } from './transcript.js';

export interface ReplayDeps {
  outbox: Outbox;
  store: SessionStore;
  tokenizer: Tokenizer;
  logger: Logger;
  metrics: Metrics;
  config: () => Config;
  now: () => number;
}

const BATCH = 64;

/**
 * Replays outbox entries into the store, in the order they were written,
 * once the store answers again. A replay is an ordinary commit of the turn
 * with its own id, so a turn that landed after all (a commit that timed out
 * but ran late) is not recorded twice, and one whose session was erased since
 * is dropped. The first store failure stops a pass; the next interval retries.
 */
export class OutboxReplayer {
  private readonly task: PeriodicTask;

  constructor(private readonly deps: ReplayDeps) {
    this.task = new PeriodicTask(
      () => this.pass(),
      (error) => deps.logger.warn({ err: error, outbox: deps.outbox.depth().depth }, 'outbox replay paused: the store still fails'),
    );
  }

  start(intervalMs: number): void {
    this.task.start(intervalMs);
  }

  /** Replays everything that waits (joining a pass under way); resolves with how many entries were settled. */
  drain(): Promise<number> {
    return this.task.run();
  }

  /**
   * Before a session's next turn on this instance: its waiting turns go first, so the
   * conversation does not skip. Throws what the store throws (the turn then fails or passes
   * through without memory, per store.on_store_error).
   */
  async flushSession(sessionKey: string): Promise<void> {
    if (!this.deps.outbox.hasPending(sessionKey)) return;
    for (const entry of this.deps.outbox.forSession(sessionKey)) await this.replay(entry);
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async pass(): Promise<number> {
    let settled = 0;
    for (;;) {
      const entries = this.deps.outbox.oldest(BATCH);
      if (entries.length === 0) return settled;
      for (const entry of entries) {
        await this.replay(entry);
        settled++;
      }
    }
  }

  private async replay(entry: OutboxEntry): Promise<void> {
    const { turn } = entry;
    const config = this.deps.config();
    // The turn's messages keep the time it happened, not the time it was replayed.
    const deps = { store: this.deps.store, tokenizer: this.deps.tokenizer, now: () => turn.at, clock: this.deps.now };
    let outcome: 'landed' | 'erased' = 'landed';
    try {
      const state = await loadTurn(deps, turn.sessionKey, turn.request, config);
      await commitTurn(deps, turn.sessionKey, turn.request, config, state, turn.reply, turn.accounting, { bornOf: turn.bornOf });
    } catch (error) {
      if (!(error instanceof SessionErasedError)) {
        this.deps.metrics.outboxReplays.inc({ outcome: 'failed' });
        throw error;
      }
      outcome = 'erased';
    }
    this.deps.outbox.delete(entry);
    this.deps.metrics.outboxReplays.inc({ outcome });
  }
}

/**
 * A turn's state with the session's turns still waiting in the outbox appended to its window, as
 * if committed: while the store refuses writes, the conversation on this instance does not skip.
 * A waiting turn contributes the messages of its request the window does not already hold, then
 * its reply.
 */
export function withPendingTurns(state: TurnState, pending: PendingTurn[], deps: { tokenizer: Tokenizer; now: () => number }): TurnState {
  if (pending.length === 0) return state;
  const window = [...state.window];
  const known = new Set(window.map((item) => item.stored.hash));
  let index = state.reconciliation.keep;
  let tokens = 0;
  for (const turn of pending) {
    const added = turn.request.messages
      .filter((message) => !isInstruction(message))
      .map((message) => toStored(message, turn.request.model, deps, [], messageHash(message)))
      .filter((stored) => !known.has(stored.hash));
    for (const stored of [...added, turn.reply]) {
      known.add(stored.hash);
      window.push({ index: index++, stored });
      tokens += stored.tokens;
    }
  }
  return { ...state, window, storedTokens: state.storedTokens + tokens };
}
