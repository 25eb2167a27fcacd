// Root-only: real sockets through the in-pod redirection rules, in two network namespaces joined by a veth.
// The test process stays in the root netns and creates every socket inside `pod` or `peer` through the addon,
// which is exactly how the node agent works.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, statSync } from 'node:fs';
import type net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_SOCKET_MARK, PORTS } from '@ambit/api';
import { getMark, getOriginalDst, listenInNetns, socketInNetns } from './addon.js';
import { applyPodRedirection, checkPodRedirection } from './pod-redirection.js';
import { connectInNetns, createServerInNetns, getSocketFd, getSocketOriginalDst } from './sockets.js';
import { createTestTopology, type TestTopology } from './testing/netns-topology.js';
import { nextConnection, readBytes, waitFor, waitForEvent } from './testing/wait.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
let topo: TestTopology;
const cleanups: Array<() => void> = [];
const track = <T extends net.Server | net.Socket>(x: T): T => {
  cleanups.push(() => { if ('destroy' in x) x.destroy(); else x.close(); });
  return x;
};
const cleanupSockets = (): void => { for (const c of cleanups.splice(0)) { try { c(); } catch { /* closed */ } } };

before(async () => {
  topo = createTestTopology('sk');
  await applyPodRedirection({ netns: topo.pod.path, ipv6: true });
});
after(() => {
  cleanupSockets();
  topo?.destroy();
});

/** The agent's listeners in the pod, as ztunnel creates them: marked, transparent, SO_REUSEPORT. */
async function agentListener(port: number, options: { transparent?: boolean; host?: string } = {}): Promise<net.Server> {
  return track(await createServerInNetns({
    netns: topo.pod.path, port, host: options.host, mark: AGENT_SOCKET_MARK, transparent: options.transparent,
  }));
}

test('outbound: an app connection is REDIRECTed to 15001 and SO_ORIGINAL_DST returns the real destination', async (t) => {
  t.after(cleanupSockets);
  const outbound = await agentListener(PORTS.outbound);
  const accepted = nextConnection(outbound, 'pod:15001');
  // The app: an unmarked socket in the pod netns dialing the peer.
  const app = track(connectInNetns({ netns: topo.pod.path, host: topo.peer.ip, port: 8080 }));
  const conn = track(await accepted);
  assert.deepEqual(getSocketOriginalDst(conn), { address: topo.peer.ip, port: 8080, family: 'IPv4' });
  assert.equal(conn.localPort, PORTS.outbound);
  assert.equal(conn.remoteAddress, topo.pod.ip);
  app.write('hello');
  assert.equal(await readBytes(conn, 5, 'captured connection'), 'hello');
});

test('outbound IPv6, and IPv4 on a dual-stack listener: original destination for both families', async (t) => {
  t.after(cleanupSockets);
  const outbound = await agentListener(PORTS.outbound, { host: '::' });
  let accepted = nextConnection(outbound, 'pod:[::]:15001');
  track(connectInNetns({ netns: topo.pod.path, host: topo.peer.ip6, port: 8080 }));
  assert.deepEqual(getSocketOriginalDst(track(await accepted)), { address: topo.peer.ip6, port: 8080, family: 'IPv6' });
  accepted = nextConnection(outbound, 'pod:[::]:15001');
  track(connectInNetns({ netns: topo.pod.path, host: topo.peer.ip, port: 8081 }));
  assert.deepEqual(getSocketOriginalDst(track(await accepted)), { address: topo.peer.ip, port: 8081, family: 'IPv4' });
});

test('agent-marked sockets (0x539) are not captured and reach the peer directly', async (t) => {
  t.after(cleanupSockets);
  const outbound = await agentListener(PORTS.outbound);
  let captured = 0;
  outbound.on('connection', () => { captured++; });
  const upstream = track(await createServerInNetns({ netns: topo.peer.path, host: topo.peer.ip, port: 8080 }));
  const accepted = nextConnection(upstream, 'peer:8080');
  const client = track(connectInNetns({ netns: topo.pod.path, host: topo.peer.ip, port: 8080, mark: AGENT_SOCKET_MARK }));
  await waitForEvent(client, 'connect', 'marked client');
  assert.equal(getMark(getSocketFd(client)), AGENT_SOCKET_MARK);
  const conn = track(await accepted);
  assert.equal(conn.remoteAddress, topo.pod.ip);
  assert.equal(conn.localPort, 8080);
  // Not NATed: the peer netns has no rules, so there is no original destination to report.
  const od = getOriginalDst(getSocketFd(conn));
  assert.ok(od === null || (od.address === topo.peer.ip && od.port === 8080), JSON.stringify(od));
  assert.equal(captured, 0);
});

test('inbound plaintext: TPROXY to a transparent 15006 listener keeps the original destination as localAddress', async (t) => {
  t.after(cleanupSockets);
  const inbound = await agentListener(PORTS.inboundPlaintext, { transparent: true });
  const accepted = nextConnection(inbound, 'pod:15006');
  track(connectInNetns({ netns: topo.peer.path, host: topo.pod.ip, port: 9090 }));
  const conn = track(await accepted);
  assert.equal(conn.localAddress, topo.pod.ip);
  assert.equal(conn.localPort, 9090);
  assert.equal(conn.remoteAddress, topo.peer.ip);
});

test('inbound HBONE: connections to pod:15008 reach the 15008 listener, not 15006', async (t) => {
  t.after(cleanupSockets);
  const inbound = await agentListener(PORTS.inboundPlaintext, { transparent: true });
  let misrouted = 0;
  inbound.on('connection', () => { misrouted++; });
  const hbone = await agentListener(PORTS.hbone, { transparent: true });
  const accepted = nextConnection(hbone, 'pod:15008');
  const client = track(connectInNetns({ netns: topo.peer.path, host: topo.pod.ip, port: PORTS.hbone }));
  const conn = track(await accepted);
  assert.equal(conn.localAddress, topo.pod.ip);
  assert.equal(conn.localPort, PORTS.hbone);
  conn.write('ok');
  assert.equal(await readBytes(client, 2, 'HBONE client'), 'ok');
  assert.equal(misrouted, 0);
});

test('source preservation: bindFd with IP_TRANSPARENT makes the app see the client IP, and replies return', async (t) => {
  t.after(cleanupSockets);
  // The app, listening in the pod (unmarked, as any workload).
  const app = track(await createServerInNetns({ netns: topo.pod.path, port: 8081 }));
  const accepted = nextConnection(app, 'app pod:8081');
  // The agent delivering an inbound connection as if it came from the peer.
  const agent = track(connectInNetns({
    netns: topo.pod.path, host: topo.pod.ip, port: 8081, mark: AGENT_SOCKET_MARK, transparent: true,
    localAddress: topo.peer.ip,
  }));
  const conn = track(await accepted);
  assert.equal(conn.remoteAddress, topo.peer.ip);
  // The reply is routed back to the agent's spoofed socket by connmark 0x111 and table 133, not out of eth0.
  conn.write('pong');
  assert.equal(await readBytes(agent, 4, 'agent delivery socket'), 'pong');
  assert.equal(agent.localAddress, topo.peer.ip);
});

test('a /proc/PID/ns/net path works like a /var/run/netns path, for sockets and for rules', async (t) => {
  t.after(cleanupSockets);
  // nsenter execs (no fork) for --net alone, so the child's pid is a process inside the pod netns.
  const holder = spawn('nsenter', [`--net=${topo.pod.path}`, '--', 'cat'], { stdio: ['pipe', 'ignore', 'inherit'] });
  t.after(() => { holder.kill(); });
  await waitForEvent(holder, 'spawn', 'nsenter cat');
  const procPath = `/proc/${holder.pid}/ns/net`;
  // 'spawn' fires before nsenter has called setns(); until then the pid is still in the root netns.
  const podInode = statSync(topo.pod.path).ino;
  await waitFor(() => { try { return statSync(procPath).ino === podInode; } catch { return false; } }, `${procPath} in the pod netns`);
  assert.deepEqual((await checkPodRedirection({ netns: procPath, ipv6: true })).summary, []);
  // TPROXY (also on 15008) only delivers to transparent listeners.
  const server = track(await createServerInNetns({ netns: procPath, port: PORTS.hbone, transparent: true }));
  const accepted = nextConnection(server, 'pod:15008 via /proc path');
  track(connectInNetns({ netns: topo.peer.path, host: topo.pod.ip, port: PORTS.hbone }));
  assert.equal(track(await accepted).localAddress, topo.pod.ip);
});

test('SO_REUSEPORT: a second fd and a second process bind the same port in the same netns', async () => {
  const first = listenInNetns(topo.pod.path, '0.0.0.0', 15101, { mark: AGENT_SOCKET_MARK });
  const second = listenInNetns(topo.pod.path, '0.0.0.0', 15101, { mark: AGENT_SOCKET_MARK });
  try {
    // A new agent process taking over while the old one still listens (ztunnel upgrade).
    const child = spawnSync(process.execPath, ['--input-type=module', '-e',
      `import { listenInNetns } from '@ambit/netns'; process.stdout.write(String(listenInNetns(${JSON.stringify(topo.pod.path)}, '0.0.0.0', 15101)));`],
    { cwd: packageRoot, encoding: 'utf8', timeout: 10_000 });
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /^\d+$/);
    // Without SO_REUSEPORT the port is taken, and the error says what to do.
    assert.throws(() => listenInNetns(topo.pod.path, '0.0.0.0', 15101, { reusePort: false }), {
      code: 'EADDRINUSE', syscall: 'bind',
      message: `bind(netns ${topo.pod.path}, 0.0.0.0:15101): Address already in use — another socket holds this address; both must set SO_REUSEPORT to share it`,
    });
  } finally {
    closeSync(first);
    closeSync(second);
  }
});

test('errors name the call, the path and a likely cause', () => {
  assert.throws(() => socketInNetns('/etc/hostname', 4), {
    code: 'EINVAL', syscall: 'setns', message: 'setns(/etc/hostname): Invalid argument — the path is not a network namespace',
  });
  assert.throws(() => listenInNetns(`/var/run/netns/${topo.pod.name}-gone`, '0.0.0.0', 15001), {
    code: 'ENOENT', message: new RegExp(`^open\\(/var/run/netns/${topo.pod.name}-gone\\): No such file or directory`),
  });
  // Unprivileged: setns and SO_MARK fail with the capability to grant.
  const script = `
    import { socketInNetns, listenInNetns, setMark, checkPrivileges } from '@ambit/netns';
    const out = [];
    try { socketInNetns('/proc/self/ns/net', 4); } catch (e) { out.push(e.message); }
    try { listenInNetns('/proc/1/ns/net', '0.0.0.0', 15001); } catch (e) { out.push(e.message); }
    out.push(checkPrivileges().missing.join(','));
    console.log(JSON.stringify(out));`;
  const child = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath,
    '--input-type=module', '-e', script], { cwd: packageRoot, encoding: 'utf8', timeout: 10_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), [
    'setns(/proc/self/ns/net): Operation not permitted — the agent needs CAP_SYS_ADMIN',
    "open(/proc/1/ns/net): Permission denied — the agent needs root to open another process's netns",
    'CAP_NET_ADMIN,CAP_SYS_ADMIN',
  ]);
});

test('SO_MARK without CAP_NET_ADMIN names the capability', () => {
  const script = `
    import net from 'node:net';
    import { setMark, setTransparent, getSocketFd } from '@ambit/netns';
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const out = [];
      try { setMark(getSocketFd(s), 0x539); } catch (e) { out.push(e.code + ' ' + e.message.replace(/\\(\\d+,/, '(FD,')); }
      try { setTransparent(getSocketFd(s)); } catch (e) { out.push(e.message.replace(/\\(\\d+,/, '(FD,')); }
      console.log(JSON.stringify(out));
      s.close();
    });`;
  const child = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath,
    '--input-type=module', '-e', script], { cwd: packageRoot, encoding: 'utf8', timeout: 10_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), [
    'EPERM setsockopt(FD, SO_MARK, 0x539): Operation not permitted — the agent needs CAP_NET_ADMIN',
    'setsockopt(FD, IP_TRANSPARENT, 1): Operation not permitted — the agent needs CAP_NET_ADMIN',
  ]);
});
