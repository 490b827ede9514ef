/** mnemo in its own process for the benchmark: upstream, store URL and (optionally) memory settings as JSON from argv, logs off. */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
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

// Started with an IPC channel (bench:profile), the parent brackets the measured load with
// {profile: 'start'} and {profile: 'stop', file}, so the profile holds that load and nothing of
// the start or the fill.
if (process.send) {
  const inspector = new Session();
  inspector.connect();
  process.on('message', (message: { profile: 'start' | 'stop'; file?: string }) => {
    void (async () => {
      if (message.profile === 'start') {
        await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
        await inspector.post('Profiler.enable');
        await inspector.post('Profiler.start');
      } else {
        const { profile } = await inspector.post('Profiler.stop');
        writeFileSync(message.file!, JSON.stringify(profile));
      }
      process.send!({ profile: message.profile });
    })();
  });
}
