// The conflist edits of the CNI installer, as pure functions over file names and text, so every case (chained
// insert, .conf converted to .conflist, idempotence, repair, removal) is tested without a filesystem. install.ts
// does the I/O. The rules follow istio-cni's chained install: the runtime uses the lexically first *.conflist,
// *.conf or *.json in the conf dir (libcni's ConfFiles), so that file gets our plugin appended to its `plugins`;
// a single-plugin .conf is first turned into a list holding it, written as <name>.conflist (the .conf removed).
import { AmbitError } from '@ambit/api';
import { isSupportedVersion, SUPPORTED_CNI_VERSIONS } from './cni-spec.js';

export class CniInstallError extends AmbitError {
  constructor(message: string, options?: { cause?: unknown }) { super('AMB_ERR_CNI_INSTALL', message, options); }
}

/** Our plugin's `type` in the conflist, and the executable's name in the CNI bin dir. */
export const AMBIT_CNI_TYPE = 'ambit-cni';

/** Extensions a runtime reads, as libcni's ConfFiles. */
export const CNI_CONF_EXTENSIONS: readonly string[] = ['.conflist', '.conf', '.json'];

/** The file a runtime uses: the lexically first name with a CNI extension (hidden temp files never match). */
export function primaryConfigFile(names: readonly string[]): string | undefined {
  return names.filter(isConfigFile).sort()[0];
}

export function isConfigFile(name: string): boolean {
  return CNI_CONF_EXTENSIONS.some((e) => name.endsWith(e)) && !name.startsWith('.');
}

/** What the plugin needs in its netconf (see netconf.ts parseNetConf). */
export interface AmbitPluginEntry {
  type: typeof AMBIT_CNI_TYPE;
  /** The agent's enrollment socket as the plugin (on the node) sees it. */
  agentSocket: string;
  logLevel: string;
  excludeNamespaces: string[];
  timeoutSeconds?: number;
}

type Json = Record<string, unknown>;

/** One configuration file as read: its name, and the network configuration list it is (or becomes). */
interface ParsedConfig {
  list: Json & { plugins: Json[] };
  /** True when the file was a single-plugin config that has to become a list. */
  converted: boolean;
}

function parseConfig(name: string, text: string): ParsedConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniInstallError(`CNI config ${name} is not JSON (${(err as Error).message}); not touching it`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CniInstallError(`CNI config ${name} is not a JSON object; not touching it`);
  const o = raw as Json;
  if (!isSupportedVersion(o.cniVersion)) {
    throw new CniInstallError(
      `CNI config ${name}: cniVersion ${JSON.stringify(o.cniVersion)} is not one ${AMBIT_CNI_TYPE} supports (${SUPPORTED_CNI_VERSIONS.join(', ')}); not chaining into it`,
    );
  }
  if (o.plugins !== undefined) {
    if (!Array.isArray(o.plugins) || !o.plugins.every((p) => typeof p === 'object' && p !== null && !Array.isArray(p))) {
      throw new CniInstallError(`CNI config ${name}: plugins must be an array of objects; not touching it`);
    }
    if (o.plugins.length === 0) throw new CniInstallError(`CNI config ${name}: plugins is empty, there is no primary plugin to chain after`);
    return { list: o as ParsedConfig['list'], converted: false };
  }
  if (typeof o.type !== 'string' || o.type === '') throw new CniInstallError(`CNI config ${name}: neither plugins nor type is set; not a network configuration`);
  // A single-plugin config becomes a list holding it: the list keeps cniVersion and name; the plugin keeps its keys
  // (the runtime passes name and cniVersion to each plugin from the list anyway).
  const { cniVersion, name: netName, ...plugin } = o;
  return { list: { cniVersion, name: netName ?? 'k8s-pod-network', plugins: [plugin] }, converted: true };
}

function format(list: Json): string {
  return `${JSON.stringify(list, null, 2)}\n`;
}

const isOurs = (p: Json): boolean => p.type === AMBIT_CNI_TYPE;

function sameEntry(a: Json, b: Json): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

/** The file to write (and the one to remove, when a .conf became a .conflist), or nothing when already right. */
export interface ConfigEdit {
  /** File name to write `text` to. */
  write: string;
  text: string;
  /** The original file, to delete after the write (a converted .conf or .json). */
  remove?: string;
}

/**
 * How an existing ambit-cni entry is treated. `replace`: made equal to ours (on start: the newest agent's settings
 * win). `keep`: any ambit-cni entry counts as installed (repair after someone else's rewrite): during a rolling
 * upgrade two agents of different versions watch the same file, and each rewriting the other's entry would never end.
 */
export type ExistingEntryPolicy = 'replace' | 'keep';

/** Adds (or updates) our plugin at the end of the chain in file `name`; undefined when nothing needs writing. */
export function insertPlugin(name: string, text: string, entry: AmbitPluginEntry, policy: ExistingEntryPolicy): ConfigEdit | undefined {
  const { list, converted } = parseConfig(name, text);
  const ours = list.plugins.findIndex(isOurs);
  if (ours === 0) {
    throw new CniInstallError(`CNI config ${name}: ${AMBIT_CNI_TYPE} is the first plugin; it is a chained plugin and needs a primary plugin before it`);
  }
  const want = { ...entry } as Json;
  let plugins: Json[];
  if (ours === -1) {
    plugins = [...list.plugins, want];
  } else if (policy === 'keep' || sameEntry(list.plugins[ours]!, want)) {
    if (!converted) return undefined;
    plugins = list.plugins;
  } else {
    plugins = list.plugins.map((p, i) => (i === ours ? want : p));
  }
  const out = { ...list, plugins };
  if (!converted) return { write: name, text: format(out) };
  const base = name.replace(/\.(conf|json)$/, '');
  return { write: `${base}.conflist`, text: format(out), remove: name };
}

/** Removes every ambit-cni entry from file `name`; undefined when it has none (or is not a list we can read). */
export function removePlugin(name: string, text: string): ConfigEdit | undefined {
  let parsed: ParsedConfig;
  try {
    parsed = parseConfig(name, text);
  } catch {
    return undefined; // not ours to fix: we only take out what we put in
  }
  if (parsed.converted || !parsed.list.plugins.some(isOurs)) return undefined;
  return { write: name, text: format({ ...parsed.list, plugins: parsed.list.plugins.filter((p) => !isOurs(p)) }) };
}

/** Whether file `name` chains our plugin (any ambit-cni entry). */
export function hasPlugin(text: string): boolean {
  try {
    const o = JSON.parse(text) as { plugins?: unknown };
    return Array.isArray(o.plugins) && o.plugins.some((p) => typeof p === 'object' && p !== null && (p as Json).type === AMBIT_CNI_TYPE);
  } catch {
    return false;
  }
}
