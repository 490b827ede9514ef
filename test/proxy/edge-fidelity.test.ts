import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { chooseUpstream } from '../../src/upstream/routing.js';
import { completion, json } from '../support/fake-provider.js';
import { startHarness, user, type Harness } from '../support/harness.js';

describe('what crosses the edge, both ways', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness.close());

  it("keeps mnemo's X-Request-Id and returns the provider's as X-Upstream-Request-Id", async () => {
    harness.provider.next(json(completion({ content: 'ok' }), 200, { 'x-request-id': 'req_provider_1' }));
    const response = await harness.chat('edge-1', { messages: [user('hi')] }, { 'x-request-id': 'mine-123' });
    expect(response.headers.get('x-request-id')).toBe('mine-123');
    expect(response.headers.get('x-upstream-request-id')).toBe('req_provider_1');
  });

  it('does the same on routes without memory, answers them X-Mnemo-Memory: bypass, and never forwards the session header', async () => {
    harness.provider.next(json({ object: 'list', data: [] }, 200, { 'x-request-id': 'req_provider_2' }));
    const response = await fetch(`${harness.baseURL}/models`, { headers: { authorization: 'Bearer sk-test', 'x-session-id': 'edge-2' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-mnemo-memory')).toBe('bypass');
    expect(response.headers.get('x-upstream-request-id')).toBe('req_provider_2');
    expect(response.headers.get('x-request-id')).not.toBe('req_provider_2');
    expect(harness.provider.calls.at(-1)!.headers['x-session-id']).toBeUndefined();
  });

  it('sends prompt_cache_key only where the upstream is known to accept it (auto: OpenAI itself)', async () => {
    await harness.chat('edge-3', { messages: [user('hi')] });
    expect(harness.provider.lastChat.body.prompt_cache_key).toBeUndefined();
    const forced = await startHarness({ upstream: { prompt_cache_key: true } });
    try {
      await forced.chat('edge-3', { messages: [user('hi')] });
      expect(forced.provider.lastChat.body.prompt_cache_key).toMatch(/^mnemo-/);
    } finally {
      await forced.close();
    }
  });

  it('resolves prompt_cache_key auto per upstream, routes included', () => {
    const upstream = parseConfig({
      upstream: { url: 'https://api.openai.com/v1', routes: [{ model: 'llama*', url: 'http://localhost:11434/v1' }] },
    }).upstream;
    expect(chooseUpstream(upstream, 'gpt-4o-mini').promptCacheKey).toBe(true);
    expect(chooseUpstream(upstream, 'llama3').promptCacheKey).toBe(false);
  });

  it('serves Azure-style bodies without model, the deployment in the path naming it', async () => {
    const send = (content: string) =>
      fetch(`${harness.mnemo.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'api-key': 'azure-key', 'x-session-id': 'azure-1' },
        body: JSON.stringify({ messages: [user(content)] }),
      });
    expect((await send('My order #7890 is stuck')).status).toBe(200);
    const second = await send('Which order?');
    expect(second.status).toBe(200);
    const call = harness.provider.lastChat;
    expect(call.path).toContain('/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21');
    expect(call.body.model).toBeUndefined();
    expect(JSON.stringify(call.body.messages)).toContain('#7890');
  });

  it('resends an audio reply by id while the provider holds it, and as its transcript after', async () => {
    const audioReply = (expiresAt: number) =>
      json({
        ...completion({ content: null }),
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: null,
              audio: { id: 'audio_1', data: 'UklGRg==', expires_at: expiresAt, transcript: 'Hi, how can I help?' },
            },
            finish_reason: 'stop',
          },
        ],
      });
    harness.provider.next(audioReply(Math.floor(Date.now() / 1000) + 3600));
    await harness.chat('audio-1', { modalities: ['text', 'audio'], messages: [user('Say hi')] });
    await harness.chat('audio-1', { messages: [user('And again')] });
    expect(harness.provider.lastChat.body.messages[1]).toEqual({ role: 'assistant', content: null, audio: { id: 'audio_1' } });
    harness.provider.next(audioReply(1));
    await harness.chat('audio-2', { modalities: ['text', 'audio'], messages: [user('Say hi')] });
    await harness.chat('audio-2', { messages: [user('And again')] });
    expect(harness.provider.lastChat.body.messages[1]).toEqual({ role: 'assistant', content: 'Hi, how can I help?' });
    expect(harness.provider.rejected).toEqual([]);
  });
});
