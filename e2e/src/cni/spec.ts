// The parts of the CNI specification (containernetworking/cni SPEC.md, 0.4.0 to 1.1.0) that both sides of the
// protocol in this package need: our primary plugin (ambit-bridge) and our kubelet's runtime side (kubelet/cni-
// runtime.ts). Pure: no I/O, so the chaining rules are unit-tested without spawning anything.
//
// The rules implemented here, from SPEC.md section 1 ("Network configuration") and section 3 ("Execution of network
// configurations"):
// - a conflist is `{cniVersion, name, disableCheck?, plugins: [...]}`; the runtime derives each plugin's stdin by
//   copying the plugin object and inserting the list's `name` and `cniVersion` (and `prevResult` where due);
// - ADD runs the plugins in order, each getting the previous plugin's result as `prevResult`; the last result is
//   the attachment's result and the runtime caches it;
// - DEL runs them in reverse order, each getting the cached ADD result as `prevResult`; CHECK runs them in order
//   with the same cached result;
// - a failing plugin prints `{cniVersion, code, msg, details}` on stdout and exits non-zero.

import { CNI_STANDARD_ERRORS, CniError, compareVersions } from '@ambit/api/cni';

export { CniError, compareVersions, parseCniArgs } from '@ambit/api/cni';

export const SUPPORTED_CNI_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_CNI_VERSIONS)[number];
export const LATEST_CNI_VERSION: CniVersion = '1.1.0';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** The standard codes plus ambit-bridge's own (100 and up). */
export const CNI_ERROR = Object.freeze({
  ...CNI_STANDARD_ERRORS,
  /** ambit-bridge: no free address left in the node's range. */
  rangeFull: 100,
  /** ambit-bridge: an `ip` command failed while wiring the pod. */
  linkSetupFailed: 101,
  /** ambit-bridge: CHECK found the wiring different from what ADD did. */
  checkFailed: 102,
} as const);

export interface CniErrorResult {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export interface CniInterface {
  name: string;
  mac?: string;
  /** Set for interfaces inside the container (the netns path); absent for host-side interfaces. */
  sandbox?: string;
}

export interface CniIpConfig {
  /** CIDR notation, e.g. 10.0.1.5/24. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
  /** 0.4.0 only ("4" | "6"); removed in 1.0.0. */
  version?: string;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

/** A plugin's success result. Unknown keys are kept: a chained plugin must hand on what it does not understand. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: Record<string, unknown>;
  [key: string]: unknown;
}

/** One plugin object of a conflist, as written in the file (without the list-level keys). */
export type PluginConfig = Record<string, unknown> & { type: string };

export interface NetworkConfigList {
  cniVersion: CniVersion;
  name: string;
  disableCheck: boolean;
  plugins: PluginConfig[];
}

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_CNI_VERSIONS as readonly string[]).includes(v);
}

function badConfig(source: string, message: string): never {
  throw new CniError(CNI_ERROR.invalidNetworkConfig, `invalid network configuration ${source}: ${message}`);
}

/**
 * Parses a network configuration file. A `.conflist` is taken as is; a single-plugin `.conf` (an object with `type`
 * and no `plugins`) becomes a one-plugin list, as libcni's ConfListFromConf does.
 */
export function parseNetworkConfig(text: string, source = '(stdin)'): NetworkConfigList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_ERROR.decodingFailure, `network configuration ${source} is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) badConfig(source, 'not a JSON object');
  const o = raw as Record<string, unknown>;
  if (!isSupportedVersion(o.cniVersion)) {
    throw new CniError(
      CNI_ERROR.incompatibleVersion,
      `network configuration ${source} has cniVersion ${JSON.stringify(o.cniVersion)}; supported: ${SUPPORTED_CNI_VERSIONS.join(', ')}`,
    );
  }
  if (typeof o.name !== 'string' || o.name === '') badConfig(source, 'name must be a non-empty string');
  let plugins: unknown[];
  if (o.plugins === undefined && typeof o.type === 'string') {
    const { cniVersion: _v, name: _n, ...plugin } = o;
    plugins = [plugin];
  } else {
    if (!Array.isArray(o.plugins) || o.plugins.length === 0) badConfig(source, 'plugins must be a non-empty array');
    plugins = o.plugins;
  }
  plugins.forEach((p, i) => {
    if (typeof p !== 'object' || p === null || typeof (p as { type?: unknown }).type !== 'string' || (p as { type: string }).type === '') {
      badConfig(source, `plugins[${i}] needs a non-empty string "type"`);
    }
    // The type names an executable in CNI_PATH: a path in it would let a config run anything anywhere.
    if ((p as { type: string }).type.includes('/')) badConfig(source, `plugins[${i}].type must be a plain executable name`);
  });
  return { cniVersion: o.cniVersion, name: o.name, disableCheck: o.disableCheck === true, plugins: plugins as PluginConfig[] };
}

/** The stdin of plugin `index` of a list (SPEC.md "Deriving execution configuration from plugin configuration"). */
export function pluginStdin(list: NetworkConfigList, index: number, prevResult?: CniResult): Record<string, unknown> {
  const plugin = list.plugins[index];
  if (!plugin) throw new RangeError(`network ${list.name} has no plugin ${index}`);
  const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  else delete conf.prevResult;
  return conf;
}

/** Plugin indices in the order a command visits them: ADD and CHECK forwards, DEL backwards. */
export function pluginOrder(list: NetworkConfigList, command: 'ADD' | 'DEL' | 'CHECK'): number[] {
  const order = list.plugins.map((_, i) => i);
  return command === 'DEL' ? order.reverse() : order;
}

export interface CniInvocationEnv {
  command: CniCommand;
  containerId: string;
  /** Path of the network namespace (e.g. /var/run/netns/amb-t1-n1p2); may be empty for DEL. */
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs, e.g. K8S_POD_NAME. `IgnoreUnknown=1` is always sent first. */
  args: Record<string, string>;
  /** Directories searched for plugin executables (CNI_PATH). */
  path: readonly string[];
}

/** The CNI_* environment for one plugin invocation. */
export function cniEnvironment(inv: CniInvocationEnv): Record<string, string> {
  const args = [['IgnoreUnknown', '1'], ...Object.entries(inv.args)].map(([k, v]) => `${k}=${v}`).join(';');
  return {
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_ARGS: args,
    CNI_PATH: inv.path.join(':'),
  };
}

/**
 * Reads a plugin's stdout after it exited: a result on success, a CniError on failure. A plugin that printed no
 * error object still fails, with its stderr as the message, so the runtime always has something to report.
 */
export function parsePluginOutput(exitCode: number | null, stdout: string, stderr: string, plugin: string): CniResult | undefined {
  const text = stdout.trim();
  if (exitCode === 0) {
    if (text === '') return undefined; // DEL and CHECK print nothing
    try {
      const r = JSON.parse(text) as CniResult;
      if (typeof r !== 'object' || r === null) throw new Error('not an object');
      return r;
    } catch (err) {
      throw new CniError(CNI_ERROR.decodingFailure, `plugin ${plugin} succeeded but printed a result that is not a JSON object: ${(err as Error).message}`, text.slice(0, 500));
    }
  }
  let parsed: Partial<CniErrorResult> | undefined;
  try {
    parsed = JSON.parse(text) as Partial<CniErrorResult>;
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed.msg === 'string') {
    throw new CniError(typeof parsed.code === 'number' ? parsed.code : 999, `plugin ${plugin} failed: ${parsed.msg}`, parsed.details ?? '');
  }
  const why = stderr.trim() || text || `exit status ${exitCode}`;
  throw new CniError(999, `plugin ${plugin} failed without a CNI error object: ${why.slice(-500)}`);
}

/** Pod IPs (without prefix length) of a result, in order. */
export function resultIps(result: CniResult | undefined): string[] {
  return (result?.ips ?? []).map((ip) => ip.address.split('/')[0]!).filter((ip) => ip.length > 0);
}

/** Returns `result` in version `to`: 0.4.0 IP configs carry `version`, 1.x ones do not. Everything else passes. */
export function convertResult(result: CniResult, to: CniVersion): CniResult {
  const legacy = compareVersions(to, '1.0.0') < 0;
  const ips = result.ips?.map((ip) => {
    const out = { ...ip };
    if (legacy) out.version ??= ip.address.includes(':') ? '6' : '4';
    else delete out.version;
    return out;
  });
  return { ...result, cniVersion: to, ...(ips ? { ips } : {}) };
}
