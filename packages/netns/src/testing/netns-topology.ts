// Test topology for the root-only e2e tests: two network namespaces joined by one veth pair, `pod` (10.0.1.1,
// fd00:0:1::1) and `peer` (10.0.1.2, fd00:0:1::2). Both veth ends are created directly inside the namespaces, so
// the root namespace's links, addresses, routes and rules are never touched. Names carry `ntx-<pid>-<tag>` so that
// parallel runs do not collide and leftovers are easy to find (`ip netns list | grep ntx-`; cleanup:
// `ip netns list | awk '/^ntx-/{print $1}' | xargs -rn1 ip netns del`).
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

export interface TestTopology {
  pod: { name: string; path: string; ip: string; ip6: string };
  peer: { name: string; path: string; ip: string; ip6: string };
  /** Deletes both namespaces (and with them every rule, route and socket bound there); safe to call twice. */
  destroy(): void;
}

/** Fails (never skips) when not root: an e2e test that did not run must not look green. */
export function assertRoot(): void {
  assert.equal(process.getuid?.(), 0, 'this e2e test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces');
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command in a named test netns and returns stdout. */
export function inNetns(name: string, ...argv: string[]): string {
  return execFileSync('ip', ['netns', 'exec', name, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const live = new Set<string>();
process.on('exit', () => {
  for (const name of live) { try { ip('netns', 'del', name); } catch { /* already gone */ } }
});

export function createTestTopology(tag: string): TestTopology {
  assertRoot();
  const base = `ntx-${process.pid}-${tag}`;
  const pod = { name: `${base}-pod`, path: `/var/run/netns/${base}-pod`, ip: '10.0.1.1', ip6: 'fd00:0:1::1' };
  const peer = { name: `${base}-peer`, path: `/var/run/netns/${base}-peer`, ip: '10.0.1.2', ip6: 'fd00:0:1::2' };
  const destroy = (): void => {
    for (const ns of [pod.name, peer.name]) {
      if (!live.has(ns)) continue;
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
      live.delete(ns);
    }
  };
  try {
    for (const ns of [pod, peer]) {
      ip('netns', 'add', ns.name);
      live.add(ns.name);
      ip('-n', ns.name, 'link', 'set', 'lo', 'up');
    }
    ip('-n', pod.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer.name);
    for (const ns of [pod, peer]) {
      ip('-n', ns.name, 'addr', 'add', `${ns.ip}/24`, 'dev', 'eth0');
      ip('-n', ns.name, '-6', 'addr', 'add', `${ns.ip6}/64`, 'dev', 'eth0', 'nodad');
      ip('-n', ns.name, 'link', 'set', 'eth0', 'up');
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return { pod, peer, destroy };
}
