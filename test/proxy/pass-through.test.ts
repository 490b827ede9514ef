import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { json } from '../support/fake-provider.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('requests mnemo does not remember pass through untouched', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  beforeEach(() => harness.provider.reset());
  afterAll(() => harness.close());

  it('forwards a chat completion without a session header byte for byte, and stores nothing', async () => {
    const raw = '{ "model":"gpt-4o-mini",\n  "messages":[{"role":"user","content":"odd   spacing"}], "temperature": 0.2 }';
    const response = await fetch(`${harness.mnemo.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer sk-client',
        'openai-organization': 'org-1',
        'openai-project': 'proj-1',
      },
      body: raw,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-mnemo-memory')).toBe('bypass');
    const call = harness.provider.lastChat;
    expect(call.raw.toString()).toBe(raw);
    expect(call.headers.authorization).toBe('Bearer sk-client');
    expect(call.headers['openai-organization']).toBe('org-1');
    expect(call.headers['openai-project']).toBe('proj-1');
  });

  it('proxies other /v1 routes with their method, path and query', async () => {
    const response = await fetch(`${harness.mnemo.url}/v1/models?limit=2`, { headers: { authorization: 'Bearer sk-client' } });
    expect(response.status).toBe(200);
    expect((await response.json()).data[0].id).toBe('gpt-4o-mini');
    expect(harness.provider.calls[0]).toMatchObject({ method: 'GET', path: '/v1/models?limit=2' });
    expect(harness.provider.calls[0]!.headers.authorization).toBe('Bearer sk-client');
  });

  it('proxies request bodies of other routes (embeddings)', async () => {
    harness.provider.next(json({ object: 'list', data: [{ embedding: [0.1, 0.2] }] }));
    const response = await fetch(`${harness.mnemo.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': 'ignored-here' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'hello' }),
    });
    expect(response.status).toBe(200);
    expect(harness.provider.calls[0]!.body).toEqual({ model: 'text-embedding-3-small', input: 'hello' });
  });

  it('passes provider errors of other routes through unchanged', async () => {
    const response = await fetch(`${harness.mnemo.url}/v1/files/nope`);
    expect(response.status).toBe(404);
    expect((await response.json()).error.message).toBe('not found');
  });

  it('forwards end-to-end headers but not hop-by-hop ones or the session header', async () => {
    await harness.chat(
      'hdr-1',
      { messages: [{ role: 'user', content: 'x' }] },
      { 'api-key': 'azure-key', 'x-custom': 'kept', 'x-mnemo-debug': '1' },
    );
    const headers = harness.provider.lastChat.headers;
    expect(headers['api-key']).toBe('azure-key');
    expect(headers['x-custom']).toBe('kept');
    expect(headers['x-session-id']).toBeUndefined();
    expect(headers['x-mnemo-debug']).toBeUndefined();
    expect(headers['accept-encoding']).toBe('identity');
  });

  it('gives Azure deployment paths memory too', async () => {
    const url = `${harness.mnemo.url}/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21`;
    const send = (content: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'api-key': 'k', 'x-session-id': 'azure-1' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] }),
      });
    await send('first');
    await send('second');
    expect(harness.provider.lastChat.path).toBe('/v1/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21');
    expect(harness.provider.lastChat.body.messages).toHaveLength(3);
  });

  it('keeps connections alive on both sides', async () => {
    const before = harness.provider.connections;
    for (let index = 0; index < 5; index++) {
      const models = await fetch(`${harness.mnemo.url}/v1/models`);
      expect(models.headers.get('connection')).not.toBe('close');
      await models.text();
      const chat = await harness.chat(undefined, { messages: [{ role: 'user', content: `hi ${index}` }] });
      expect(chat.headers.get('connection')).not.toBe('close');
      await chat.text();
    }
    expect(harness.provider.connections - before).toBeLessThanOrEqual(2);
  });

  it('answers 502 in OpenAI shape when the provider is unreachable', async () => {
    const dead = await startHarness({ upstream: { url: 'http://127.0.0.1:1/v1' } });
    try {
      const chat = await dead.chat('dead-1', { messages: [{ role: 'user', content: 'x' }] });
      expect(chat.status).toBe(502);
      expect((await chat.json()).error.code).toBe('upstream_unavailable');
      const models = await fetch(`${dead.mnemo.url}/v1/models`);
      expect(models.status).toBe(502);
      expect((await models.json()).error.code).toBe('upstream_unavailable');
      expect((await dead.admin(`/mnemo/sessions/dead-1`)).status).toBe(404);
    } finally {
      await dead.close();
    }
  });

  it('routes chat completions to another upstream by model name', async () => {
    const { FakeProvider } = await import('../support/fake-provider.js');
    const local = await new FakeProvider().start();
    const routed = await startHarness({ upstream: { routes: [{ model: 'llama*', url: local.url }] } }, harness.provider);
    try {
      await routed.chat('route-1', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hi' }] });
      await routed.chat(undefined, { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hi' }] });
      await routed.chat('route-1', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      expect(local.calls).toHaveLength(2);
      expect(harness.provider.calls).toHaveLength(1);
    } finally {
      await routed.close();
      await local.stop();
    }
  });
});
