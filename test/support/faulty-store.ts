import { StoreUnavailableError } from '../../src/errors.js';
import type { SessionStore } from '../../src/store/types.js';

/**
 * A real store with faults switched on and off by the test:
 * - `failCommits`: commits fail (a full disk, a store that went away between read and write);
 * - `lateCommits`: a commit reports a timeout at once but is applied a moment later, as a Redis
 *   client does with a command it queued while reconnecting;
 * - `down`: every call fails.
 */
export class FaultyStore implements SessionStore {
  failCommits = false;
  lateCommits = false;
  down = false;
  /** Commits applied late, for the test to await. */
  readonly late: Array<Promise<unknown>> = [];

  constructor(private readonly inner: SessionStore) {}

  get backend(): string {
    return this.inner.backend;
  }

  get networked(): boolean {
    return this.inner.networked;
  }

  getMeta: SessionStore['getMeta'] = (key) => this.call(() => this.inner.getMeta(key));
  readMessages: SessionStore['readMessages'] = (key, meta, from, to) => this.call(() => this.inner.readMessages(key, meta, from, to));
  readMessagesAt: SessionStore['readMessagesAt'] = (key, meta, indices) => this.call(() => this.inner.readMessagesAt(key, meta, indices));
  readAux: SessionStore['readAux'] = (key, names) => this.call(() => this.inner.readAux(key, names));
  writeAux: SessionStore['writeAux'] = (key, entries) => this.call(() => this.inner.writeAux(key, entries));
  deleteAux: SessionStore['deleteAux'] = (key, names) => this.call(() => this.inner.deleteAux(key, names));
  listSessions: SessionStore['listSessions'] = (prefix) => this.inner.listSessions(prefix);
  listRecords: SessionStore['listRecords'] = (prefix) => this.inner.listRecords(prefix);
  getRecord: SessionStore['getRecord'] = (key) => this.call(() => this.inner.getRecord(key));
  setRecord: SessionStore['setRecord'] = (key, value) => this.call(() => this.inner.setRecord(key, value));
  deleteRecord: SessionStore['deleteRecord'] = (key) => this.call(() => this.inner.deleteRecord(key));
  delete: SessionStore['delete'] = (key) => this.call(() => this.inner.delete(key));
  ping: SessionStore['ping'] = () => this.call(() => this.inner.ping());
  close: SessionStore['close'] = () => this.inner.close();

  commit: SessionStore['commit'] = async (key, version, change) => {
    if (this.lateCommits) {
      this.late.push(new Promise((resolve) => setTimeout(resolve, 50)).then(() => this.inner.commit(key, version, change)));
      throw new StoreUnavailableError(new Error('no answer within 2000 ms'));
    }
    if (this.failCommits) throw new StoreUnavailableError(new Error('ENOSPC: no space left on device'));
    return this.call(() => this.inner.commit(key, version, change));
  };

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    if (this.down) throw new StoreUnavailableError(new Error('connection refused'));
    return operation();
  }
}
