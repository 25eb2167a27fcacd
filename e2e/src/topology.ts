// The netns test topology every e2e test shares (ztunnel's test_helpers/netns.rs is the model):
//
//                       <prefix>-net  (underlay: bridge br0, no address)
//                       |  n1                     |  n2
//          up0 10.255.0.1                          up0 10.255.0.2
//   <prefix>-n1  br0 10.0.1.1/24           <prefix>-n2  br0 10.0.2.1/24      ip_forward=1 in each node
//      | vp2          | vp3                    | vp2          | vp3
//   eth0 10.0.1.2  eth0 10.0.1.3            eth0 10.0.2.2  eth0 10.0.2.3
//   <prefix>-n1p2  <prefix>-n1p3            <prefix>-n2p2  <prefix>-n2p3     default via 10.0.N.1
//
// Node N routes 10.0.M.0/24 via 10.255.0.M for every other node M, so pod-to-pod traffic between nodes crosses
// both nodes' up0 (where tests capture) and keeps the pods' own addresses (no NAT anywhere).
// Nothing is created, addressed or routed in the root namespace: every interface is created inside its netns
// (`ip -n A link add X type veth peer name Y netns B`), and `ip netns add/del` only manage the netns mounts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCapture, type Capture, type CaptureOptions } from './capture.js';
import { registerForCleanup, unregisterFromCleanup, type SyncDestroyable } from './cleanup.js';
import {
  BRIDGE_IFACE,
  MIN_POD_INDEX,
  POD_IFACE,
  UPLINK_IFACE,
  interNodeRoute,
  netnsPath,
  nodeBridgeIp,
  nodeNetnsName,
  nodePodCidr,
  nodeUplinkIp,
  ownsNetns,
  podHostIface,
  podIp,
  podNetnsName,
  randomPrefix,
  underlayNetnsName,
  underlayPortIface,
  validatePrefix,
  MAX_POD_INDEX,
} from './naming.js';
import { isProcessAlive, listNetns, netnsInode, pidsInNetns, signalPid } from './netns.js';
import {
  execInNetns,
  runCommand,
  spawnInNetns,
  type ExecOptions,
  type ExecResult,
  type NetnsProcess,
  type SpawnOptions,
} from './process.js';
import { pollSync, waitFor } from './wait.js';

export interface TopologyOptions {
  /** Per-run name prefix, `amb-...`, at most 12 characters; default a random `amb-tXXXX`. */
  prefix?: string;
  /** Create nodes 1..nodes right away. */
  nodes?: number;
  /** With `nodes`, also create pods 2..podsPerNode+1 on each node. */
  podsPerNode?: number;
  /** Grace between SIGTERM and SIGKILL at teardown; default 2000 ms. */
  killGraceMs?: number;
  /** Leave IPv6 enabled in the namespaces (no IPv6 addresses are assigned either way); default false. */
  ipv6?: boolean;
  /** Keep the work directory (process logs, pcaps) after destroy(); default false. */
  keepWorkDir?: boolean;
}

export interface AddOptions {
  /** Wait until the new links carry traffic (default true); createTopology waits once at the end instead. */
  wait?: boolean;
}

export interface Underlay {
  netns: string;
  nsPath: string;
  bridge: string;
}

export interface TopologyNode {
  index: number;
  /** Netns name, `<prefix>-n<N>`. */
  netns: string;
  /** `/var/run/netns/<netns>`, for setns()/nsenter. */
  nsPath: string;
  /** Bridge the node's pods hang off; also their gateway. */
  bridge: string;
  bridgeIp: string;
  podCidr: string;
  /** Interface to the underlay, inside the node netns: everything between nodes crosses it (capture here). */
  uplink: string;
  uplinkIp: string;
  pods: TopologyPod[];
}

export interface TopologyPod {
  index: number;
  /** Netns name, `<prefix>-n<N>p<P>`. */
  netns: string;
  nsPath: string;
  ip: string;
  /** The pod's interface (inside the pod netns). */
  iface: string;
  /** The node side of the pod's veth (inside the node netns). */
  hostIface: string;
  gateway: string;
  node: TopologyNode;
}

/** Where a process or command runs: a netns name owned by the topology, or a node/pod/underlay object. */
export type Target = string | { netns: string };

export class TopologyLeftoverError extends Error {
  constructor(prefix: string, netns: readonly string[], pids: readonly number[]) {
    super(
      `topology ${prefix} teardown left namespaces [${netns.join(', ')}] and processes [${pids.join(', ')}]; ` +
        `run scripts/cleanup-netns.sh ${prefix}`,
    );
    this.name = 'TopologyLeftoverError';
  }
}

export class Topology implements SyncDestroyable {
  readonly prefix: string;
  /** Scratch directory for this run: process logs, pcaps. */
  readonly workDir: string;
  private readonly nodeMap = new Map<number, TopologyNode>();
  private readonly procs = new Set<NetnsProcess>();
  /** Inodes of every netns we created; processes are found by these even after the names are deleted. */
  private readonly inodes = new Set<number>();
  private underlayNs: Underlay | undefined;
  private destroyed = false;
  private readonly killGraceMs: number;
  private readonly keepWorkDir: boolean;
  private readonly ipv6: boolean;

  constructor(options: TopologyOptions = {}) {
    this.prefix = options.prefix ?? randomPrefix();
    validatePrefix(this.prefix);
    this.killGraceMs = options.killGraceMs ?? 2000;
    this.keepWorkDir = options.keepWorkDir ?? false;
    this.ipv6 = options.ipv6 ?? false;
    this.workDir = mkdtempSync(join(tmpdir(), `ambit-e2e-${this.prefix}-`));
    registerForCleanup(this);
  }

  get nodes(): TopologyNode[] {
    return [...this.nodeMap.values()];
  }

  get pods(): TopologyPod[] {
    return this.nodes.flatMap((n) => n.pods);
  }

  get underlay(): Underlay | undefined {
    return this.underlayNs;
  }

  node(n: number): TopologyNode {
    const node = this.nodeMap.get(n);
    if (!node) throw new Error(`topology ${this.prefix} has no node ${n}`);
    return node;
  }

  pod(n: number, p: number): TopologyPod {
    const pod = this.node(n).pods.find((x) => x.index === p);
    if (!pod) throw new Error(`topology ${this.prefix} has no pod ${p} on node ${n}`);
    return pod;
  }

  /** Adds node N (default: the next free index), connects it to the underlay and routes to/from every other node. */
  async addNode(index?: number, options: AddOptions = {}): Promise<TopologyNode> {
    this.assertAlive();
    const n = index ?? Math.max(0, ...this.nodeMap.keys()) + 1;
    if (this.nodeMap.has(n)) throw new Error(`topology ${this.prefix} already has node ${n}`);
    const underlay = await this.ensureUnderlay();
    const netns = nodeNetnsName(this.prefix, n);
    const node: TopologyNode = {
      index: n,
      netns,
      nsPath: netnsPath(netns),
      bridge: BRIDGE_IFACE,
      bridgeIp: nodeBridgeIp(n),
      podCidr: nodePodCidr(n),
      uplink: UPLINK_IFACE,
      uplinkIp: nodeUplinkIp(n),
      pods: [],
    };
    await this.createNetns(netns);
    const port = underlayPortIface(n);
    await this.ipBatch(netns, [
      'link set lo up',
      `link add ${BRIDGE_IFACE} type bridge`,
      `addr add ${node.bridgeIp}/24 dev ${BRIDGE_IFACE}`,
      `link set ${BRIDGE_IFACE} up`,
      // Both ends created from inside the namespaces: nothing ever appears in the root netns.
      `link add ${UPLINK_IFACE} type veth peer name ${port} netns ${underlay.netns}`,
      `addr add ${node.uplinkIp}/24 dev ${UPLINK_IFACE}`,
      `link set ${UPLINK_IFACE} up`,
    ]);
    await this.ipBatch(underlay.netns, [`link set ${port} master ${BRIDGE_IFACE}`, `link set ${port} up`]);
    // The node routes between its pods and the underlay; ip_forward is per netns and off by default.
    await execInNetns(netns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'], { check: true });
    for (const other of this.nodeMap.values()) {
      const there = interNodeRoute(other.index);
      const back = interNodeRoute(n);
      await this.ipBatch(netns, [`route add ${there.dst} via ${there.via} dev ${UPLINK_IFACE}`]);
      await this.ipBatch(other.netns, [`route add ${back.dst} via ${back.via} dev ${UPLINK_IFACE}`]);
    }
    this.nodeMap.set(n, node);
    if (options.wait !== false) await this.waitReady({ netns: [netns, underlay.netns] });
    return node;
  }

  /** Adds pod P (default: the next free index >= 2) on a node: its own netns on a veth to the node's bridge. */
  async addPod(nodeOrIndex: TopologyNode | number, index?: number, options: AddOptions = {}): Promise<TopologyPod> {
    this.assertAlive();
    const node = typeof nodeOrIndex === 'number' ? this.node(nodeOrIndex) : nodeOrIndex;
    const p = index ?? Math.max(MIN_POD_INDEX - 1, ...node.pods.map((x) => x.index)) + 1;
    if (p > MAX_POD_INDEX) throw new Error(`node ${node.index} is full`);
    if (node.pods.some((x) => x.index === p)) throw new Error(`node ${node.index} already has pod ${p}`);
    const netns = podNetnsName(this.prefix, node.index, p);
    const pod: TopologyPod = {
      index: p,
      netns,
      nsPath: netnsPath(netns),
      ip: podIp(node.index, p),
      iface: POD_IFACE,
      hostIface: podHostIface(p),
      gateway: node.bridgeIp,
      node,
    };
    await this.createNetns(netns);
    await this.ipBatch(node.netns, [
      `link add ${pod.hostIface} type veth peer name ${POD_IFACE} netns ${netns}`,
      `link set ${pod.hostIface} master ${BRIDGE_IFACE}`,
      `link set ${pod.hostIface} up`,
    ]);
    await this.ipBatch(netns, [
      'link set lo up',
      `addr add ${pod.ip}/24 dev ${POD_IFACE}`,
      `link set ${POD_IFACE} up`,
      `route add default via ${pod.gateway} dev ${POD_IFACE}`,
    ]);
    node.pods.push(pod);
    if (options.wait !== false) await this.waitReady({ netns: [netns, node.netns] });
    return pod;
  }

  /**
   * Waits until every veth has carrier and every bridge port forwards, in the given namespaces (default: all).
   * Needed because the kernel applies carrier changes through its rate-limited "linkwatch" work (up to ~1 s
   * late when many links change at once, as here): until then a bridge port stays "disabled" and drops frames,
   * which showed up as a first SYN lost and retransmitted 1 s later.
   */
  async waitReady(options: { netns?: readonly string[]; timeoutMs?: number } = {}): Promise<void> {
    const names = options.netns ?? [...(this.underlayNs ? [this.underlayNs.netns] : []), ...this.nodes.flatMap((n) => [n.netns, ...n.pods.map((p) => p.netns)])];
    let pending: string[] = [];
    await waitFor(
      async () => {
        pending = [];
        for (const ns of names) pending.push(...(await linksNotReady(ns)).map((l) => `${ns}/${l}`));
        return pending.length === 0;
      },
      { timeoutMs: options.timeoutMs ?? 10_000, intervalMs: 25, message: `links up in topology ${this.prefix}` },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; not ready: ${pending.join(', ')}`, { cause: err });
    });
  }

  /** Starts a long-running process in a namespace of this topology; it is killed at teardown. */
  async spawnIn(target: Target, argv: readonly string[], options: SpawnOptions = {}): Promise<NetnsProcess> {
    this.assertAlive();
    const netns = this.resolve(target);
    const proc = await spawnInNetns(netns, argv, options);
    this.procs.add(proc);
    return proc;
  }

  /** Runs a short command in a namespace of this topology, bounded by `timeoutMs` (default 10 s). */
  execIn(target: Target, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.assertAlive();
    return execInNetns(this.resolve(target), argv, options);
  }

  /** Starts tcpdump on `iface` in a namespace (e.g. `node.uplink` in `node`); see capture.ts. */
  capture(target: Target, iface: string, filter = '', options: CaptureOptions = {}): Promise<Capture> {
    this.assertAlive();
    return startCapture((ns, argv, o) => this.spawnIn(ns, argv, o), this.workDir, this.resolve(target), iface, filter, options);
  }

  /** Processes started through this topology (running or not). */
  processes(): NetnsProcess[] {
    return [...this.procs];
  }

  /** Namespaces with this prefix that still exist, and live processes inside any namespace we created. */
  leftovers(): { netns: string[]; pids: number[] } {
    return {
      netns: listNetns().filter((name) => ownsNetns(this.prefix, name)),
      pids: pidsInNetns(this.inodes),
    };
  }

  /**
   * Kills every process (SIGTERM, SIGKILL after the grace period), deletes every namespace and checks that
   * nothing with the prefix is left; throws TopologyLeftoverError otherwise. Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    // Stop our own children asynchronously first so Node reaps them (no zombies), then the sync sweep.
    const running = [...this.procs].filter((p) => p.running);
    for (const p of running) p.kill('SIGTERM');
    await waitFor(() => running.every((p) => !p.running), { timeoutMs: this.killGraceMs, intervalMs: 20 }).catch(() => {
      for (const p of running) if (p.running) p.kill('SIGKILL');
    });
    await waitFor(() => running.every((p) => p.exited !== undefined || !isProcessAlive(p.pid)), {
      timeoutMs: 5000,
      intervalMs: 20,
    }).catch(() => undefined); // the sync sweep below reports what is really left
    this.destroySync();
  }

  /** Synchronous teardown, for process 'exit' and signal handlers; same guarantees as destroy(). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    unregisterFromCleanup(this);
    // 1. Our processes, by process group: SIGTERM, a grace period, then SIGKILL.
    const running = [...this.procs].filter((p) => isProcessAlive(p.pid));
    for (const p of running) p.kill('SIGTERM');
    if (!pollSync(() => running.every((p) => !isProcessAlive(p.pid)), { timeoutMs: this.killGraceMs })) {
      for (const p of running) p.kill('SIGKILL');
    }
    // 2. Anything else still inside our namespaces (forked and escaped its group, or started by a test with
    //    plain `ip netns exec`): found through /proc/*/ns/net, killed outright.
    pollSync(
      () => {
        const pids = pidsInNetns(this.inodes);
        for (const pid of pids) signalPid(pid, 'SIGKILL');
        return pids.length === 0;
      },
      { timeoutMs: 5000 },
    );
    // 3. Namespaces: pods first, then nodes, then the underlay (deleting a netns deletes its veth ends).
    const names = listNetns()
      .filter((name) => ownsNetns(this.prefix, name))
      .sort((a, b) => b.length - a.length);
    for (const name of names) {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe', timeout: 10_000 });
      } catch {
        // reported by the leftover check below
      }
    }
    if (!this.keepWorkDir) rmSync(this.workDir, { recursive: true, force: true });
    // 4. Verify. A deleted netns lives on while a process holds it, so the inode check catches those too.
    const left = this.leftovers();
    if (left.netns.length > 0 || left.pids.length > 0) throw new TopologyLeftoverError(this.prefix, left.netns, left.pids);
  }

  private resolve(target: Target): string {
    const name = typeof target === 'string' ? target : target.netns;
    // Only our own namespaces: a helper that could run things in the root netns would eventually be misused.
    if (!ownsNetns(this.prefix, name)) throw new Error(`netns ${name} does not belong to topology ${this.prefix}`);
    return name;
  }

  private assertAlive(): void {
    if (this.destroyed) throw new Error(`topology ${this.prefix} was destroyed`);
  }

  private async ensureUnderlay(): Promise<Underlay> {
    if (this.underlayNs) return this.underlayNs;
    const netns = underlayNetnsName(this.prefix);
    await this.createNetns(netns);
    await this.ipBatch(netns, ['link set lo up', `link add ${BRIDGE_IFACE} type bridge`, `link set ${BRIDGE_IFACE} up`]);
    this.underlayNs = { netns, nsPath: netnsPath(netns), bridge: BRIDGE_IFACE };
    return this.underlayNs;
  }

  private async createNetns(name: string): Promise<void> {
    const r = await runCommand(['ip', 'netns', 'add', name]);
    if (r.code !== 0) {
      throw new Error(`ip netns add ${name}: ${r.stderr.trim()} (a leftover from an earlier run? scripts/cleanup-netns.sh ${this.prefix})`);
    }
    const ino = netnsInode(name);
    if (ino === undefined) throw new Error(`netns ${name} vanished right after creation`);
    this.inodes.add(ino);
    if (!this.ipv6) {
      // Before any interface exists, so no link ever gets IPv6: no router solicitations, DAD or MLD reports
      // cluttering captures that must show exactly what the mesh sends. The mesh tests are IPv4 for now.
      await execInNetns(name, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { check: true });
    }
  }

  /** Runs `ip` commands in one namespace in one process (`ip -n NS -batch -`); stops at the first failure. */
  private async ipBatch(netns: string, commands: readonly string[]): Promise<void> {
    await runCommand(['ip', '-n', netns, '-batch', '-'], { input: commands.join('\n') + '\n', check: true });
  }
}

interface JsonLink {
  ifname: string;
  operstate?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}

/** Names of links in `netns` that cannot carry traffic yet: a veth without carrier or a non-forwarding bridge port. */
async function linksNotReady(netns: string): Promise<string[]> {
  const links = JSON.parse((await runCommand(['ip', '-n', netns, '-d', '-j', 'link', 'show'], { check: true })).stdout) as JsonLink[];
  const notReady = links
    .filter((l) => l.linkinfo?.info_kind === 'veth' && l.operstate !== 'UP')
    .map((l) => `${l.ifname}:${l.operstate ?? '?'}`);
  const ports = JSON.parse((await runCommand(['bridge', '-n', netns, '-j', 'link', 'show'], { check: true })).stdout || '[]') as { ifname: string; state?: string }[];
  notReady.push(...ports.filter((p) => p.state !== 'forwarding').map((p) => `${p.ifname}:${p.state ?? '?'}`));
  return notReady;
}

/** Creates a topology, optionally with `nodes` nodes of `podsPerNode` pods each. Call destroy() when done. */
export async function createTopology(options: TopologyOptions = {}): Promise<Topology> {
  const topo = new Topology(options);
  try {
    for (let n = 1; n <= (options.nodes ?? 0); n++) {
      const node = await topo.addNode(n, { wait: false });
      for (let i = 0; i < (options.podsPerNode ?? 0); i++) await topo.addPod(node, undefined, { wait: false });
    }
    await topo.waitReady();
  } catch (err) {
    await topo.destroy().catch(() => undefined);
    throw err;
  }
  return topo;
}
