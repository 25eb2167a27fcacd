// The runtime side of CNI for our kubelet: find the network configuration in the conf dir, run the plugin chain for
// ADD/CHECK/DEL as SPEC.md section 3 says (see ../cni/spec.ts for the rules), and report a failing plugin by name.
// The kubelet keeps the ADD result with the sandbox and passes it back for CHECK and DEL, as the spec's runtimes do
// with their result cache.
import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BoundedBuffer } from '../process.js';
import { signalPid } from '../netns.js';
import {
  cniEnvironment,
  CniError,
  parseNetworkConfig,
  parsePluginOutput,
  pluginOrder,
  pluginStdin,
  type CniResult,
  type NetworkConfigList,
} from '../cni/spec.js';

/** Files a runtime considers in the conf dir, as libcni's ConfFiles: sorted by name, the first one wins. */
const CONF_EXTENSIONS = ['.conflist', '.conf', '.json'];

export class CniConfigMissingError extends Error {
  constructor(dir: string) {
    super(`no CNI network configuration (*.conflist, *.conf, *.json) in ${dir}; the node's network is not ready`);
    this.name = 'CniConfigMissingError';
  }
}

/** Loads the network configuration that applies: the lexically first file in `confDir`. */
export function loadNetworkConfig(confDir: string): NetworkConfigList {
  let files: string[];
  try {
    files = readdirSync(confDir).filter((f) => CONF_EXTENSIONS.some((e) => f.endsWith(e))).sort();
  } catch {
    files = [];
  }
  const first = files[0];
  if (!first) throw new CniConfigMissingError(confDir);
  const path = join(confDir, first);
  return parseNetworkConfig(readFileSync(path, 'utf8'), path);
}

/** The attachment being operated on: one pod sandbox's interface. */
export interface CniAttachment {
  containerId: string;
  netnsPath: string;
  ifName: string;
  /** CNI_ARGS, e.g. K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID, IP. */
  args: Record<string, string>;
}

export interface CniRuntime {
  /** Runs ADD through the chain; returns the final result. On failure runs DEL for the whole list, then throws. */
  add(attachment: CniAttachment): Promise<{ result: CniResult; network: NetworkConfigList }>;
  /** Runs CHECK through the chain with the cached ADD result (skipped when the list says disableCheck). */
  check(attachment: CniAttachment, network: NetworkConfigList, cached: CniResult): Promise<void>;
  /** Runs DEL through the chain backwards; every plugin is called even if one fails; throws the first failure. */
  del(attachment: CniAttachment, network: NetworkConfigList, cached: CniResult | undefined): Promise<void>;
}

export interface CniRuntimeOptions {
  confDir: string;
  /** Searched in order for plugin executables (CNI_PATH). */
  binDirs: readonly string[];
  /** Per plugin invocation; default 30 s. */
  timeoutMs?: number;
  /** One line per plugin run, for the kubelet's log. */
  log?: (line: string) => void;
}

/** Thrown when a plugin fails; names the plugin, its position and the CNI error code. */
export class CniPluginError extends Error {
  constructor(
    readonly command: string,
    readonly plugin: string,
    readonly index: number,
    readonly code: number,
    message: string,
    readonly details: string,
  ) {
    super(`CNI ${command} failed in plugin ${index} (${plugin}): ${message}${details ? ` (${details})` : ''}`);
    this.name = 'CniPluginError';
  }
}

function findPlugin(type: string, dirs: readonly string[]): string {
  for (const d of dirs) {
    const p = join(d, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next dir
    }
  }
  throw new CniError(999, `plugin executable ${type} not found in CNI_PATH ${dirs.join(':')}`);
}

/** Runs one plugin executable; resolves with its exit code and output, killing it after `timeoutMs`. */
function execPlugin(path: string, env: Record<string, string>, stdin: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // A minimal environment, as runtimes give plugins: CNI_* plus PATH (our plugins are node scripts).
    const child = spawn(path, [], { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const out = new BoundedBuffer(1 << 20);
    const err = new BoundedBuffer(1 << 20);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => undefined); // a plugin that exits without reading stdin
    child.stdin.end(stdin);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) signalPid(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) resolve({ code: 124, stdout: '', stderr: `killed after ${timeoutMs} ms` });
      else resolve({ code, stdout: out.toString(), stderr: err.toString() });
    });
  });
}

export function createCniRuntime(options: CniRuntimeOptions): CniRuntime {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const log = options.log ?? (() => undefined);

  async function invoke(command: 'ADD' | 'DEL' | 'CHECK', network: NetworkConfigList, index: number, a: CniAttachment, prevResult: CniResult | undefined): Promise<CniResult | undefined> {
    const plugin = network.plugins[index]!;
    const started = Date.now();
    try {
      const path = findPlugin(plugin.type, options.binDirs);
      const env = cniEnvironment({ command, containerId: a.containerId, netns: a.netnsPath, ifName: a.ifName, args: a.args, path: options.binDirs });
      const r = await execPlugin(path, env, JSON.stringify(pluginStdin(network, index, prevResult)), timeoutMs);
      const result = parsePluginOutput(r.code, r.stdout, r.stderr, plugin.type);
      log(`cni ${command} ${plugin.type} container=${a.containerId} ok in ${Date.now() - started} ms`);
      return result;
    } catch (err) {
      const e = err instanceof CniError ? err : new CniError(999, (err as Error).message);
      log(`cni ${command} ${plugin.type} container=${a.containerId} failed in ${Date.now() - started} ms: ${e.message}`);
      throw new CniPluginError(command, plugin.type, index, e.code, e.message, e.details);
    }
  }

  async function del(a: CniAttachment, network: NetworkConfigList, cached: CniResult | undefined): Promise<void> {
    let first: unknown;
    for (const i of pluginOrder(network, 'DEL')) {
      try {
        await invoke('DEL', network, i, a, cached);
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  return {
    async add(a) {
      const network = loadNetworkConfig(options.confDir);
      let prev: CniResult | undefined;
      try {
        for (const i of pluginOrder(network, 'ADD')) {
          const r = await invoke('ADD', network, i, a, prev);
          // A chained plugin that prints nothing leaves the previous result standing.
          if (r) prev = r;
        }
      } catch (err) {
        // SPEC.md: after a failed ADD the runtime should DEL the whole list, even plugins never ADDed, so nothing
        // the earlier plugins set up (veth, address) leaks.
        await del(a, network, prev).catch(() => undefined);
        throw err;
      }
      if (!prev) throw new CniPluginError('ADD', network.plugins[0]!.type, 0, 999, 'the chain produced no result', '');
      return { result: prev, network };
    },
    async check(a, network, cached) {
      if (network.disableCheck) return;
      for (const i of pluginOrder(network, 'CHECK')) await invoke('CHECK', network, i, a, cached);
    },
    del,
  };
}
