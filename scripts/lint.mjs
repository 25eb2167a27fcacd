#!/usr/bin/env node
// House rules tsc cannot check. Run from a package directory.
// - no relative import that leaves the package (use the other package's public name instead);
// - no deep import into another package (`@ambit/x/dist/...`): each package's index.ts is its surface;
// - no `.only(` left in tests; no environment reads outside config/ or settings/ in deployables.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve, relative, dirname } from 'node:path';

const pkg = resolve('.');
const problems = [];
const walk = (d) => {
  for (const e of readdirSync(d)) {
    const p = join(d, e);
    if (e === 'node_modules' || e === 'dist' || e === 'build') continue;
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) check(p);
  }
};
const deployable = JSON.parse(readFileSync('package.json', 'utf8')).ambit?.deployable === true;
function check(file) {
  const text = readFileSync(file, 'utf8');
  const rel = relative(pkg, file);
  for (const m of text.matchAll(/from\s+'([^']+)'/g)) {
    const spec = m[1];
    if (spec.startsWith('.')) {
      const target = resolve(dirname(file), spec);
      if (relative(pkg, target).startsWith('..')) problems.push(`${rel}: relative import leaves the package: ${spec}`);
    }
    if (/^@ambit\/[^/]+\/(dist|src)\//.test(spec)) problems.push(`${rel}: deep import ${spec}; import the package name`);
  }
  if (/\b(test|it|describe)\.only\(/.test(text)) problems.push(`${rel}: .only( left in a test`);
  // One module reads the environment (src/config/ or src/settings/); the rest take a frozen config.
  const envReader = /process\.env|import\s*\{[^}]*\benv\b[^}]*\}\s*from\s*['"](node:)?process['"]/;
  if (deployable && rel.startsWith('src/') && !/^src\/(config|settings)\//.test(rel) && !rel.endsWith('.test.ts') && envReader.test(text)) {
    problems.push(`${rel}: environment read outside src/config/ or src/settings/`);
  }
}
for (const d of ['src', 'test', 'bench']) { try { walk(join(pkg, d)); } catch { /* absent */ } }
if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
console.log(`lint: ${relative(process.cwd(), pkg) || '.'} ok`);
