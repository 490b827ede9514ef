import { createHash } from 'node:crypto';
import { memoized } from './memo.js';
import { pino, type Logger } from 'pino';
import type { Config } from './config/schema.js';

/** Header and field paths that must never reach a log line (credentials). */
const REDACT = [
  'req.headers.authorization',
  'req.headers["api-key"]',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["api-key"]',
];

/** The process's one logger: JSON lines, pretty only on a terminal unless configured. */
export function createLogger(config: Config['log']): Logger {
  const pretty = config.pretty ?? process.stdout.isTTY === true;
  return pino({
    level: config.level,
    redact: { paths: REDACT, censor: '[redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true } } : undefined,
  });
}

/** Logs name sessions and users by a short hash, never the raw id. */
export const hashId = memoized((id: string): string => createHash('sha256').update(id).digest('hex').slice(0, 12));
