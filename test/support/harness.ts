import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startMnemo, type RunningMnemo } from '../../src/main.js';
import { FakeProvider } from './fake-provider.js';

export interface Harness {
  provider: FakeProvider;
  mnemo: RunningMnemo;
  /** mnemo's base URL for OpenAI clients, e.g. http://127.0.0.1:PORT/v1 */
  baseURL: string;
  chat(sessionId: string | undefined, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** A real mnemo on a loopback port, talking to a fake provider on another. */
export async function startHarness(overrides: DeepPartial<Config> = {}, provider?: FakeProvider): Promise<Harness> {
  const fake = provider ?? (await new FakeProvider().start());
  const config = parseConfig({
    ...overrides,
    server: { host: '127.0.0.1', port: 0, ...overrides.server },
    log: { level: 'silent', ...overrides.log },
    upstream: { url: fake.url, ...overrides.upstream },
    store: { url: 'memory://', ...overrides.store },
  });
  const mnemo = await startMnemo({ config });
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
    close: async () => {
      await mnemo.close(1_000);
      if (!provider) await fake.stop();
    },
  };
}

export const user = (content: string) => ({ role: 'user', content });
export const assistant = (content: string) => ({ role: 'assistant', content });
export const system = (content: string) => ({ role: 'system', content });
