#!/usr/bin/env node
// Builds native/netns.c into build/Release/netns.node with node-gyp, from the Node headers installed next to the
// running node binary (e.g. /usr/include/node for /usr/bin/node). node-gyp's default is to download headers from
// nodejs.org, which is not reachable here, and a fresh machine's ~/.npmrc may not name a nodedir, so we pass it.
// Usage: build-addon.mjs [--force]   (without --force, does nothing when the addon already exists)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(pkgRoot, 'build', 'Release', 'netns.node');
if (!process.argv.includes('--force') && existsSync(addon)) process.exit(0);

const candidates = [resolve(dirname(process.execPath), '..'), '/usr', '/usr/local'];
const nodedir = candidates.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
if (!nodedir) {
  console.error(`netns addon: no Node headers (include/node/node_api.h) under ${candidates.join(', ')}; ` +
    'install the nodejs headers (Debian: libnode-dev) or set npm_config_nodedir');
  process.exit(1);
}
const gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${process.env.npm_config_nodedir || nodedir}`],
  { cwd: pkgRoot, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  console.error(`netns addon: node-gyp rebuild failed (exit ${r.status ?? r.signal}) in ${pkgRoot}`);
  process.exit(1);
}
if (!existsSync(addon)) { console.error(`netns addon: build finished but ${addon} is missing`); process.exit(1); }
