import { StoreUnavailableError } from '../errors.js';
import type { SessionStore } from './types.js';

/**
 * Gives every store call a deadline and one error type, so a slow or dead
 * backend never hangs a request and the error middleware can answer 503.
 * `timeoutMs` undefined: no deadline, for backends whose calls run to the end
 * inside this process (memory, better-sqlite3) — a timer could never fire
 * before they return, so arming one would only cost time on every call.
 */
export class TimedStore implements SessionStore {
  constructor(
    private readonly inner: SessionStore,
    private readonly timeoutMs: number | undefined,
  ) {}

  get backend(): string {
    return this.inner.backend;
  }

  get networked(): boolean {
    return this.inner.networked;
  }

  getMeta: SessionStore['getMeta'] = (key) => this.timed(() => this.inner.getMeta(key));
  readMessages: SessionStore['readMessages'] = (key, meta, from, to) => this.timed(() => this.inner.readMessages(key, meta, from, to));
  readMessagesAt: SessionStore['readMessagesAt'] = (key, meta, indices) => this.timed(() => this.inner.readMessagesAt(key, meta, indices));
  commit: SessionStore['commit'] = (key, version, change) => this.timed(() => this.inner.commit(key, version, change));
  readAux: SessionStore['readAux'] = (key, names) => this.timed(() => this.inner.readAux(key, names));
  writeAux: SessionStore['writeAux'] = (key, entries) => this.timed(() => this.inner.writeAux(key, entries));
  deleteAux: SessionStore['deleteAux'] = (key, names) => this.timed(() => this.inner.deleteAux(key, names));
  listSessions: SessionStore['listSessions'] = (prefix) => this.inner.listSessions(prefix);
  listRecords: SessionStore['listRecords'] = (prefix) => this.inner.listRecords(prefix);
  getRecord: SessionStore['getRecord'] = (key) => this.timed(() => this.inner.getRecord(key));
  setRecord: SessionStore['setRecord'] = (key, value) => this.timed(() => this.inner.setRecord(key, value));
  deleteRecord: SessionStore['deleteRecord'] = (key) => this.timed(() => this.inner.deleteRecord(key));
  delete: SessionStore['delete'] = (key) => this.timed(() => this.inner.delete(key));
  ping: SessionStore['ping'] = () => this.timed(() => this.inner.ping());
  close: SessionStore['close'] = () => this.inner.close();

  private async timed<T>(operation: () => Promise<T>): Promise<T> {
    const timeoutMs = this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      if (timeoutMs === undefined) return await operation();
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      return await Promise.race([operation(), deadline]);
    } catch (error) {
      throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError(error);
    } finally {
      clearTimeout(timer);
    }
  }
}
