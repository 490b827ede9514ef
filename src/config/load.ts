import { readFileSync, existsSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_CONFIG_PATH = 'config/mnemo.yaml';

type Env = Record<string, string | undefined>;

/** Reads, overlays the environment, and validates. Throws ConfigError naming the key. */
export function loadConfig(options: { path?: string; env?: Env } = {}): Config {
  const env = options.env ?? process.env;
  const path = options.path ?? env.MNEMO_CONFIG ?? DEFAULT_CONFIG_PATH;
  const explicit = options.path !== undefined || env.MNEMO_CONFIG !== undefined;
  let raw: unknown = {};
  if (existsSync(path)) {
    try {
      raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
    } catch (error) {
      throw new ConfigError(`${path}: not valid YAML: ${(error as Error).message}`);
    }
  } else if (explicit) {
    throw new ConfigError(`${path}: config file not found (set MNEMO_CONFIG to an existing file)`);
  }
  return parseConfig(applyEnv(raw, env), path);
}

export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  throw new ConfigError(`${source} is invalid:\n${lines.join('\n')}`);
}

const ENV_KEYS: Array<[string, [string, string], (value: string) => unknown]> = [
  ['MNEMO_HOST', ['server', 'host'], String],
  ['MNEMO_PORT', ['server', 'port'], toPort],
  ['MNEMO_ADMIN_TOKEN', ['server', 'admin_token'], String],
  ['MNEMO_LOG_LEVEL', ['log', 'level'], String],
  ['MNEMO_UPSTREAM_URL', ['upstream', 'url'], String],
  ['MNEMO_STORE', ['store', 'url'], String],
  ['MNEMO_OUTBOX', ['store', 'outbox'], String],
  ['MNEMO_COLD_STORE', ['store', 'cold_url'], String],
  ['MNEMO_METRICS_TOKEN', ['metrics', 'token'], String],
];

function applyEnv(raw: unknown, env: Env): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const merged = structuredClone(raw) as Record<string, unknown>;
  for (const [name, [section, key], convert] of ENV_KEYS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const current = merged[section];
    const target = current && typeof current === 'object' ? (current as Record<string, unknown>) : {};
    target[key] = convert(value);
    merged[section] = target;
  }
  return merged;
}

function toPort(value: string): unknown {
  const port = z.coerce.number().int().safeParse(value);
  return port.success ? port.data : value;
}
