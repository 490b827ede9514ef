#!/usr/bin/env node
// Runs the compiled CLI; `npm start` and `npm run build` produce dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(cli)) {
  console.error('mnemo: dist/ is missing; run `npm run build` (or `npm start`, which builds) first.');
  process.exit(1);
}
await import(cli);
