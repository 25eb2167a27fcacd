// Process entry: load config, check privileges, build the app, handle signals. Nothing else.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { assertPrivileges } from '@ambit/netns';
import { loadConfig } from './config/load.js';
import { createApp } from './app.js';

const VERSION = '0.1.0';

async function main(): Promise<void> {
  const logger = pino({ base: { component: 'ztunnel' }, redact: ['*.keyPem', 'keyPem', '*.token'] });
  let config;
  try {
    config = loadConfig();
    assertPrivileges();
  } catch (err) {
    process.stderr.write(`ambit ztunnel: ${(err as Error).message}\n`);
    process.exit(1);
  }
  logger.level = config.logLevel;
  const app = await createApp(config, { logger, registry: new Registry(), version: VERSION, exit: (code) => process.exit(code) });
  // `on`, not `once`: a second signal during the drain (a process-group kill, an impatient operator) must not
  // fall through to Node's default action and cut the connections the drain is keeping alive.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => { void app.shutdown(sig).then(() => process.exit(0)); });
  }
  await app.start();
}

main().catch((err: Error) => {
  process.stderr.write(`ambit ztunnel: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
