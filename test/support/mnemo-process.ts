import { spawn, type ChildProcess } from 'node:child_process';

export interface MnemoProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/** mnemo as operators run it: the CLI in its own process, started with a config file. */
export async function spawnMnemo(config: string, port: number, env: Record<string, string> = {}): Promise<MnemoProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', config, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // An outbox of its own per process (in memory unless the test names a file).
    env: { ...process.env, MNEMO_LOG_LEVEL: 'info', MNEMO_OUTBOX: ':memory:', ...env },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (data: Buffer) => {
      output += data.toString();
      if (output.includes('mnemo listening')) resolve();
    });
    child.stderr!.on('data', (data: Buffer) => (output += data.toString()));
    void exited.then((code) => reject(new Error(`mnemo exited with ${code}: ${output}`)));
  });
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
