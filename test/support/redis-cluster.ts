import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

export interface RedisCluster {
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

/** A real 3-master Redis Cluster on loopback: redis-server --cluster-enabled ×3, joined by redis-cli --cluster create. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-cluster-'));
  const ports = await Promise.all([freePort(), freePort(), freePort()]);
  const children: ChildProcess[] = await Promise.all(
    ports.map(
      (port) =>
        new Promise<ChildProcess>((resolve, reject) => {
          const child = spawn(
            'redis-server',
            [
              '--port',
              String(port),
              '--bind',
              '127.0.0.1',
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              `nodes-${port}.conf`,
              '--save',
              '',
              '--appendonly',
              'no',
              '--dir',
              dir,
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          let output = '';
          child.stdout!.on('data', (data: Buffer) => {
            output += data.toString();
            if (output.includes('Ready to accept connections')) resolve(child);
          });
          child.once('exit', (code) => reject(new Error(`redis-server (cluster node) exited with ${code}: ${output}`)));
        }),
    ),
  );
  await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
  for (let attempt = 0; attempt < 100; attempt++) {
    const states = await Promise.all(ports.map(async (port) => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout));
    if (states.every((state) => state.includes('cluster_state:ok'))) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url: `redis+cluster://${ports.map((port) => `127.0.0.1:${port}`).join(',')}`,
    ports,
    stop: async () => {
      await Promise.all(
        children.map((child) => {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          return exited;
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
