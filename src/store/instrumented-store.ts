import type { Metrics } from '../metrics/metrics.js';
import type { SessionStore } from './types.js';

/** Times every store call and counts failures and CAS conflicts, by operation and backend. */
export class InstrumentedStore implements SessionStore {
  /**
   * The duration histogram's child per operation, bound once: a turn makes ~10 store calls, and
   * resolving labels on each observation was most of the cost of timing them (prom-client's
   * `labels()` hands out a child that observes without that lookup).
   */
  private readonly timers = new Map<string, { observe(value: number): void }>();

  constructor(
    private readonly inner: SessionStore,
    private readonly metrics: Metrics,
  ) {}

  get backend(): string {
    return this.inner.backend;
  }

  get networked(): boolean {
    return this.inner.networked;
  }

  getMeta: SessionStore['getMeta'] = (key) => this.observe('get_meta', () => this.inner.getMeta(key));
  readMessages: SessionStore['readMessages'] = (key, meta, from, to) =>
    this.observe('read_messages', () => this.inner.readMessages(key, meta, from, to));
  readMessagesAt: SessionStore['readMessagesAt'] = (key, meta, indices) =>
    this.observe('read_messages', () => this.inner.readMessagesAt(key, meta, indices));
  readAux: SessionStore['readAux'] = (key, names) => this.observe('read_aux', () => this.inner.readAux(key, names));
  writeAux: SessionStore['writeAux'] = (key, entries) => this.observe('write_aux', () => this.inner.writeAux(key, entries));
  deleteAux: SessionStore['deleteAux'] = (key, names) => this.observe('delete_aux', () => this.inner.deleteAux(key, names));
  listSessions: SessionStore['listSessions'] = (prefix) => this.inner.listSessions(prefix);
  listRecords: SessionStore['listRecords'] = (prefix) => this.inner.listRecords(prefix);
  getRecord: SessionStore['getRecord'] = (key) => this.observe('get_record', () => this.inner.getRecord(key));
  setRecord: SessionStore['setRecord'] = (key, value) => this.observe('set_record', () => this.inner.setRecord(key, value));
  deleteRecord: SessionStore['deleteRecord'] = (key) => this.observe('delete_record', () => this.inner.deleteRecord(key));
  delete: SessionStore['delete'] = (key) => this.observe('delete', () => this.inner.delete(key));
  ping: SessionStore['ping'] = () => this.observe('ping', () => this.inner.ping());
  close: SessionStore['close'] = () => this.inner.close();
  commit: SessionStore['commit'] = async (key, version, change) => {
    const result = await this.observe('commit', () => this.inner.commit(key, version, change));
    if (!result.ok) this.metrics.commitConflicts.inc({ backend: this.backend });
    return result;
  };

  private timer(op: string): { observe(value: number): void } {
    let timer = this.timers.get(op);
    if (!timer) {
      timer = this.metrics.storeDuration.labels({ op, backend: this.backend });
      this.timers.set(op, timer);
    }
    return timer;
  }

  private async observe<T>(op: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await call();
    } catch (error) {
      this.metrics.storeErrors.inc({ op, backend: this.backend });
      throw error;
    } finally {
      this.timer(op).observe((performance.now() - started) / 1000);
    }
  }
}
