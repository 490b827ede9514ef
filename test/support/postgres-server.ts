import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server.js';

export interface PostgresProcess {
  url: string;
  stop(): Promise<void>;
  /** SIGKILL, as a crash would; `restart` brings it back on the same data (WAL recovery). */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * A real PostgreSQL (Debian's package) in a temp directory on a loopback port,
 * trust auth, fsync off, stopped by the test. initdb refuses to run as root,
 * so under root the cluster belongs to the `postgres` user the package creates.
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<PostgresProcess> {
  const bin = findBinDir();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mnemo-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? lookupUser('postgres') : undefined;
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chmodSync(dir, 0o700);
  }
  // Spawned with the owner's uid/gid directly (no runuser wrapper) so signals reach postgres itself.
  const as = owner ? { uid: owner.uid, gid: owner.gid, cwd: dir } : {};
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'mnemo', '--auth=trust', '--no-sync', '-E', 'UTF8'], {
    encoding: 'utf8',
    ...as,
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.error?.message ?? ''}${init.stderr}`);

  // durable: a commit is acknowledged only once its WAL is written, so killing the server loses
  // nothing acknowledged (fsync stays off: the OS, not the machine, survives a SIGKILL).
  const commitMode = options.durable ? 'synchronous_commit=on' : 'synchronous_commit=off';
  const launch = async (): Promise<ChildProcess> => {
    const child: ChildProcess = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        commitMode,
        '-c',
        'full_page_writes=off',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], ...as },
    );
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready to accept connections')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (error) => reject(new Error(`cannot start postgres: ${error.message}`)));
      child.once('exit', (code) => reject(new Error(`postgres exited with ${code}: ${output}`)));
    });
    return child;
  };
  let child = await launch();
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    }
  };
  return {
    url: `postgres://mnemo@127.0.0.1:${port}/postgres`,
    // SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, no checkpoint wait.
    stop: async () => {
      await stopWith('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
    // The whole server, as a crash would take it: the postmaster and its backends (left alive,
    // they would hold the shared memory a restart needs).
    kill: async () => {
      if (child.pid !== undefined) spawnSync('pkill', ['-KILL', '-P', String(child.pid)]);
      await stopWith('SIGKILL');
    },
    restart: async () => {
      child = await launch();
    },
  };
}

/** initdb and postgres are not on PATH in Debian's package: they live in /usr/lib/postgresql/<major>/bin. */
function findBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const major of majors) {
    const bin = join(root, major, 'bin');
    if (existsSync(join(bin, 'initdb'))) return bin;
  }
  throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
}

function lookupUser(name: string): { uid: number; gid: number } {
  const result = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const groups = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`running as root needs the '${name}' user that Debian's postgresql package creates`);
  return { uid: Number(result.stdout.trim()), gid: Number(groups.stdout.trim()) };
}
