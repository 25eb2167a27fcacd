// Where the Kubernetes binaries built by scripts/install-k8s-binaries.sh are. The script writes
// <cache>/k8s/<kubernetes version>-<hash>/stamp.json last, so a stamp means a complete build; this module reads
// stamps only and never builds (a cold build takes long, see COLD_BUILD_MINUTES).
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Measured cold build (empty cache, 2 cores) of scripts/install-k8s-binaries.sh, for error messages. */
export const COLD_BUILD_MINUTES = 19;

export interface K8sVersions {
  kubernetes: string;
  etcd: string;
  helm: string;
  coredns?: string;
  gatewayApi: string;
  /** The Go toolchain that built them. */
  go: string;
}

export interface K8sBinaries {
  /** The build's cache directory, `<cache>/k8s/<kubernetes version>-<hash>`. */
  dir: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kubeProxy: string;
  etcd: string;
  etcdctl: string;
  helm: string;
  /** Absent when the build has no CoreDNS. */
  coredns?: string;
  /** Holds `standard/` and `experimental/` (alternative sets of Gateway API CRD manifests; apply one). */
  gatewayApiCrdsDir: string;
  versions: K8sVersions;
}

export interface K8sBinariesOptions {
  /** Cache root; default `$AMBIT_CACHE` or `~/.cache/ambit` (as the script). */
  cacheDir?: string;
  /**
   * The e2e/cluster-tools directory whose go.mod/go.sum pin the build; a stamp from other pins is not used.
   * Default: this repo's (or, outside a checkout, none). `null` accepts any stamp (the newest).
   */
  toolsDir?: string | null;
}

export class K8sBinariesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'K8sBinariesError';
  }
}

interface Stamp {
  key: string;
  recipe: number;
  modulesHash: string;
  versions: K8sVersions;
  binaries: Record<string, string>;
  gatewayApiCrds: string;
  builtAt: string;
}

const REQUIRED = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'kubectl', 'etcd', 'etcdctl', 'helm'];
const INSTALL_HINT = 'run scripts/install-k8s-binaries.sh';

/** The cache root the install script uses. */
export function k8sCacheDir(): string {
  return process.env.AMBIT_CACHE || join(homedir(), '.cache', 'ambit');
}

/** This repo's e2e/cluster-tools, seen from e2e/dist/src/cluster/ (compiled) or e2e/src/cluster/; else undefined. */
export function clusterToolsDir(): string | undefined {
  return ['../../../cluster-tools', '../../cluster-tools']
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
    .find((d) => existsSync(join(d, 'kubernetes', 'go.mod')));
}

/**
 * The hash the install script computes over the pins: sha256 of every go.mod, go.sum and *.go file under the
 * tools directory in byte order of their relative paths, each preceded by `path\n`.
 */
export function clusterToolsHash(toolsDir: string): string {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && (e.name === 'go.mod' || e.name === 'go.sum' || e.name.endsWith('.go'))) {
        files.push(relative(toolsDir, p).split(sep).join('/'));
      }
    }
  };
  walk(toolsDir);
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\n`);
    h.update(readFileSync(join(toolsDir, f)));
  }
  return h.digest('hex');
}

function coldHint(): string {
  return COLD_BUILD_MINUTES > 0 ? ` (cold build ~${COLD_BUILD_MINUTES} min, then cached)` : '';
}

function readStamps(root: string): Stamp[] {
  if (!existsSync(root)) return [];
  const out: Stamp[] = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const file = join(root, e.name, 'stamp.json');
    if (!e.isDirectory() || !existsSync(file)) continue;
    try {
      const s = JSON.parse(readFileSync(file, 'utf8')) as Stamp;
      if (s.key === e.name && s.binaries && s.versions) out.push(s);
    } catch {
      // a stamp is written by rename, so an unreadable one is not ours; ignore it
    }
  }
  return out;
}

/**
 * The installed Kubernetes binaries for this repo's pins. Throws K8sBinariesError, saying how to install them,
 * when they are missing, built from other pins, or incomplete.
 */
export function k8sBinaries(options: K8sBinariesOptions = {}): K8sBinaries {
  const root = join(options.cacheDir ?? k8sCacheDir(), 'k8s');
  const toolsDir = options.toolsDir === undefined ? clusterToolsDir() : options.toolsDir;
  const stamps = readStamps(root);
  if (stamps.length === 0) {
    throw new K8sBinariesError(`Kubernetes binaries not installed (no stamp under ${root}): ${INSTALL_HINT}${coldHint()}`);
  }
  const wanted = toolsDir ? clusterToolsHash(toolsDir) : undefined;
  const matching = stamps
    .filter((s) => wanted === undefined || s.modulesHash === wanted)
    .sort((a, b) => b.recipe - a.recipe || b.builtAt.localeCompare(a.builtAt));
  const stamp = matching[0];
  if (!stamp) {
    throw new K8sBinariesError(
      `Kubernetes binaries under ${root} (${stamps.map((s) => s.key).join(', ')}) were built from other pins than ` +
        `${toolsDir}: ${INSTALL_HINT}${coldHint()}`,
    );
  }
  const dir = join(root, stamp.key);
  const path = (name: string): string | undefined => {
    const rel = stamp.binaries[name];
    if (!rel) return undefined;
    const p = join(dir, rel);
    try {
      accessSync(p, constants.X_OK);
    } catch {
      throw new K8sBinariesError(`Kubernetes binary ${p} is missing or not executable: ${INSTALL_HINT} again`);
    }
    return p;
  };
  const need = (name: string): string => {
    const p = path(name);
    if (!p) throw new K8sBinariesError(`${join(dir, 'stamp.json')} lists no ${name}: ${INSTALL_HINT} again`);
    return p;
  };
  for (const name of REQUIRED) need(name);
  const gatewayApiCrdsDir = join(dir, stamp.gatewayApiCrds);
  if (!existsSync(join(gatewayApiCrdsDir, 'standard'))) {
    throw new K8sBinariesError(`Gateway API CRDs missing in ${gatewayApiCrdsDir}: ${INSTALL_HINT} again`);
  }
  const coredns = path('coredns');
  return {
    dir,
    kubeApiserver: need('kube-apiserver'),
    kubeControllerManager: need('kube-controller-manager'),
    kubeScheduler: need('kube-scheduler'),
    kubectl: need('kubectl'),
    kubeProxy: need('kube-proxy'),
    etcd: need('etcd'),
    etcdctl: need('etcdctl'),
    helm: need('helm'),
    ...(coredns ? { coredns } : {}),
    gatewayApiCrdsDir,
    versions: { ...stamp.versions },
  };
}
