#!/usr/bin/env node
// `npm run demo`: the README's first command. Checks it runs as root on Linux, builds what the demo runs (turbo,
// cached: seconds when nothing changed), then runs the demo (e2e/src/demo/main.ts). Ctrl-C stops the demo, which
// removes every namespace and process it created; the exit code is the demo's (non-zero if a step's check failed).
//   npm run demo                    embedded: no Kubernetes binaries needed
//   npm run demo -- --kubernetes    the same story on the cluster-in-a-box
//   npm run demo -- --keep          keep logs, config dir and captures
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

if (process.platform !== 'linux') {
  console.error('ambit demo: Linux only (nodes and pods are network namespaces).');
  process.exit(1);
}
if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.error('ambit demo: run as root (it creates network namespaces and iptables rules inside them; nothing changes in the machine\'s own namespace):\n  sudo npm run demo');
  process.exit(1);
}
for (const tool of ['ip', 'iptables', 'iptables-restore', 'nsenter', 'tcpdump']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`ambit demo: ${tool} is missing; install the system packages first: bash scripts/install-system-deps.sh`);
    process.exit(1);
  }
}

const main = join(root, 'e2e', 'dist', 'src', 'demo', 'main.js');
if (!args.includes('--no-build')) {
  console.log('building (npx turbo run build; cached, fast when nothing changed) ...');
  const build = spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) {
    console.error('ambit demo: the build failed (see above)');
    process.exit(build.status ?? 1);
  }
} else if (!existsSync(main)) {
  console.error(`ambit demo: ${main} is missing; run without --no-build`);
  process.exit(1);
}

const child = spawn(process.execPath, ['--enable-source-maps', main, ...args.filter((a) => a !== '--no-build')], { cwd: root, stdio: 'inherit' });
// The terminal sends Ctrl-C to the whole foreground group, the demo included; it cleans up on SIGINT itself.
// Forward SIGTERM/SIGHUP (not sent to the group) so a killed `npm run demo` cleans up too.
for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
process.on('SIGINT', () => { /* the demo got it too; wait for its cleanup and exit code */ });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 2 : 1)));
