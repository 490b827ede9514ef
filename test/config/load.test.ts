import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'mnemo-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('loadConfig', () => {
  it('loads the shipped config/mnemo.yaml with its documented defaults', () => {
    const config = loadConfig({ path: 'config/mnemo.yaml', env: {} });
    expect(config.server.port).toBe(8080);
    expect(config.store.url).toBe('sqlite://./data/mnemo.db');
    expect(config.upstream.url).toBe('https://api.openai.com/v1');
    expect(config.session.header).toBe('x-session-id');
  });

  it('lets MNEMO_* variables override the file', () => {
    const config = loadConfig({
      path: file('a.yaml', 'server:\n  port: 9000\n'),
      env: {
        MNEMO_PORT: '9100',
        MNEMO_HOST: '127.0.0.1',
        MNEMO_STORE: 'memory://',
        MNEMO_UPSTREAM_URL: 'http://localhost:11434/v1',
        MNEMO_LOG_LEVEL: 'warn',
      },
    });
    expect(config.server).toMatchObject({ port: 9100, host: '127.0.0.1' });
    expect(config.store.url).toBe('memory://');
    expect(config.upstream.url).toBe('http://localhost:11434/v1');
    expect(config.log.level).toBe('warn');
  });

  it('names the offending key and why', () => {
    expect(() => loadConfig({ path: file('b.yaml', 'server:\n  port: "eighty"\n'), env: {} })).toThrow(/server\.port: .*number/);
    expect(() => loadConfig({ path: file('c.yaml', 'upstream:\n  url: not a url\n'), env: {} })).toThrow(/upstream\.url/);
    expect(() => loadConfig({ path: file('d.yaml', 'sever:\n  port: 1\n'), env: {} })).toThrow(/Unrecognized key.*sever/);
    expect(() => loadConfig({ path: 'config/mnemo.yaml', env: { MNEMO_PORT: '99999' } })).toThrow(/server\.port/);
  });

  it('keeps tombstones longer than a turn can last (twice the upstream timeout)', () => {
    const tombstones = (ttl: number) => file(`tomb-${ttl}.yaml`, `upstream:\n  timeout_ms: 600000\nsession:\n  tombstone_ttl_ms: ${ttl}\n`);
    expect(() => loadConfig({ path: tombstones(1_200_000), env: {} })).toThrow(/session\.tombstone_ttl_ms: .*twice upstream\.timeout_ms/);
    expect(loadConfig({ path: tombstones(1_200_001), env: {} }).session.tombstone_ttl_ms).toBe(1_200_001);
  });

  it('reads sizes once, as bytes: a body limit must be positive, the chunk cache may be 0 (off)', () => {
    const shipped = loadConfig({ path: 'config/mnemo.yaml', env: {} });
    expect(shipped.server.body_limit).toBe(10 * 1024 * 1024);
    expect(shipped.store.chunk_cache).toBe(64 * 1024 * 1024);
    expect(loadConfig({ path: file('cache-off.yaml', 'store:\n  chunk_cache: 0\n'), env: {} }).store.chunk_cache).toBe(0);
    expect(loadConfig({ path: file('cache-kb.yaml', 'store:\n  chunk_cache: 512kb\n'), env: {} }).store.chunk_cache).toBe(512 * 1024);
    expect(() => loadConfig({ path: file('body-0.yaml', 'server:\n  body_limit: 0\n'), env: {} })).toThrow(/server\.body_limit/);
    expect(() => loadConfig({ path: file('cache-bad.yaml', 'store:\n  chunk_cache: lots\n'), env: {} })).toThrow(/store\.chunk_cache/);
  });

  it('configures a cold tier from the file or MNEMO_COLD_STORE, and refuses one that is the hot store', () => {
    const config = loadConfig({
      path: file('tier.yaml', 'store:\n  url: redis://127.0.0.1:6379\n  hot_ttl_ms: 900000\n'),
      env: { MNEMO_COLD_STORE: 'postgres://mnemo@db/mnemo' },
    });
    expect(config.store).toMatchObject({ cold_url: 'postgres://mnemo@db/mnemo', hot_ttl_ms: 900_000, tier_interval_ms: 60_000 });
    expect(() => loadConfig({ path: 'config/mnemo.yaml', env: { MNEMO_COLD_STORE: 'sqlite://./data/mnemo.db' } })).toThrow(
      /store\.cold_url: cold_url must name a different store/,
    );
    expect(() => loadConfig({ path: file('ttl.yaml', 'store:\n  hot_ttl_ms: 10\n'), env: {} })).toThrow(/store\.hot_ttl_ms/);
  });

  it('reads session.retention_ms, and still accepts its former name idle_ttl_ms', () => {
    expect(loadConfig({ path: file('r1.yaml', 'session:\n  retention_ms: 5000\n'), env: {} }).session.retention_ms).toBe(5_000);
    expect(loadConfig({ path: file('r2.yaml', 'session:\n  idle_ttl_ms: 7000\n'), env: {} }).session.retention_ms).toBe(7_000);
  });

  it('rejects broken YAML and a missing explicit file', () => {
    expect(() => loadConfig({ path: file('e.yaml', 'server: [unclosed\n'), env: {} })).toThrow(/not valid YAML/);
    expect(() => loadConfig({ path: join(dir, 'missing.yaml'), env: {} })).toThrow(/config file not found/);
  });
});
