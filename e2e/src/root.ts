// e2e tests need root (netns, veths, tcpdump, iptables). They must fail, not skip, when they cannot run: a CI
// that goes green because nothing ran is worse than a red one.
import { spawnSync } from 'node:child_process';

export class NotRootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotRootError';
  }
}

/** Throws NotRootError unless the process runs as uid 0. Call it first in every e2e test file's `before`. */
export function requireRoot(what = 'e2e tests'): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid !== 0) {
    throw new NotRootError(
      `${what} need root (uid 0) to create network namespaces, veths and captures; running as uid ${uid}. ` +
        'Run them as root (e.g. `sudo node scripts/run-tests.mjs e2e`); they are never skipped.',
    );
  }
}

/** Throws unless every named tool is on PATH; points at the script that installs them. */
export function requireTools(tools: readonly string[] = ['ip', 'nsenter', 'tcpdump']): void {
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v "$1" >/dev/null`, 'sh', t]).status !== 0);
  if (missing.length > 0) {
    throw new Error(`missing tools for e2e tests: ${missing.join(', ')}; run scripts/install-system-deps.sh as root`);
  }
}
