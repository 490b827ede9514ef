import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { loadConfig } from './load.js';
import type { Config } from './schema.js';

/** Keys read once at start; a reload that changes them is applied for everything else and logged. */
const RESTART_ONLY: Array<[keyof Config, string]> = [
  ['server', 'host'],
  ['server', 'port'],
  ['server', 'body_limit'],
  ['store', 'url'],
  ['store', 'timeout_ms'],
  ['store', 'chunk_cache'],
  ['store', 'index_cache'],
  ['upstream', 'url'],
];

/**
 * The running configuration. Handlers call `current()` per request, so a
 * reload (SIGHUP, or a file change when watching) applies to the next request.
 * A file that fails validation is rejected and the running config stays.
 */
export class ConfigHolder {
  private config: Config;
  private watcher?: FSWatcher;

  constructor(
    initial: Config,
    private readonly source: { path?: string; env?: Record<string, string | undefined> } | undefined,
    private readonly logger: Logger,
  ) {
    this.config = initial;
  }

  current = (): Config => this.config;

  reload(): boolean {
    if (!this.source) return false;
    try {
      const next = loadConfig(this.source);
      for (const [section, key] of RESTART_ONLY) {
        const before = (this.config[section] as Record<string, unknown>)[key];
        const after = (next[section] as Record<string, unknown>)[key];
        if (before !== after) this.logger.warn({ key: `${section}.${key}` }, 'config key changed on reload; it applies after a restart');
      }
      this.config = { ...next, server: { ...next.server, host: this.config.server.host, port: this.config.server.port } };
      this.logger.level = next.log.level;
      this.logger.info('config reloaded');
      return true;
    } catch (error) {
      this.logger.error({ err: error }, 'config reload rejected; the running config stays in force');
      return false;
    }
  }

  /** Reloads when the file changes (debounced: editors write in several steps). */
  watchFile(path: string): void {
    let timer: NodeJS.Timeout | undefined;
    this.watcher = watch(path, () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.reload(), 200);
    });
  }

  close(): void {
    this.watcher?.close();
  }
}
