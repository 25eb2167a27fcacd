// ambit-bridge: the primary CNI plugin of the cluster-in-a-box. It does for a kubelet-created pod what the netns
// topology's addPod() does for a static one: a veth from the node's bridge into the pod, an address from the node's
// pod CIDR and a default route via the bridge. Chained plugins (the Ambit CNI plugin) run after it and get its
// result as prevResult.
//
// Differences from the reference `bridge` plugin, and why:
// - the node is itself a network namespace (`hostNetns` in the config) and the plugin runs in the root netns, so
//   every link is created from inside the node and pod namespaces (`ip -n NODE link add ... peer ... netns POD`);
//   nothing ever appears in the root netns, exactly as in topology.ts;
// - IPAM is built in (host-local style, ipam.ts) instead of delegated to a second executable: one plugin to find
//   and one process per call;
// - CNI_ARGS `IP=10.0.N.P` (the CNI CONVENTIONS.md key host-local honours) requests a given address; our kubelet
//   uses it so the pod's netns name `<prefix>-n<N>p<P>`, the host veth `vp<P>` and the address agree, as in the
//   static topology. Without it the lowest free address is taken.
//
// Config: {"type":"ambit-bridge","bridge":"br0","hostNetns":"amb-t1-n1",
//          "ipam":{"subnet":"10.0.1.0/24","gateway":"10.0.1.1","dataDir":"/tmp/x/ipam"}}
import { basename, dirname } from 'node:path';
import { runCommand } from '../process.js';
import { openHostLocalStore, parseRange, type Ipv4Range } from './ipam.js';
import {
  CNI_ERROR,
  CniError,
  compareVersions,
  convertResult,
  isSupportedVersion,
  LATEST_CNI_VERSION,
  parseCniArgs,
  SUPPORTED_CNI_VERSIONS,
  type CniErrorResult,
  type CniResult,
  type CniVersion,
} from './spec.js';

export interface BridgeConf {
  cniVersion: CniVersion;
  name: string;
  bridge: string;
  hostNetns: string;
  range: Ipv4Range;
  dataDir: string;
  prevResult?: CniResult;
  /** How long to wait for the new veth to carry traffic (carrier up, bridge port forwarding). */
  readyTimeoutMs: number;
}

const NETNS_DIRS = ['/var/run/netns', '/run/netns'];
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

function bad(message: string): never {
  throw new CniError(CNI_ERROR.invalidNetworkConfig, `ambit-bridge: invalid network configuration: ${message}`);
}

export function parseBridgeConf(text: string): BridgeConf {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new CniError(CNI_ERROR.decodingFailure, `ambit-bridge: stdin is not JSON: ${(err as Error).message}`);
  }
  if (typeof o !== 'object' || o === null) throw new CniError(CNI_ERROR.decodingFailure, 'ambit-bridge: stdin is not a JSON object');
  if (!isSupportedVersion(o.cniVersion)) {
    throw new CniError(CNI_ERROR.incompatibleVersion, `ambit-bridge: cniVersion ${JSON.stringify(o.cniVersion)} not supported`, `supported: ${SUPPORTED_CNI_VERSIONS.join(', ')}`);
  }
  if (typeof o.name !== 'string' || o.name === '') bad('name must be a non-empty string');
  const bridge = o.bridge ?? 'br0';
  if (typeof bridge !== 'string' || !NAME_RE.test(bridge) || bridge.length > 15) bad(`bridge ${JSON.stringify(bridge)} is not an interface name`);
  if (typeof o.hostNetns !== 'string' || !NAME_RE.test(o.hostNetns)) bad('hostNetns must name the node netns (as in `ip netns list`)');
  const ipam = o.ipam as Record<string, unknown> | undefined;
  if (typeof ipam !== 'object' || ipam === null) bad('ipam is required: {"subnet": "10.0.N.0/24", "dataDir": "/abs/path"}');
  if (typeof ipam.subnet !== 'string') bad('ipam.subnet is required');
  if (typeof ipam.dataDir !== 'string' || !ipam.dataDir.startsWith('/')) bad('ipam.dataDir must be an absolute path');
  const str = (v: unknown, k: string): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') bad(`ipam.${k} must be a string`);
    return v;
  };
  const range = parseRange({ subnet: ipam.subnet, gateway: str(ipam.gateway, 'gateway'), rangeStart: str(ipam.rangeStart, 'rangeStart'), rangeEnd: str(ipam.rangeEnd, 'rangeEnd') });
  const conf: BridgeConf = {
    cniVersion: o.cniVersion,
    name: o.name,
    bridge,
    hostNetns: o.hostNetns,
    range,
    dataDir: ipam.dataDir,
    readyTimeoutMs: typeof o.readyTimeoutMs === 'number' ? o.readyTimeoutMs : 5000,
  };
  if (typeof o.prevResult === 'object' && o.prevResult !== null) conf.prevResult = o.prevResult as CniResult;
  return conf;
}

/** Host-side veth name: `vp<P>` for /24 and smaller (as topology.ts names them), otherwise from the whole address. */
export function hostIfaceFor(ip: string, prefixLength: number): string {
  const parts = ip.split('.').map(Number);
  if (prefixLength >= 24) return `vp${parts[3]}`;
  return `vh${parts.map((p) => p.toString(16).padStart(2, '0')).join('')}`;
}

/** The netns name behind CNI_NETNS; the `ip -n`/`netns NAME` forms need a name, not a path. */
export function netnsNameOf(path: string): string {
  if (!NETNS_DIRS.includes(dirname(path)) || !NAME_RE.test(basename(path))) {
    throw new CniError(CNI_ERROR.invalidEnvironment, `ambit-bridge: CNI_NETNS ${JSON.stringify(path)} must be a named netns under /var/run/netns`);
  }
  return basename(path);
}

interface Invocation {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
  containerId: string;
  netns: string;
  ifName: string;
  args: Record<string, string>;
}

function readInvocation(env: Readonly<Record<string, string | undefined>>): Invocation {
  const command = env.CNI_COMMAND;
  if (command !== 'ADD' && command !== 'DEL' && command !== 'CHECK' && command !== 'VERSION') {
    throw new CniError(CNI_ERROR.invalidEnvironment, `ambit-bridge: CNI_COMMAND ${JSON.stringify(command)} is not ADD, DEL, CHECK or VERSION`);
  }
  const need = command === 'VERSION' ? [] : command === 'DEL' ? ['CNI_CONTAINERID', 'CNI_IFNAME'] : ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'];
  const missing = need.filter((k) => !env[k]);
  if (missing.length > 0) throw new CniError(CNI_ERROR.invalidEnvironment, `ambit-bridge: missing ${missing.join(', ')} for ${command}`);
  const ifName = env.CNI_IFNAME ?? '';
  if (command !== 'VERSION' && (!NAME_RE.test(ifName) || ifName.length > 15)) throw new CniError(CNI_ERROR.invalidEnvironment, `ambit-bridge: CNI_IFNAME ${JSON.stringify(ifName)} is not an interface name`);
  return { command, containerId: env.CNI_CONTAINERID ?? '', netns: env.CNI_NETNS ?? '', ifName, args: parseCniArgs(env.CNI_ARGS) };
}

async function ip(netns: string, commands: readonly string[]): Promise<void> {
  const r = await runCommand(['ip', '-n', netns, '-batch', '-'], { input: commands.join('\n') + '\n', timeoutMs: 10_000 });
  if (r.code !== 0) throw new CniError(CNI_ERROR.linkSetupFailed, `ambit-bridge: ip -n ${netns} failed: ${r.stderr.trim()}`, commands.join('; '));
}

async function ipJson<T>(argv: readonly string[]): Promise<T | undefined> {
  const r = await runCommand(['ip', '-j', ...argv], { timeoutMs: 10_000 });
  if (r.code !== 0) return undefined;
  return JSON.parse(r.stdout || 'null') as T;
}

interface JsonLink { ifname: string; address?: string; operstate?: string; master?: string }
interface JsonAddr { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }

async function link(netns: string, dev: string): Promise<JsonLink | undefined> {
  return (await ipJson<JsonLink[]>(['-n', netns, 'link', 'show', 'dev', dev]))?.[0];
}

/**
 * Waits until both veth ends have carrier and the bridge port forwards. Without this the first packets of a pod
 * that starts talking at once are dropped while the kernel's linkwatch catches up (see topology.ts waitReady()).
 */
async function waitLinkReady(conf: BridgeConf, podNs: string, ifName: string, hostIface: string): Promise<void> {
  const deadline = Date.now() + conf.readyTimeoutMs;
  let last = '';
  for (;;) {
    const pod = await link(podNs, ifName);
    const host = await link(conf.hostNetns, hostIface);
    const r = await runCommand(['bridge', '-n', conf.hostNetns, '-j', 'link', 'show', 'dev', hostIface], { timeoutMs: 5000 });
    const state = r.code === 0 ? ((JSON.parse(r.stdout || '[]') as { state?: string }[])[0]?.state ?? '?') : '?';
    if (pod?.operstate === 'UP' && host?.operstate === 'UP' && state === 'forwarding') return;
    last = `pod ${ifName}=${pod?.operstate ?? 'missing'}, host ${hostIface}=${host?.operstate ?? 'missing'}, port=${state}`;
    if (Date.now() > deadline) throw new CniError(CNI_ERROR.linkSetupFailed, `ambit-bridge: veth ${hostIface} not ready after ${conf.readyTimeoutMs} ms (${last})`);
    await new Promise((r2) => setTimeout(r2, 25));
  }
}

async function cmdAdd(conf: BridgeConf, inv: Invocation): Promise<CniResult> {
  const podNs = netnsNameOf(inv.netns);
  const store = openHostLocalStore(conf.dataDir, conf.name, conf.range);
  const alloc = store.allocate(inv.containerId, inv.ifName, inv.args.IP);
  const hostIface = hostIfaceFor(alloc.ip, conf.range.prefixLength);
  try {
    await ip(conf.hostNetns, [
      `link add ${hostIface} type veth peer name ${inv.ifName} netns ${podNs}`,
      `link set ${hostIface} master ${conf.bridge}`,
      `link set ${hostIface} up`,
    ]);
    await ip(podNs, [
      'link set lo up',
      `addr add ${alloc.ip}/${conf.range.prefixLength} dev ${inv.ifName}`,
      `link set ${inv.ifName} up`,
      `route add default via ${conf.range.gateway} dev ${inv.ifName}`,
    ]);
    await waitLinkReady(conf, podNs, inv.ifName, hostIface);
  } catch (err) {
    // Leave nothing half-made: the runtime may never call DEL for an ADD that failed.
    await runCommand(['ip', '-n', conf.hostNetns, 'link', 'del', hostIface], { timeoutMs: 5000 }).catch(() => undefined);
    store.release(inv.containerId, inv.ifName);
    throw err;
  }
  const hostLink = await link(conf.hostNetns, hostIface);
  const podLink = await link(podNs, inv.ifName);
  const result: CniResult = {
    cniVersion: conf.cniVersion,
    interfaces: [
      { name: hostIface, ...(hostLink?.address ? { mac: hostLink.address } : {}) },
      { name: inv.ifName, ...(podLink?.address ? { mac: podLink.address } : {}), sandbox: inv.netns },
    ],
    ips: [{ address: `${alloc.ip}/${conf.range.prefixLength}`, gateway: conf.range.gateway, interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: conf.range.gateway }],
    dns: {},
  };
  return convertResult(result, conf.cniVersion);
}

async function cmdDel(conf: BridgeConf, inv: Invocation): Promise<void> {
  const store = openHostLocalStore(conf.dataDir, conf.name, conf.range);
  const released = store.release(inv.containerId, inv.ifName);
  for (const addr of released) {
    // Deleting the host end deletes the pair; gone already is fine (the pod netns may have been deleted first).
    const r = await runCommand(['ip', '-n', conf.hostNetns, 'link', 'del', hostIfaceFor(addr, conf.range.prefixLength)], { timeoutMs: 5000 });
    if (r.code !== 0 && !/Cannot find device|does not exist|No such file/i.test(r.stderr)) {
      throw new CniError(CNI_ERROR.linkSetupFailed, `ambit-bridge: could not delete the veth of ${addr}: ${r.stderr.trim()}`);
    }
  }
}

async function cmdCheck(conf: BridgeConf, inv: Invocation): Promise<void> {
  if (!conf.prevResult) throw new CniError(CNI_ERROR.invalidNetworkConfig, 'ambit-bridge: CHECK needs prevResult (the cached ADD result)');
  const podNs = netnsNameOf(inv.netns);
  const store = openHostLocalStore(conf.dataDir, conf.name, conf.range);
  const held = store.lookup(inv.containerId, inv.ifName);
  if (held.length === 0) throw new CniError(CNI_ERROR.checkFailed, `ambit-bridge: container ${inv.containerId} holds no address in ${store.dir}`);
  const addrs = (await ipJson<JsonAddr[]>(['-n', podNs, 'addr', 'show', 'dev', inv.ifName])) ?? [];
  const have = addrs.flatMap((a) => a.addr_info ?? []).map((a) => a.local);
  for (const addr of held) {
    if (!have.includes(addr)) throw new CniError(CNI_ERROR.checkFailed, `ambit-bridge: ${inv.ifName} in ${podNs} lacks ${addr} (has ${have.join(', ') || 'none'})`);
    const hostIface = hostIfaceFor(addr, conf.range.prefixLength);
    const host = await link(conf.hostNetns, hostIface);
    if (host?.master !== conf.bridge) throw new CniError(CNI_ERROR.checkFailed, `ambit-bridge: ${hostIface} in ${conf.hostNetns} is not a port of ${conf.bridge}`);
  }
}

export interface PluginRun {
  exitCode: number;
  stdout: string;
}

/** Runs one CNI command; never throws (errors become the CNI error object and exit code 1). */
export async function runBridgePlugin(env: Readonly<Record<string, string | undefined>>, stdin: string): Promise<PluginRun> {
  let version: string = LATEST_CNI_VERSION;
  try {
    const v = (JSON.parse(stdin || 'null') as { cniVersion?: unknown } | null)?.cniVersion;
    if (isSupportedVersion(v)) version = v;
  } catch {
    // reported by parseBridgeConf below
  }
  try {
    const inv = readInvocation(env);
    if (inv.command === 'VERSION') {
      return { exitCode: 0, stdout: JSON.stringify({ cniVersion: version, supportedVersions: [...SUPPORTED_CNI_VERSIONS] }) + '\n' };
    }
    const conf = parseBridgeConf(stdin);
    switch (inv.command) {
      case 'ADD':
        return { exitCode: 0, stdout: JSON.stringify(await cmdAdd(conf, inv)) + '\n' };
      case 'DEL':
        await cmdDel(conf, inv);
        return { exitCode: 0, stdout: '' };
      case 'CHECK':
        if (compareVersions(conf.cniVersion, '0.4.0') < 0) throw new CniError(CNI_ERROR.incompatibleVersion, 'CHECK needs cniVersion 0.4.0 or later');
        await cmdCheck(conf, inv);
        return { exitCode: 0, stdout: '' };
    }
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(CNI_ERROR.ioFailure, `ambit-bridge: internal error: ${(err as Error).message}`);
    const body: CniErrorResult = { cniVersion: version, code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) };
    return { exitCode: 1, stdout: JSON.stringify(body) + '\n' };
  }
}
