import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startMnemo, type RunningMnemo } from '../../src/main.js';
import type { SessionStore } from '../../src/store/types.js';
import { FakeProvider } from './fake-provider.js';

export interface Harness {
  provider: FakeProvider;
  mnemo: RunningMnemo;
  /** mnemo's base URL for OpenAI clients, e.g. http://127.0.0.1:PORT/v1 */
  baseURL: string;
  chat(sessionId: string | undefined, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Response>;
  /** Calls mnemo's admin API with the admin token, as the tenant of the default API key (sk-test). */
  admin(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** A real mnemo on a loopback port, talking to a fake provider on another; `now` is mnemo's clock. */
export async function startHarness(
  overrides: DeepPartial<Config> = {},
  provider?: FakeProvider,
  options: { now?: () => number; store?: SessionStore } = {},
): Promise<Harness> {
  const fake = provider ?? (await new FakeProvider().start());
  const config = parseConfig({
    ...overrides,
    server: { host: '127.0.0.1', port: 0, admin_token: ADMIN_TOKEN, ...overrides.server },
    log: { level: 'silent', ...overrides.log },
    upstream: { url: fake.url, ...overrides.upstream },
    // Each mnemo its own outbox (a real SQLite database, in memory unless a test names a file).
    store: { url: 'memory://', outbox: ':memory:', ...overrides.store },
  });
  const mnemo = await startMnemo({ config, now: options.now, store: options.store });
  return {
    provider: fake,
    mnemo,
    baseURL: `${mnemo.url}/v1`,
    chat: (sessionId, body, headers = {}) =>
      fetch(`${mnemo.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer sk-test',
          ...(sessionId === undefined ? {} : { 'x-session-id': sessionId }),
          ...headers,
        },
        body: JSON.stringify({ model: 'gpt-4o-mini', ...body }),
      }),
    admin: (path, init = {}) => {
      const { json, headers, ...rest } = init;
      return fetch(`${mnemo.url}${path}`, {
        ...rest,
        ...(json !== undefined && { body: JSON.stringify(json) }),
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          'x-mnemo-tenant-key': 'sk-test',
          ...(json !== undefined && { 'content-type': 'application/json' }),
          ...(headers as Record<string, string>),
        },
      });
    },
    close: async () => {
      await mnemo.close(1_000);
      if (!provider) await fake.stop();
    },
  };
}

export const user = (content: string) => ({ role: 'user', content });
export const assistant = (content: string) => ({ role: 'assistant', content });
export const system = (content: string) => ({ role: 'system', content });
