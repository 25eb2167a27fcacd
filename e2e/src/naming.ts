// Pure derivation of every name and address in a test topology, kept apart from the code that runs `ip` so the
// scheme can be unit-tested and so the cluster-in-a-box (which will reuse it for its kubelet) derives the same
// names without creating anything.
//
// Scheme (N = node index 1..250, P = pod index 2..254):
//   underlay netns  <prefix>-net        bridge br0, no address (it only switches between node uplinks)
//   node netns      <prefix>-n<N>       bridge br0 = 10.0.N.1/24, uplink up0 = 10.255.0.N/24, ip_forward=1
//   pod netns       <prefix>-n<N>p<P>   eth0 = 10.0.N.P/24, default via 10.0.N.1
//   node side of a pod's veth: vp<P> (in the node netns); underlay side of node N's uplink: n<N> (in <prefix>-net)
// Interface names are fixed and short because every interface is created directly inside its namespace
// (`ip -n NS link add ... peer name ... netns OTHER`): names only have to be unique per namespace, so they never
// collide with the root namespace or with a parallel test, and they stay far below the 15-character limit.
import { randomBytes } from 'node:crypto';

/** Every Ambit test netns starts with this, so `scripts/cleanup-netns.sh` (default prefix) finds all leftovers. */
export const NETNS_PREFIX_ROOT = 'amb-';
/** Kept short so netns names stay readable in `ip netns list` and in logs. */
export const MAX_PREFIX_LENGTH = 12;
export const MAX_NODE_INDEX = 250;
export const MIN_POD_INDEX = 2;
export const MAX_POD_INDEX = 254;
/** Interface names (same in every namespace of their kind). */
export const BRIDGE_IFACE = 'br0';
export const UPLINK_IFACE = 'up0';
export const POD_IFACE = 'eth0';
export const UNDERLAY_SUBNET = '10.255.0.0/24';

const PREFIX_RE = /^amb-[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Throws unless `prefix` is a short `amb-...` name made of lowercase letters, digits and inner dashes. */
export function validatePrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) {
    throw new Error(`invalid topology prefix "${prefix}": must match ${PREFIX_RE} so scripts/cleanup-netns.sh finds leftovers`);
  }
  if (prefix.length > MAX_PREFIX_LENGTH) {
    throw new Error(`invalid topology prefix "${prefix}": longer than ${MAX_PREFIX_LENGTH} characters`);
  }
}

/** A fresh per-run prefix such as `amb-t3f9a` (4 random hex digits: unlikely to collide with a parallel run). */
export function randomPrefix(tag = 't'): string {
  const prefix = `${NETNS_PREFIX_ROOT}${tag}${randomBytes(2).toString('hex')}`;
  validatePrefix(prefix);
  return prefix;
}

export function checkNodeIndex(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODE_INDEX) throw new Error(`node index ${n} out of range 1..${MAX_NODE_INDEX}`);
}

export function checkPodIndex(p: number): void {
  // .1 is the node's bridge (the pods' gateway), .255 the broadcast address.
  if (!Number.isInteger(p) || p < MIN_POD_INDEX || p > MAX_POD_INDEX) {
    throw new Error(`pod index ${p} out of range ${MIN_POD_INDEX}..${MAX_POD_INDEX}`);
  }
}

export function underlayNetnsName(prefix: string): string {
  return `${prefix}-net`;
}

export function nodeNetnsName(prefix: string, n: number): string {
  checkNodeIndex(n);
  return `${prefix}-n${n}`;
}

export function podNetnsName(prefix: string, n: number, p: number): string {
  checkNodeIndex(n);
  checkPodIndex(p);
  return `${prefix}-n${n}p${p}`;
}

export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

/** True for names this topology (prefix) owns: the prefix itself or `<prefix>-...`, never `<prefix>x...`. */
export function ownsNetns(prefix: string, name: string): boolean {
  return name === prefix || name.startsWith(`${prefix}-`);
}

export function nodeBridgeIp(n: number): string {
  checkNodeIndex(n);
  return `10.0.${n}.1`;
}

export function nodePodCidr(n: number): string {
  checkNodeIndex(n);
  return `10.0.${n}.0/24`;
}

export function nodeUplinkIp(n: number): string {
  checkNodeIndex(n);
  return `10.255.0.${n}`;
}

export function podIp(n: number, p: number): string {
  checkNodeIndex(n);
  checkPodIndex(p);
  return `10.0.${n}.${p}`;
}

/** Node side of pod P's veth, inside the node netns. */
export function podHostIface(p: number): string {
  checkPodIndex(p);
  return `vp${p}`;
}

/** Underlay side of node N's uplink veth, inside the underlay netns. */
export function underlayPortIface(n: number): string {
  checkNodeIndex(n);
  return `n${n}`;
}

/** Route that node `from` needs to reach node `to`'s pods through the underlay. */
export function interNodeRoute(to: number): { dst: string; via: string } {
  return { dst: nodePodCidr(to), via: nodeUplinkIp(to) };
}
