import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { ConfigError, DEFAULT_CLUSTER_ID } from '@ambit/api';
import { canonicalizeIp } from '../state/ip.js';
import type { ResourceKind } from '../state/types.js';
import type { ApplyResult, Rejection, Snapshot, StateUpdater } from '../state/updater.js';

/**
 * ztunnel's local config mode (spec §3.6, `LOCAL_XDS_PATH`): one YAML file with top-level `workloads`, `services`
 * and `policies`, in ztunnel's camelCase model (`workloadIps`, `protocol: HBONE|TCP`, `vips: ["net/ip"]`,
 * `ports: {80: 8080}`, `rules` as groups -> clauses -> matches). The file is a full snapshot: it goes through
 * `updater.replaceAll`, so an entry that disappears from the file disappears from the state, while an entry that
 * is broken keeps its last good version.
 *
 * Accepted beyond ztunnel's exact model, to be forgiving with hand-written files: enum values in any case or in
 * proto spelling (`GLOBAL`, `WORKLOAD_SELECTOR`, `NONE`), string matches as `{exact: x}`, `{Exact: x}`, `!Exact x`,
 * `!Presence`, or an AuthorizationPolicy-style string (`"*"` presence, `"x*"` prefix, `"*x"` suffix, else exact),
 * `loadBalancing` for `loadBalancer`, service `vips`/`ports` in list-of-objects form, and a missing workload `uid`
 * (made up as `<clusterId>//Pod/<ns>/<name>`, istiod's form). Unknown fields are refused, as ztunnel does.
 */

export interface LocalConfigLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A rejected entry with its place in the file. */
export interface LocalConfigRejection extends Rejection {
  readonly line?: number;
  /** `<file>:<line>: <message>` */
  readonly text: string;
}

export interface LocalConfigLoadResult {
  readonly file: string;
  readonly apply: ApplyResult;
  readonly rejected: readonly LocalConfigRejection[];
  readonly counts: { readonly workloads: number; readonly services: number; readonly policies: number };
}

export interface ParsedLocalConfig {
  readonly snapshot: Snapshot;
  /** `kind:name` -> 1-based line of the entry. */
  readonly lines: ReadonlyMap<string, number>;
}

const TOP_LEVEL = ['workloads', 'services', 'policies'] as const;

const WORKLOAD_FIELDS = new Set([
  'uid', 'name', 'namespace', 'serviceAccount', 'trustDomain', 'workloadIps', 'protocol', 'node', 'network',
  'waypoint', 'networkGateway', 'applicationTunnel', 'status', 'services', 'authorizationPolicies', 'canonicalName',
  'canonicalRevision', 'workloadName', 'workloadType', 'locality', 'clusterId', 'hostname', 'nativeTunnel',
  'networkMode', 'capacity',
]);
const SERVICE_FIELDS = new Set([
  'name', 'namespace', 'hostname', 'vips', 'ports', 'subjectAltNames', 'waypoint', 'loadBalancer', 'loadBalancing',
  'ipFamilies', 'canonical', 'endpoints',
]);
const POLICY_FIELDS = new Set(['name', 'namespace', 'scope', 'action', 'rules', 'dryRun']);
/** Names people reach for, with the one ztunnel's model uses. */
const HINTS: Record<string, string> = {
  addresses: 'workloadIps', workloadIp: 'workloadIps', ips: 'workloadIps', tunnelProtocol: 'protocol',
  serviceAccountName: 'serviceAccount', ns: 'namespace', groups: 'rules', dry_run: 'dryRun', policies: 'authorizationPolicies',
};

const TAGS = [
  ...(['Exact', 'Prefix', 'Suffix'] as const).map((n) => ({ tag: `!${n}`, resolve: (s: string) => ({ [n.toLowerCase()]: s }) })),
  { tag: '!Presence', resolve: () => ({ presence: true }) },
  { tag: '!Presence', collection: 'seq' as const, resolve: () => ({ presence: true }) },
];

/**
 * Parses the text of a local config file into a snapshot for `updater.replaceAll`. Throws `ConfigError` (naming
 * the file and line) when the YAML cannot be parsed or its top level is wrong; problems inside one entry only
 * reject that entry (they come back in `snapshot.rejected`).
 */
export function parseLocalConfig(text: string, file = '<inline>'): ParsedLocalConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, customTags: TAGS, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.pos ? lineCounter.linePos(e.pos[0]) : undefined;
    throw new ConfigError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`, { cause: e });
  }
  const lineOf = (n: unknown): number | undefined => {
    const range = (n as YamlNode | undefined)?.range;
    return range ? lineCounter.linePos(range[0]).line : undefined;
  };
  const root = doc.contents;
  if (root === null || root === undefined) return { snapshot: {}, lines: new Map() };
  if (!isMap(root)) throw new ConfigError(`${file}:${lineOf(root) ?? 1}: the top level must be a map with keys ${TOP_LEVEL.join(', ')}`);
  const js = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  for (const k of Object.keys(js)) {
    if (!(TOP_LEVEL as readonly string[]).includes(k)) {
      const node = root.items.find((p) => (p.key as { value?: unknown } | null)?.value === k)?.key;
      throw new ConfigError(`${file}:${lineOf(node) ?? 1}: unknown top-level key ${JSON.stringify(k)} (expected ${TOP_LEVEL.join(', ')})`);
    }
  }

  const lines = new Map<string, number>();
  const rejected: Rejection[] = [];
  const section = <T>(key: (typeof TOP_LEVEL)[number], kind: ResourceKind, convert: (raw: Record<string, unknown>, where: string) => { name: string; value: T }): T[] => {
    const raw = js[key];
    if (raw === undefined || raw === null) return [];
    const node = root.get(key, true);
    if (!Array.isArray(raw)) throw new ConfigError(`${file}:${lineOf(node) ?? 1}: ${key} must be a list`);
    const items = isSeq(node) ? node.items : [];
    const out: T[] = [];
    raw.forEach((entry, i) => {
      const line = lineOf(items[i]);
      const where = `${key}[${i}]`;
      try {
        if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new EntryError(where, `${where} must be a map`);
        const { name, value } = convert(entry as Record<string, unknown>, where);
        if (line !== undefined) lines.set(`${kind}:${name}`, line);
        out.push(value);
      } catch (e) {
        if (!(e instanceof EntryError)) throw e;
        if (line !== undefined) lines.set(`${kind}:${e.entryName}`, line);
        rejected.push({ kind, name: e.entryName, message: e.message });
      }
    });
    return out;
  };

  const workloads = section('workloads', 'workload', convertWorkload);
  const services = section('services', 'service', convertService);
  const policies = section('policies', 'policy', convertPolicy);
  return { snapshot: { workloads, services, policies, rejected }, lines };
}

class EntryError extends Error {
  constructor(readonly entryName: string, message: string) {
    super(message);
  }
}

function checkFields(raw: Record<string, unknown>, allowed: Set<string>, name: string, describe: string): void {
  for (const k of Object.keys(raw)) {
    if (allowed.has(k)) continue;
    const hint = HINTS[k] && allowed.has(HINTS[k]!) ? ` (did you mean "${HINTS[k]}"?)` : '';
    throw new EntryError(name, `${describe}: unknown field "${k}"${hint}`);
  }
}

/** Case-, underscore-insensitive match onto the canonical spellings; unknown values pass through to validation. */
function normalizeEnum(v: unknown, canonical: readonly string[], aliases: Record<string, string> = {}): unknown {
  if (typeof v !== 'string') return v;
  const flat = v.replace(/[_-]/g, '').toLowerCase();
  if (aliases[flat]) return aliases[flat];
  return canonical.find((c) => c.toLowerCase() === flat) ?? v;
}

/** `"ns/host"` or `"network/ip"` (ztunnel tries the address form first); objects pass through. */
function convertGatewayAddress(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const r = v as Record<string, unknown>;
  const d = r.destination;
  if (typeof d !== 'string') return v;
  const i = d.indexOf('/');
  const left = i < 0 ? '' : d.slice(0, i);
  const right = i < 0 ? d : d.slice(i + 1);
  const destination = canonicalizeIp(right) ? { network: left, address: right } : { namespace: left, hostname: right };
  return { ...r, destination };
}

function convertWorkload(raw: Record<string, unknown>, where: string): { name: string; value: Record<string, unknown> } {
  const ns = typeof raw.namespace === 'string' ? raw.namespace : '?';
  const nm = typeof raw.name === 'string' ? raw.name : '?';
  const clusterId = typeof raw.clusterId === 'string' && raw.clusterId ? raw.clusterId : DEFAULT_CLUSTER_ID;
  const uid = typeof raw.uid === 'string' && raw.uid ? raw.uid : ns !== '?' && nm !== '?' ? `${clusterId}//Pod/${ns}/${nm}` : where;
  checkFields(raw, WORKLOAD_FIELDS, uid, `workload "${ns}/${nm}" (uid ${uid})`);
  const w: Record<string, unknown> = { ...raw, uid };
  if ('protocol' in raw) w.protocol = normalizeEnum(raw.protocol, ['HBONE', 'TCP'], { none: 'TCP' });
  if ('status' in raw) w.status = normalizeEnum(raw.status, ['Healthy', 'Unhealthy']);
  if ('networkMode' in raw) w.networkMode = normalizeEnum(raw.networkMode, ['Standard', 'HostNetwork']);
  if ('waypoint' in raw) w.waypoint = convertGatewayAddress(raw.waypoint);
  if ('networkGateway' in raw) w.networkGateway = convertGatewayAddress(raw.networkGateway);
  if (raw.applicationTunnel && typeof raw.applicationTunnel === 'object') {
    const at = raw.applicationTunnel as Record<string, unknown>;
    w.applicationTunnel = { ...at, protocol: normalizeEnum(at.protocol, ['NONE', 'PROXY']) };
  }
  return { name: uid, value: w };
}

function convertService(raw: Record<string, unknown>, where: string): { name: string; value: Record<string, unknown> } {
  const name = typeof raw.namespace === 'string' && typeof raw.hostname === 'string' ? `${raw.namespace}/${raw.hostname}` : where;
  checkFields(raw, SERVICE_FIELDS, name, `service "${name}"`);
  const { endpoints: _ignored, loadBalancer, ...rest } = raw;
  const s: Record<string, unknown> = { ...rest };
  if (Array.isArray(raw.vips)) {
    s.vips = raw.vips.map((v) => {
      if (typeof v !== 'string') return v;
      const i = v.indexOf('/');
      return i < 0 ? { network: '', address: v } : { network: v.slice(0, i), address: v.slice(i + 1) };
    });
  }
  if (raw.ports && typeof raw.ports === 'object' && !Array.isArray(raw.ports)) {
    s.ports = Object.entries(raw.ports as Record<string, unknown>).map(([sp, tp]) => ({ servicePort: sp, targetPort: tp }));
  }
  if ('waypoint' in raw) s.waypoint = convertGatewayAddress(raw.waypoint);
  const lb = raw.loadBalancing ?? loadBalancer;
  if (lb && typeof lb === 'object') {
    const l = lb as Record<string, unknown>;
    s.loadBalancing = {
      ...l,
      ...(Array.isArray(l.routingPreferences)
        ? { routingPreferences: l.routingPreferences.map((p) => normalizeEnum(p, ['Network', 'Region', 'Zone', 'Subzone', 'Node', 'Cluster'])) }
        : {}),
      mode: normalizeEnum(l.mode, ['Standard', 'Strict', 'Failover', 'Passthrough'], { unspecifiedmode: 'Standard' }),
      healthPolicy: normalizeEnum(l.healthPolicy, ['OnlyHealthy', 'AllowAll']),
    };
  }
  if ('ipFamilies' in raw) s.ipFamilies = normalizeEnum(raw.ipFamilies, ['Automatic', 'IPv4Only', 'IPv6Only', 'Dual']);
  return { name, value: s };
}

const STRING_MATCH_FIELDS = new Set(['namespaces', 'notNamespaces', 'principals', 'notPrincipals']);

/** AuthorizationPolicy-style wildcard string, or any casing of {exact|prefix|suffix|presence: ...}. */
function convertStringMatch(v: unknown): unknown {
  if (typeof v === 'string') {
    if (v === '*') return { presence: true };
    if (v.length > 1 && v.endsWith('*')) return { prefix: v.slice(0, -1) };
    if (v.length > 1 && v.startsWith('*')) return { suffix: v.slice(1) };
    return { exact: v };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const key = k.toLowerCase();
    out[key] = key === 'presence' ? true : val;
  }
  return out;
}

function convertPolicy(raw: Record<string, unknown>, where: string): { name: string; value: Record<string, unknown> } {
  const name = typeof raw.namespace === 'string' && typeof raw.name === 'string' ? `${raw.namespace}/${raw.name}` : where;
  checkFields(raw, POLICY_FIELDS, name, `policy "${name}"`);
  const p: Record<string, unknown> = {
    ...raw,
    scope: normalizeEnum(raw.scope, ['Global', 'Namespace', 'WorkloadSelector']),
    action: normalizeEnum(raw.action, ['Allow', 'Deny']),
  };
  if (Array.isArray(raw.rules)) {
    p.rules = raw.rules.map((rule) =>
      Array.isArray(rule)
        ? rule.map((clause) =>
            Array.isArray(clause)
              ? clause.map((m) => {
                  if (typeof m !== 'object' || m === null || Array.isArray(m)) return m;
                  const out: Record<string, unknown> = {};
                  for (const [k, val] of Object.entries(m)) {
                    out[k] = STRING_MATCH_FIELDS.has(k) && Array.isArray(val) ? val.map(convertStringMatch) : val;
                  }
                  return out;
                })
              : clause,
          )
        : rule,
    );
  }
  return { name, value: p };
}

function decorate(file: string, parsed: ParsedLocalConfig, rejected: readonly Rejection[]): LocalConfigRejection[] {
  return rejected.map((r) => {
    const line = parsed.lines.get(`${r.kind}:${r.name}`);
    return { ...r, ...(line !== undefined ? { line } : {}), text: `${file}${line !== undefined ? `:${line}` : ''}: ${r.message}` };
  });
}

/** Applies already-read text; exported so `LOCAL_XDS` (inline YAML) uses the same path as the file. */
export function applyLocalConfigText(text: string, file: string, updater: StateUpdater): LocalConfigLoadResult {
  const parsed = parseLocalConfig(text, file);
  const apply = updater.replaceAll(parsed.snapshot);
  return {
    file,
    apply,
    rejected: decorate(file, parsed, apply.rejected),
    counts: {
      workloads: parsed.snapshot.workloads?.length ?? 0,
      services: parsed.snapshot.services?.length ?? 0,
      policies: parsed.snapshot.policies?.length ?? 0,
    },
  };
}

/** Reads and applies the file once. Throws ConfigError (state untouched) if it cannot be read or parsed. */
export async function loadLocalConfig(path: string, updater: StateUpdater): Promise<LocalConfigLoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read local config: ${(e as Error).message}`, { cause: e });
  }
  return applyLocalConfigText(text, path, updater);
}

export interface LocalConfigWatcherOptions {
  /** Quiet time after the last file event before reloading (editors write in several steps). Default 100 ms. */
  readonly debounceMs?: number;
  /** stat() polling interval, the safety net for missed fs events (some filesystems, ConfigMap symlink swaps). Default 1000 ms. */
  readonly pollIntervalMs?: number;
}

export interface LocalConfigWatcher {
  /** Settles after the first load attempt: the result, or undefined if the file was unusable (logged). */
  readonly ready: Promise<LocalConfigLoadResult | undefined>;
  /** Reload now (also what file events trigger). */
  reload(): Promise<LocalConfigLoadResult | undefined>;
  close(): void;
}

/**
 * Loads the file, then reloads it whenever it changes: fs.watch on the directory (so an editor or a ConfigMap
 * update that replaces the file by rename is seen) plus stat polling as a safety net, debounced, skipping reloads
 * whose content did not change. An unreadable or unparsable file is logged and the last good config stays;
 * rejected entries are logged with file, line and entry name.
 */
export function watchLocalConfig(
  path: string,
  updater: StateUpdater,
  logger: LocalConfigLogger,
  options: LocalConfigWatcherOptions = {},
): LocalConfigWatcher {
  const file = resolve(path);
  const debounceMs = options.debounceMs ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  let lastHash: string | undefined;
  let lastStat = '';
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<LocalConfigLoadResult | undefined> | undefined;
  let again = false;

  async function loadOnce(): Promise<LocalConfigLoadResult | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      logger.warn({ file, err: (err as Error).message }, 'local config unreadable; keeping the last good config');
      return undefined;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === lastHash) return undefined;
    try {
      const result = applyLocalConfigText(text, file, updater);
      lastHash = hash;
      for (const r of result.rejected) logger.error({ file, kind: r.kind, entry: r.name, line: r.line }, r.text);
      logger.info(
        { file, ...result.counts, rejected: result.rejected.length, version: result.apply.version },
        'local config applied',
      );
      return result;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      logger.error({ file }, `${err.message}; keeping the last good config`);
      return undefined;
    }
  }

  function reload(): Promise<LocalConfigLoadResult | undefined> {
    if (running) {
      // A change arrived while loading: load once more after, so the last write always wins.
      again = true;
      return running;
    }
    running = loadOnce().finally(() => {
      running = undefined;
      if (again && !closed) {
        again = false;
        void reload();
      }
    });
    return running;
  }

  function schedule(): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
  }

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
      if (!name || name === basename(file) || name === '..data') schedule();
    });
    watcher.on('error', (err) => logger.warn({ file, err: err.message }, 'local config watch failed; polling only'));
  } catch (err) {
    logger.warn({ file, err: (err as Error).message }, 'local config watch unavailable; polling only');
  }
  const poll = setInterval(() => {
    stat(file).then(
      (s) => {
        const sig = `${s.ino}:${s.size}:${s.mtimeMs}`;
        if (sig !== lastStat) {
          lastStat = sig;
          schedule();
        }
      },
      () => {
        if (lastStat !== 'missing') lastStat = 'missing';
      },
    );
  }, pollIntervalMs);
  poll.unref();

  const ready = reload();
  return {
    ready,
    reload,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
