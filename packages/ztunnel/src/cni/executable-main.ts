// `npm run build:cni -w @ambit/ztunnel [-- OUT]`: builds the self-contained CNI plugin executable (executable.ts),
// default dist/ambit-cni next to the package's dist. The node image runs this and sets AMBIT_CNI_PLUGIN_EXECUTABLE.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCniExecutable } from './executable.js';

const out = resolve(process.argv[2] ?? fileURLToPath(new URL('../../ambit-cni', import.meta.url)));
const built = await buildCniExecutable(out);
process.stdout.write(`built ${built.path}: ${(built.bytes / 1e6).toFixed(1)} MB (plugin script ${(built.scriptBytes / 1e3).toFixed(1)} kB)\n`);
