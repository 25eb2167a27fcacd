// The kubelet's pod runtime without an API server: real netns, the real CNI chain from a conf dir (ambit-bridge
// then a chained plugin that records its prevResult), real processes, probes, restarts and teardown. The tests
// that need kube-apiserver (DaemonSet, EndpointSlices, ...) come with the control plane.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { createTopology, type Topology } from '../topology.js';
import { requireRoot, requireTools } from '../root.js';
import { listNetns, pidsInNetns, isProcessAlive } from '../netns.js';
import { waitFor } from '../wait.js';
import { runEchoClient } from '../echo.js';
import { createCniRuntime } from './cni-runtime.js';
import { createImageRegistry } from './image-registry.js';
import { PodWorker, type PodWorkerDeps } from './pod-worker.js';
import { createSandboxManager } from './sandbox.js';
import { buildPodStatus } from './status.js';

const BIN_DIR = fileURLToPath(new URL('../../../bin', import.meta.url));

let topo: Topology;
let dir: string;
const events: { uid: string; type: string; reason: string; message: string }[] = [];

function conflist(node: number, extra: object[] = []): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'ambit-e2e',
    plugins: [
      { type: 'ambit-bridge', bridge: 'br0', hostNetns: topo.node(node).netns, ipam: { subnet: topo.node(node).podCidr, gateway: topo.node(node).bridgeIp, dataDir: join(dir, `ipam-n${node}`) } },
      ...extra,
    ],
  });
}

function makeDeps(node: number, confDir: string, notify: () => void, uid: string): PodWorkerDeps {
  const cni = createCniRuntime({ confDir, binDirs: [BIN_DIR, join(dir, 'bin')] });
  return {
    topology: topo,
    nodeNetns: topo.node(node).netns,
    nodeName: `node-${node}`,
    hostIP: topo.node(node).uplinkIp,
    nodeAllocatable: { cpu: '4', memory: '8Gi' },
    sandboxes: createSandboxManager({ prefix: topo.prefix, nodeIndex: node, cni }),
    images: createImageRegistry(),
    podsDir: join(dir, 'pods'),
    notify,
    event: (type, reason, message) => events.push({ uid, type, reason, message }),
    restartBackoff: { baseMs: 200, maxMs: 2000 },
    log: () => undefined,
  };
}

function pod(name: string, uid: string, containers: V1Pod['spec'] extends infer S ? (S extends { containers: infer C } ? C : never) : never, extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return { metadata: { name, namespace: 'default', uid }, spec: { containers, nodeName: 'node-1', terminationGracePeriodSeconds: 2, ...extra } };
}

/** Runs sync whenever the worker asks, like the kubelet's queue would. */
function drive(worker: PodWorker, p: V1Pod): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const loop = async () => {
    if (stopped) return;
    const r = await worker.sync(p);
    if (r.requeueAfterMs !== undefined && !stopped) timer = setTimeout(() => void loop(), r.requeueAfterMs);
  };
  (worker as unknown as { kick: () => void }).kick = () => void loop();
  void loop();
  return { stop: () => { stopped = true; clearTimeout(timer); } };
}

before(async () => {
  requireRoot();
  requireTools(['ip', 'nsenter', 'bridge']);
  topo = await createTopology({ nodes: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ambit-kubelet-e2e-'));
  // A chained plugin that records the prevResult it was given and hands it on, as the Ambit CNI plugin does.
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'record-prev'), `#!/bin/sh\nset -e\nIN=$(cat)\necho "$CNI_COMMAND $IN" >> ${join(dir, 'record.log')}\nif [ "$CNI_COMMAND" = ADD ]; then echo "$IN" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const c=JSON.parse(s);process.stdout.write(JSON.stringify(c.prevResult))})'; fi\n`);
  writeFileSync(join(dir, 'bin', 'fail-add'), `#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then echo '{"cniVersion":"1.0.0","code":100,"msg":"injected failure for the test"}'; exit 1; fi\n`);
  for (const f of ['record-prev', 'fail-add']) chmodSync(join(dir, 'bin', f), 0o755);
});

after(async () => {
  await topo?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('pods on two nodes get a netns, an address from the node CIDR via the CNI chain, and talk across nodes', async () => {
  const confDirs = [1, 2].map((n) => {
    const d = join(dir, `conf-n${n}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, '10-ambit.conflist'), conflist(n, [{ type: 'record-prev' }]));
    return d;
  });
  const server = pod('echo', 'uid-echo-1', [{ name: 'echo', image: 'ambit/echo:latest', readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }]);
  const sw = new PodWorker(server, makeDeps(2, confDirs[1]!, () => (sw as unknown as { kick: () => void }).kick(), 'uid-echo-1'));
  const sd = drive(sw, server);
  try {
    await waitFor(() => sw.snapshot(server).containers[0]?.ready, { timeoutMs: 20_000, message: 'echo pod ready by its tcp readiness probe' });
    const sb = sw.sandbox!;
    assert.match(sb.netns, new RegExp(`^${topo.prefix}-n2p\\d+$`));
    assert.equal(sb.podIP, `10.0.2.${sb.podIndex}`);
    assert.equal(sb.result.ips?.[0]?.address, `${sb.podIP}/24`);
    assert.ok(listNetns().includes(sb.netns));
    // The chained plugin saw the primary plugin's result as prevResult, in the list's cniVersion.
    const record = readFileSync(join(dir, 'record.log'), 'utf8');
    const addLine = record.split('\n').find((l) => l.startsWith('ADD '))!;
    const conf = JSON.parse(addLine.slice(4)) as { name: string; cniVersion: string; prevResult: { ips: { address: string }[] } };
    assert.equal(conf.name, 'ambit-e2e');
    assert.equal(conf.cniVersion, '1.0.0');
    assert.equal(conf.prevResult.ips[0]!.address, `${sb.podIP}/24`);

    const status = buildPodStatus(server, sw.snapshot(server), new Date());
    assert.equal(status.phase, 'Running');
    assert.equal(status.podIP, sb.podIP);
    assert.equal(status.conditions?.find((c) => c.type === 'Ready')?.status, 'True');

    // A static topology pod on node 1 reaches the kubelet's pod on node 2 through the underlay.
    const client = await topo.addPod(1);
    const r = await runEchoClient(topo, client, { host: sb.podIP, message: 'hello-kubelet' });
    assert.equal(r.ok, true, r.error);
    assert.equal(r.serverSawPeer, client.ip);

    // Deletion: processes gone, CNI DEL ran through the chain (backwards), netns and host veth gone.
    const pids = sw.pids();
    assert.equal(pids.length, 1);
    await sw.terminate(2000);
    assert.equal(pids.some(isProcessAlive), false);
    assert.deepEqual(pidsInNetns(new Set([sb.inode])), []);
    assert.equal(listNetns().includes(sb.netns), false);
    assert.match(readFileSync(join(dir, 'record.log'), 'utf8'), /^DEL /m);
    const links = await topo.execIn(topo.node(2), ['ip', '-o', 'link', 'show']);
    assert.doesNotMatch(links.stdout, new RegExp(`\\bvp${sb.podIndex}@`));
  } finally {
    sd.stop();
    await sw.terminate(0);
  }
});

test('a failing chained plugin leaves the pod without a sandbox, the error in an event, and nothing leaked', async () => {
  const d = join(dir, 'conf-fail');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, '10-ambit.conflist'), conflist(1, [{ type: 'fail-add' }]));
  const p = pod('broken', 'uid-broken', [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }]);
  const before = listNetns().filter((n) => n.startsWith(`${topo.prefix}-n1p`));
  const w = new PodWorker(p, makeDeps(1, d, () => undefined, 'uid-broken'));
  const r = await w.sync(p);
  assert.ok(r.requeueAfterMs !== undefined && r.requeueAfterMs > 0, 'retried later with backoff');
  assert.equal(w.sandbox, undefined);
  assert.equal(w.pids().length, 0);
  const ev = events.find((e) => e.uid === 'uid-broken' && e.reason === 'FailedCreatePodSandBox');
  assert.ok(ev, 'a FailedCreatePodSandBox event');
  assert.match(ev.message, /fail-add.*injected failure for the test/);
  const status = buildPodStatus(p, w.snapshot(p), new Date());
  assert.equal(status.phase, 'Pending');
  assert.equal(status.containerStatuses?.[0]?.state?.waiting?.reason, 'ContainerCreating');
  // The failed ADD was rolled back: no new netns, and the address was released (the IPAM dir is empty again).
  assert.deepEqual(listNetns().filter((n) => n.startsWith(`${topo.prefix}-n1p`)), before);
  const ipamDir = join(dir, 'ipam-n1', 'ambit-e2e');
  assert.deepEqual(existsSync(ipamDir) ? readdirSync(ipamDir) : [], []);
});

test('unknown image: ErrImagePull then ImagePullBackOff, a Failed event, the kubelet keeps going', async () => {
  const d = join(dir, 'conf-n1-plain');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, '10-ambit.conflist'), conflist(1));
  const p = pod('nope', 'uid-nope', [{ name: 'c', image: 'example.com/does-not-exist:1.0' }]);
  const w = new PodWorker(p, makeDeps(1, d, () => undefined, 'uid-nope'));
  try {
    await w.sync(p);
    let st = w.snapshot(p).containers[0]!;
    assert.equal(st.state.waiting?.reason, 'ErrImagePull');
    assert.match(st.state.waiting?.message ?? '', /example\.com\/does-not-exist/);
    assert.ok(events.some((e) => e.uid === 'uid-nope' && e.reason === 'Failed' && /Failed to pull image/.test(e.message)));
    await waitFor(async () => {
      await w.sync(p);
      return w.snapshot(p).containers[0]!.state.waiting?.reason === 'ImagePullBackOff';
    }, { timeoutMs: 5000, message: 'ImagePullBackOff' });
    st = w.snapshot(p).containers[0]!;
    assert.equal(st.ready, false);
    assert.equal(buildPodStatus(p, w.snapshot(p), new Date()).phase, 'Pending');
  } finally {
    await w.terminate(0);
  }
});

test('a crashing container restarts with backoff; liveness failure restarts; Never leaves it terminated; env has downward API fields', async () => {
  const d = join(dir, 'conf-n1-plain');
  const marker = join(dir, 'alive-flag');
  writeFileSync(marker, 'x');
  const p = pod('lifecycle', 'uid-life', [
    { name: 'crash', image: 'busybox', command: ['sh', '-c', 'echo "$POD_NAME $POD_IP $NODE" > ' + join(dir, 'env.out') + '; exit 3'], env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'NODE', value: '$(POD_NAME)-on-node' },
    ] },
    { name: 'live', image: 'registry.k8s.io/pause', livenessProbe: { exec: { command: ['test', '-e', marker] }, periodSeconds: 1, failureThreshold: 1 } },
  ]);
  let w!: PodWorker;
  w = new PodWorker(p, makeDeps(1, d, () => (w as unknown as { kick?: () => void }).kick?.(), 'uid-life'));
  const dr = drive(w, p);
  try {
    await waitFor(() => (w.snapshot(p).containers[0]?.restartCount ?? 0) >= 2, { timeoutMs: 15_000, message: 'crash container restarted twice' });
    const crash = w.snapshot(p).containers[0]!;
    assert.equal(crash.lastState?.terminated?.exitCode, 3);
    const ip = w.sandbox!.podIP;
    assert.equal(readFileSync(join(dir, 'env.out'), 'utf8').trim(), `lifecycle ${ip} lifecycle-on-node`);

    const live0 = w.snapshot(p).containers[1]!;
    assert.ok(live0.state.running);
    rmSync(marker);
    await waitFor(() => w.snapshot(p).containers[1]!.restartCount >= 1, { timeoutMs: 15_000, message: 'liveness failure restarts the container' });
    assert.ok(events.some((e) => e.uid === 'uid-life' && e.reason === 'Killing' && /liveness/.test(e.message)));
  } finally {
    dr.stop();
    await w.terminate(1000);
  }
  const never = pod('once', 'uid-once', [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'exit 0'] }], { restartPolicy: 'Never' });
  let w2!: PodWorker;
  w2 = new PodWorker(never, makeDeps(1, d, () => (w2 as unknown as { kick?: () => void }).kick?.(), 'uid-once'));
  const dr2 = drive(w2, never);
  try {
    await waitFor(() => w2.finished(never), { timeoutMs: 10_000, message: 'restartPolicy Never container terminated' });
    const st = buildPodStatus(never, w2.snapshot(never), new Date());
    assert.equal(st.phase, 'Succeeded');
    assert.equal(st.containerStatuses?.[0]?.state?.terminated?.reason, 'Completed');
  } finally {
    dr2.stop();
    await w2.terminate(0);
  }
});
