import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Portkey's open-source AI gateway (no memory), the peer `npm run bench` measures mnemo against.
 * Installed on demand into bench/.deps (git-ignored), so `npm ci` stays lean and nothing at run
 * time needs it. Requests name the upstream in headers: x-portkey-provider and x-portkey-custom-host.
 */
const PACKAGE = '@portkey-ai/gateway@1.15.2';
const DEPS = fileURLToPath(new URL('./.deps/', import.meta.url));
const SCRIPT = `${DEPS}node_modules/@portkey-ai/gateway/build/start-server.js`;

/** The gateway's start script, installing the package first when it is missing. */
export function portkeyScript(): string {
  if (!existsSync(SCRIPT)) {
    console.log(`installing ${PACKAGE} into bench/.deps (once)…`);
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', DEPS, PACKAGE], { stdio: 'inherit' });
  }
  return SCRIPT;
}

/** Headers that route a request through the gateway to `providerUrl` as an OpenAI-compatible upstream. */
export function portkeyHeaders(providerUrl: string): Record<string, string> {
  return { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${providerUrl}/v1` };
}
