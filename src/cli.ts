import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import { StoreConfigError } from './store/factory.js';
import { startMnemo } from './main.js';

const USAGE = `Usage: mnemo serve [--config config/mnemo.yaml] [--port 8080] [--host 0.0.0.0] [--store sqlite://./data/mnemo.db] [--upstream URL]
       mnemo check-config [--config config/mnemo.yaml]`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      store: { type: 'string' },
      upstream: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0] ?? 'serve';
  if (values.help || !['serve', 'check-config'].includes(command)) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  // Flags are the most specific override: they beat MNEMO_* variables, which beat the file.
  const env = {
    ...process.env,
    ...(values.port && { MNEMO_PORT: values.port }),
    ...(values.host && { MNEMO_HOST: values.host }),
    ...(values.store && { MNEMO_STORE: values.store }),
    ...(values.upstream && { MNEMO_UPSTREAM_URL: values.upstream }),
  };
  const config = loadConfig({ path: values.config, env });
  if (command === 'check-config') {
    console.log('config is valid');
    return 0;
  }
  const mnemo = await startMnemo({ config, configSource: { path: values.config, env } });
  process.on('SIGHUP', () => mnemo.config.reload());
  const shutdown = async (signal: string) => {
    mnemo.logger.info({ signal }, 'shutting down');
    await mnemo.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof StoreConfigError) {
      console.error(`mnemo: ${error.message}`);
      process.exit(78); // EX_CONFIG
    }
    console.error(error);
    process.exit(1);
  },
);
