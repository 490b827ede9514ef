import { NotFoundError } from '../errors.js';
import type { SessionMemory } from '../memory/state.js';
import type { SessionMeta, SessionStore } from '../store/types.js';

/**
 * Changes a session's memory with compare-and-set, so an admin edit never
 * overwrites a turn committed at the same moment.
 */
export async function updateMemory(
  store: SessionStore,
  sessionKey: string,
  update: (memory: SessionMemory, meta: SessionMeta) => SessionMemory,
): Promise<SessionMeta> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const meta = await store.getMeta(sessionKey);
    if (!meta) throw new NotFoundError('No such session.', 'session_not_found');
    const result = await store.commit(sessionKey, meta.version, { keep: meta.count, append: [], memory: update(meta.memory, meta) });
    if (result.ok) return result.meta;
  }
  throw new Error(`session ${sessionKey}: too many concurrent changes`);
}
