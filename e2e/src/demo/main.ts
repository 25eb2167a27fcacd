// `npm run demo` (scripts/demo.mjs) runs this: the embedded demo by default, `--kubernetes` for the
// cluster-in-a-box. Exit code 0 only when every step's check passed.
import { parseArgs } from 'node:util';
import { createConsole } from './console.js';
import { runKubernetesDemo } from './kubernetes-demo.js';
import { runEmbeddedDemo } from './story.js';

const USAGE = `usage: npm run demo [-- --kubernetes] [--keep] [--rate N] [--log-level LEVEL]
  --kubernetes   the same story on the cluster-in-a-box (helm install + ambitctl)
  --keep         keep the work directory (config dir, logs, pcaps) after the demo
  --rate N       requests per second of the load steps (default 40)
  --log-level    log level of the controller, agents and waypoint (default info; embedded only)`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        kubernetes: { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        rate: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(rate > 0 && rate <= 500)) {
    process.stderr.write(`--rate ${values.rate}: must be a number of requests per second in 1..500\n`);
    return 2;
  }
  const ui = createConsole();
  const options = { keep: values.keep, ...(rate ? { rate } : {}), ...(values['log-level'] ? { logLevel: values['log-level'] } : {}) };
  if (values.kubernetes && values['log-level']) {
    process.stderr.write('--log-level: with --kubernetes the components log at the chart\'s level (set it in the chart\'s values)\n');
    return 2;
  }
  const result = values.kubernetes ? await runKubernetesDemo(ui, { ...options, handleSignals: true }) : await runEmbeddedDemo(ui, options);
  if (result.failures.length) {
    process.stdout.write(`\nthe demo FAILED:\n${result.failures.map((f) => `  - ${f}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write('\nthe demo passed: every step did what it said.\n');
  return 0;
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`ambit demo: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
