// Entry of the self-contained CNI plugin executable (src/cni/executable.ts bundles it with esbuild into a Node
// single-executable application). A SEA's main script is CommonJS, so no top-level await; otherwise the same as
// bin/ambit-cni: the CNI protocol's inputs are the environment and stdin.
const { main } = require('../dist/src/cni/plugin-main.js');

main({ env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`ambit-cni: ${(err && err.stack) || err}\n`); process.exitCode = 1; },
);
