/** mnemo in its own process for the benchmark: upstream, store URL and (optionally) memory settings as JSON from argv, logs off. */
import { parseConfig } from '../src/config/load.js';
import { startMnemo } from '../src/main.js';

const [upstream, store, memory] = process.argv.slice(2);
const mnemo = await startMnemo({
  config: parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    upstream: { url: upstream, inject_stream_usage: true },
    store: { url: store },
    tenancy: { mode: 'none' },
    ...(memory && { memory: JSON.parse(memory) }),
  }),
});
console.log(JSON.stringify({ port: Number(new URL(mnemo.url).port) }));
process.on('SIGTERM', () => void mnemo.close(2_000).then(() => process.exit(0)));
