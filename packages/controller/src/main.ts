// Process entry: load settings, build the app, handle signals. Nothing else.
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createApp } from './app.js';
import { loadSettings } from './settings/settings.js';

async function main(): Promise<void> {
  let settings;
  try {
    settings = loadSettings();
  } catch (err) {
    process.stderr.write(`ambit controller: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const logger = pino({ level: settings.logLevel, base: { component: 'controller', pod: settings.podName }, redact: ['*.keyPem', 'keyPem', '*.token', 'token'] });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const app = createApp(settings, { logger, registry });
  let exiting = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    // `on`, not `once`: a second signal while draining must not fall through to the default action.
    process.on(sig, () => {
      if (exiting) return;
      exiting = true;
      const force = setTimeout(() => {
        logger.error('shutdown took longer than 20 s; exiting anyway');
        process.exit(1);
      }, 20_000);
      force.unref();
      app.stop(sig).then(() => process.exit(0), (err: Error) => {
        logger.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      });
    });
  }
  try {
    await app.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'controller failed to start');
    await app.stop('start failed').catch(() => undefined);
    process.exit(1);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`ambit controller: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
