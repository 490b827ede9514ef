import type { Config } from '../config/schema.js';
import type { StoredMessage } from '../memory/messages.js';
import {
  commitTurn,
  SessionErasedError,
  type TurnAccounting,
  type TurnDeps,
  type TurnRequest,
  type TurnState,
} from '../memory/transcript.js';
import type { SessionMeta } from '../store/types.js';
import type { ProxyDeps } from './deps.js';

export type CommitOutcome =
  | { kind: 'committed'; meta: SessionMeta; factsExtracted: number }
  /** Written to the local outbox; it lands when the store answers again. */
  | { kind: 'queued'; error: unknown }
  /** The session was erased while the turn ran: by design, nothing is written. */
  | { kind: 'erased' }
  /** Neither committed nor queued (no outbox, or the outbox failed too). */
  | { kind: 'lost'; error: unknown };

/**
 * Commits a turn the provider answered, or, when the commit fails (store down, timed out,
 * conflicts exhausted), writes it to the outbox before the response ends: an answered turn is
 * never dropped because the store failed. The turn's id makes every later attempt idempotent.
 */
export async function commitOrQueue(
  deps: TurnDeps & Pick<ProxyDeps, 'outbox'>,
  sessionKey: string,
  request: TurnRequest & { turnId: string },
  config: Config,
  state: TurnState,
  /** Earlier turns of the session wait in the outbox: this one queues behind them, keeping the order. */
  queueBehind: boolean,
  reply: StoredMessage,
  accounting: TurnAccounting,
): Promise<CommitOutcome> {
  try {
    if (queueBehind) throw new Error('earlier turns of this session are waiting in the outbox');
    const { meta, factsExtracted } = await commitTurn(deps, sessionKey, request, config, state, reply, accounting);
    return { kind: 'committed', meta, factsExtracted };
  } catch (error) {
    if (error instanceof SessionErasedError) return { kind: 'erased' };
    if (!deps.outbox) return { kind: 'lost', error };
    try {
      deps.outbox.box.add({ sessionKey, request, bornOf: state.meta?.createdAt ?? null, reply, accounting, at: reply.at });
      return { kind: 'queued', error };
    } catch (outboxError) {
      return { kind: 'lost', error: outboxError };
    }
  }
}
