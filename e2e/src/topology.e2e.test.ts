// The shared netns topology, checked end to end as root: 2 nodes x 2 pods, real TCP between pods on the same node
// and across nodes, real PIDs, a capture on the node uplink, and teardown that leaves nothing behind — also when
// the process running the topology fails midway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  BoundedBuffer,
  createTopology,
  isProcessAlive,
  listNetns,
  netnsInode,
  ownsNetns,
  processNetnsInode,
  randomPrefix,
  requireRoot,
  requireTools,
  runCommand,
  runEchoClient,
  startEchoServer,
  waitFor,
  waitForMarker,
  type EchoServer,
  type Topology,
} from './index.js';

const CLEANUP_SCRIPT = fileURLToPath(new URL('../../../scripts/cleanup-netns.sh', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/topology-child.js', import.meta.url));

async function rootLinkNames(): Promise<Set<string>> {
  const links = JSON.parse((await runCommand(['ip', '-j', 'link', 'show'], { check: true })).stdout) as { ifname: string }[];
  return new Set(links.map((l) => l.ifname));
}

describe('netns topology, 2 nodes x 2 pods', () => {
  let topo: Topology;
  let rootLinksBefore: Set<string>;
  let serverN1P2: EchoServer;
  let serverN2P2: EchoServer;

  before(async () => {
    // Fails (does not skip) when not root: see root.ts.
    requireRoot();
    requireTools(['ip', 'bridge', 'nsenter', 'tcpdump', 'sysctl', 'ss']);
    rootLinksBefore = await rootLinkNames();
    topo = await createTopology({ nodes: 2, podsPerNode: 2 });
    serverN1P2 = await startEchoServer(topo, topo.pod(1, 2), { port: 8080 });
    serverN2P2 = await startEchoServer(topo, topo.pod(2, 2), { port: 8080 });
  });

  after(async () => {
    await topo?.destroy();
  });

  test('namespaces, interfaces and addresses follow the 10.0.{node}.{pod} plan with the run prefix', async () => {
    const p = topo.prefix;
    assert.deepEqual(
      listNetns().filter((n) => ownsNetns(p, n)),
      [`${p}-n1`, `${p}-n1p2`, `${p}-n1p3`, `${p}-n2`, `${p}-n2p2`, `${p}-n2p3`, `${p}-net`],
    );
    for (const pod of topo.pods) {
      const addr = await topo.execIn(pod, ['ip', '-4', '-o', 'addr', 'show', 'dev', pod.iface], { check: true });
      assert.match(addr.stdout, new RegExp(`inet ${pod.ip.replaceAll('.', '\\.')}/24 `));
      const route = await topo.execIn(pod, ['ip', 'route', 'show', 'default'], { check: true });
      assert.match(route.stdout, new RegExp(`^default via ${pod.gateway} dev eth0`));
    }
    for (const node of topo.nodes) {
      const other = node.index === 1 ? 2 : 1;
      const addr = await topo.execIn(node, ['ip', '-4', '-o', 'addr', 'show'], { check: true });
      assert.match(addr.stdout, new RegExp(`${node.uplink}\\s+inet ${node.uplinkIp}/24`));
      assert.match(addr.stdout, new RegExp(`br0\\s+inet 10\\.0\\.${node.index}\\.1/24`));
      const routes = await topo.execIn(node, ['ip', 'route'], { check: true });
      assert.match(routes.stdout, new RegExp(`10\\.0\\.${other}\\.0/24 via 10\\.255\\.0\\.${other} dev up0`));
      const fwd = await topo.execIn(node, ['sysctl', '-n', 'net.ipv4.ip_forward'], { check: true });
      assert.equal(fwd.stdout.trim(), '1');
    }
  });

  test('the root namespace gets none of the topology interfaces', async () => {
    const added = [...(await rootLinkNames())].filter((n) => !rootLinksBefore.has(n));
    const ours = /^(up0|br0|eth0|vp\d+|n\d+)$/;
    assert.deepEqual(added.filter((n) => ours.test(n)), []);
  });

  test('same-node pod to pod over TCP is byte exact and the server sees the client pod IP', async () => {
    const client = topo.pod(1, 3);
    const r = await runEchoClient(topo, client, { host: topo.pod(1, 2).ip, bytes: 256 * 1024 });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.receivedBytes, 256 * 1024);
    assert.equal(r.receivedSha, r.sentSha);
    assert.equal(r.serverSawPeer, client.ip);
    assert.equal(r.serverLocal, `${topo.pod(1, 2).ip}:8080`);
    // The server's own log agrees on the peer and on the byte count.
    const closed = await waitFor(() => serverN1P2.events().find((e) => e.event === 'close' && e.peerPort === r.serverSawPeerPort), {
      message: 'server close event',
    });
    assert.deepEqual({ peer: closed.peer, bytes: closed.bytes }, { peer: client.ip, bytes: 256 * 1024 });
  });

  test('cross-node pod to pod over TCP is byte exact and the server sees the client pod IP', async () => {
    const client = topo.pod(1, 2);
    const r = await runEchoClient(topo, client, { host: topo.pod(2, 2).ip, bytes: 1024 * 1024 });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.receivedBytes, 1024 * 1024);
    assert.equal(r.receivedSha, r.sentSha);
    assert.equal(r.serverSawPeer, client.ip);
    assert.equal(r.clientLocal, `${client.ip}:${r.serverSawPeerPort}`);
    // And the other way, from the second pod of node 2 to the first of node 1.
    const back = await runEchoClient(topo, topo.pod(2, 3), { host: topo.pod(1, 2).ip, message: 'back across' });
    assert.equal(back.ok, true, JSON.stringify(back));
    assert.equal(back.serverSawPeer, topo.pod(2, 3).ip);
  });

  test('spawned PIDs are real: in the pod netns, running the program, owning its listening socket', async () => {
    const pod = topo.pod(2, 2);
    const pid = serverN2P2.process.pid;
    assert.equal(processNetnsInode(pid), netnsInode(pod.netns));
    assert.notEqual(processNetnsInode(pid), processNetnsInode(process.pid));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.some((a) => a.endsWith('echo-server.js')), cmdline.join(' '));
    const ss = await topo.execIn(pod, ['ss', '-Htlnp', 'sport = :8080'], { check: true });
    assert.match(ss.stdout, new RegExp(`pid=${pid},`));
    // kill() and waitExit() act on that process: a server started for this test exits on SIGTERM.
    const extra = await startEchoServer(topo, topo.pod(2, 3), { port: 9090 });
    extra.process.kill('SIGTERM');
    assert.deepEqual(await extra.process.waitExit(5000), { code: 0, signal: null });
    assert.equal(isProcessAlive(extra.process.pid), false);
  });

  test('a capture on the node uplink sees a cross-node marker in plaintext, and not same-node traffic', async () => {
    const crossMarker = `AMBIT-CROSS-${topo.prefix}`;
    const localMarker = `AMBIT-LOCAL-${topo.prefix}`;
    const n1 = topo.node(1);
    const cap = await topo.capture(n1, n1.uplink, 'tcp');
    const local = await runEchoClient(topo, topo.pod(1, 3), { host: topo.pod(1, 2).ip, message: localMarker });
    const cross = await runEchoClient(topo, topo.pod(1, 2), { host: topo.pod(2, 2).ip, message: crossMarker });
    assert.equal(local.ok && cross.ok, true, JSON.stringify({ local, cross }));
    await waitForMarker(cap, crossMarker, 5000);
    const result = await cap.stop();
    const hits = result.packetsContaining(crossMarker);
    // The request and its echo: both directions crossed node 1's uplink with the pods' own addresses.
    assert.deepEqual(
      hits.map((p) => `${p.src}>${p.dst}:${p.dstPort}`).sort(),
      [`${topo.pod(1, 2).ip}>${topo.pod(2, 2).ip}:8080`, `${topo.pod(2, 2).ip}>${topo.pod(1, 2).ip}:${cross.serverSawPeerPort}`].sort(),
      result.summary(),
    );
    assert.equal(result.contains(localMarker), false, 'same-node traffic must not cross the uplink');
  });

  test('execIn is bounded by its timeout and leaves no process behind', async () => {
    const started = Date.now();
    await assert.rejects(topo.execIn(topo.pod(1, 3), ['sh', '-c', 'sleep 60 & sleep 60; wait'], { timeoutMs: 300 }), /timed out after 300 ms/);
    assert.ok(Date.now() - started < 5000);
    await waitFor(() => topo.leftovers().pids.every((pid) => !readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep')), {
      timeoutMs: 5000,
      message: 'the timed-out sleeps to be gone',
    });
  });

  test('operations on names outside the topology are refused', async () => {
    assert.throws(() => topo.execIn('ntx-other', ['true']), /does not belong to topology/);
    await assert.rejects(topo.spawnIn(`${topo.prefix}x-n1`, ['true']), /does not belong to topology/);
  });
});

describe('netns topology teardown', () => {
  before(() => {
    requireRoot();
  });

  test('destroy() kills every process, forked ones included, and deletes every namespace', async () => {
    const topo = await createTopology({ nodes: 2, podsPerNode: 1 });
    const proc = await topo.spawnIn(topo.pod(1, 2), ['sh', '-c', 'sleep 1000 & echo $!; wait']);
    const grandchild = Number((await proc.waitForOutput(/^\d+$/m)).trim());
    const tcpdump = await topo.capture(topo.node(2), 'up0', 'tcp');
    assert.ok(isProcessAlive(grandchild) && isProcessAlive(tcpdump.process.pid));
    await topo.destroy();
    assert.deepEqual(topo.leftovers(), { netns: [], pids: [] });
    assert.deepEqual(listNetns().filter((n) => ownsNetns(topo.prefix, n)), []);
    for (const pid of [proc.pid, grandchild, tcpdump.process.pid]) assert.equal(isProcessAlive(pid), false, `pid ${pid}`);
    await topo.destroy(); // idempotent
    await assert.rejects(topo.addNode(), /was destroyed/);
  });

  test('a test that throws midway still gets its topology torn down by its after hook', async () => {
    let topo: Topology | undefined;
    const failingTest = async () => {
      topo = await createTopology({ nodes: 1, podsPerNode: 1 });
      await topo.spawnIn(topo.pod(1, 2), ['sleep', '1000']);
      throw new Error('assertion failed midway');
    };
    await assert.rejects(failingTest(), /midway/);
    const pids = topo!.processes().map((p) => p.pid);
    await topo!.destroy(); // what the test file's after() does
    assert.deepEqual(topo!.leftovers(), { netns: [], pids: [] });
    assert.ok(pids.every((pid) => !isProcessAlive(pid)));
  });

  // The process that owns a topology dies in each of these ways; nothing with its prefix may survive it.
  for (const how of ['uncaught exception', 'unhandled rejection', 'SIGTERM', 'SIGINT'] as const) {
    test(`a topology is cleaned up when its process dies of ${how}`, async () => {
      const prefix = randomPrefix('c');
      const mode = how === 'uncaught exception' ? 'throw' : how === 'unhandled rejection' ? 'reject' : 'wait';
      const child = startChild(prefix, mode);
      const info = await child.info();
      assert.ok(info.pids.every(isProcessAlive), 'pod processes run before the failure');
      if (mode === 'wait') child.proc.kill(how as NodeJS.Signals);
      else child.proc.stdin!.write('fail now\n');
      const exit = await child.exit();
      if (mode === 'wait') assert.equal(exit.signal, how, `died of the re-raised ${how}`);
      else assert.equal(exit.code, 1);
      assert.deepEqual(listNetns().filter((n) => ownsNetns(prefix, n)), []);
      assert.deepEqual(info.pids.filter(isProcessAlive), []);
    });
  }

  test('after a SIGKILL (no handler can run), scripts/cleanup-netns.sh removes the leftovers', async () => {
    const prefix = randomPrefix('c');
    const child = startChild(prefix, 'wait');
    const info = await child.info();
    child.proc.kill('SIGKILL');
    await child.exit();
    assert.equal(listNetns().filter((n) => ownsNetns(prefix, n)).length, 3, 'SIGKILL leaves the netns behind');
    assert.ok(info.pids.some(isProcessAlive), 'and the processes in it');
    const r = await runCommand(['bash', CLEANUP_SCRIPT, prefix], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deleted 3 netns/);
    assert.deepEqual(listNetns().filter((n) => ownsNetns(prefix, n)), []);
    await waitFor(() => info.pids.every((pid) => !isProcessAlive(pid)), { timeoutMs: 5000, message: 'leftover processes gone' });
    // Nothing left: a second run is a no-op.
    assert.match((await runCommand(['bash', CLEANUP_SCRIPT, prefix], { check: true })).stdout, /nothing to clean/);
  });
});

/** Runs fixtures/topology-child.js, bounded: info() waits for its JSON line, exit() for its end (15 s each). */
function startChild(prefix: string, mode: 'throw' | 'reject' | 'wait') {
  const proc: ChildProcess = spawn(process.execPath, [CHILD, prefix, mode], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new BoundedBuffer(1 << 16);
  const err = new BoundedBuffer(1 << 16);
  proc.stdout!.on('data', (c: Buffer) => out.push(c));
  proc.stderr!.on('data', (c: Buffer) => err.push(c));
  let status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  proc.on('exit', (code, signal) => (status = { code, signal }));
  return {
    proc,
    info: () =>
      waitFor(
        () => {
          const line = out.toString().split('\n').find((l) => l.startsWith('{'));
          if (line) return JSON.parse(line) as { prefix: string; pids: number[]; netns: string[] };
          if (status) throw new Error(`child exited early: ${err.toString()}`);
          return undefined;
        },
        { timeoutMs: 15_000, message: `topology-child ${prefix} to report its topology` },
      ),
    exit: () => waitFor(() => status, { timeoutMs: 15_000, message: `topology-child ${prefix} to exit` }),
  };
}
