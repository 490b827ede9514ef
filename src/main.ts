import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { createLogger } from './logger.js';
import { createApp } from './server.js';
import { createStore, redactUrl } from './store/factory.js';
import type { SessionStore } from './store/types.js';
import { TiktokenTokenizer, type Tokenizer } from './tokenizer.js';
import { createUndiciClient, type UpstreamClient } from './upstream/client.js';

export interface MnemoOptions {
  config: Config;
  logger?: Logger;
  /** Injected in tests; defaults to the store named by config.store.url. */
  store?: SessionStore;
  upstream?: UpstreamClient;
  tokenizer?: Tokenizer;
  now?: () => number;
}

export interface RunningMnemo {
  url: string;
  server: Server;
  store: SessionStore;
  logger: Logger;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes the store. */
  close(graceMs?: number): Promise<void>;
}

/** Builds the dependencies, checks the store answers, and listens. */
export async function startMnemo(options: MnemoOptions): Promise<RunningMnemo> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.log);
  const store = options.store ?? (await createStore({ url: config.store.url, timeoutMs: config.store.timeout_ms }));
  const ownUpstream = options.upstream ? undefined : createUndiciClient({ timeoutMs: config.upstream.timeout_ms });
  let accepting = true;
  const app = createApp(
    {
      config: () => config,
      store,
      tokenizer: options.tokenizer ?? new TiktokenTokenizer(),
      upstream: options.upstream ?? ownUpstream!,
      logger,
      now: options.now ?? Date.now,
    },
    { accepting: () => accepting },
  );
  const server = app.listen(config.server.port, config.server.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  logger.info({ url, store: redactUrl(config.store.url), upstream: config.upstream.url }, 'mnemo listening');

  const close = async (graceMs = 10_000) => {
    accepting = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    await ownUpstream?.close();
    await store.close();
  };
  return { url, server, store, logger, close };
}
