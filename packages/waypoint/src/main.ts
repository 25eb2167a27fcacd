// Process entry: load config, build the app, handle signals. Nothing else.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadConfig, processEnvironment } from './config/load.js';
import { createWaypointApp } from './app.js';

const VERSION = '0.1.0';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    process.stderr.write(`ambit waypoint: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const logger = pino({ base: { component: 'waypoint' }, level: config.logLevel, redact: ['*.keyPem', 'keyPem', '*.token', 'authorization', '*.authorization'] });
  const app = await createWaypointApp(config, { logger, registry: new Registry(), version: VERSION, exit: (code) => process.exit(code), environment: processEnvironment() });
  // `on`, not `once`: a second signal during the drain must not cut the requests the drain is waiting for.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => { void app.shutdown(sig).then(() => process.exit(0)); });
  }
  await app.start();
}

main().catch((err: Error) => {
  process.stderr.write(`ambit waypoint: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
