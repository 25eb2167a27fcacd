#!/usr/bin/env node
// `npm test` at the root: build every workspace (turbo, cached), then run every test of every package, e2e included,
// in one report with one closing line.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' };
const build = spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], { cwd: root, stdio: 'inherit', env });
if (build.status !== 0) {
  console.log('\nbuild failed');
  console.log('tests: 0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
const workspaces = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces;
const r = spawnSync(process.execPath, [join(root, 'scripts/run-tests.mjs'), ...workspaces.map((w) => join(root, w)), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env });
process.exit(r.status ?? 1);
