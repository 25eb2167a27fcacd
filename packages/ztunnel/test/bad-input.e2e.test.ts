// Bad input at the agent's doors, as root in network namespaces: each gets the documented status or a closed
// connection and one log line with a reason; the agent keeps serving everyone else.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import tls from 'node:tls';
import { startEchoServer, waitFor } from '@ambit/e2e';
import { HboneClient, HboneError, type Credentials } from '@ambit/hbone';
import { connectInNetns } from '@ambit/netns';
import { AGENT_MAIN, Testbed, exchange, type PodDef } from './testbed.js';

const PODS: PodDef[] = [
  { node: 1, index: 2, name: 'sleep', namespace: 'default', serviceAccount: 'sleep', captured: true },
  { node: 2, index: 2, name: 'echo', namespace: 'default', serviceAccount: 'echo', captured: true },
  { node: 2, index: 3, name: 'outsider', namespace: 'legacy', serviceAccount: 'outsider', captured: false },
];

let bed: Testbed;
let creds: Credentials;

before(async () => {
  bed = await Testbed.create(PODS, { nodes: 2 });
  await startEchoServer(bed.topo, bed.pod('echo'), { port: 8080 });
  await bed.startAgent(1);
  await bed.startAgent(2);
  await bed.enrollAll();
  const c = await bed.ca.issueWorkloadCertificate('spiffe://cluster.local/ns/legacy/sa/outsider');
  creds = { identity: c.identity, keyPem: c.keyPem, certChainPem: c.certChainPem, rootsPem: c.rootsPem };
});

after(async () => {
  await bed?.close();
});

const echoIp = () => bed.pod('echo').ip;
const agent2Lines = () => bed.accessLog(bed.agents.get(2)!);
function logLines(node: number, msg: string): Array<Record<string, unknown>> {
  const a = bed.agents.get(node)!;
  return bed.allLogLines(a).filter((l) => l.msg === msg);
}

async function stillServes(): Promise<void> {
  const r = await exchange(bed.connectFrom('sleep', echoIp(), 8080), 'still fine');
  assert.equal(r.echo, 'still fine');
}

/** A TLS connection to the echo pod's 15008 from the uncaptured pod (not redirected: straight to the agent). */
function tlsFromOutsider(options: tls.ConnectionOptions): tls.TLSSocket {
  const raw = connectInNetns({ netns: bed.pod('outsider').nsPath, host: echoIp(), port: 15008 });
  const s = tls.connect({ socket: raw, ca: creds.rootsPem, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined, ALPNProtocols: ['h2'], ...options });
  s.on('error', () => {});
  return s;
}

test('non-TLS bytes to 15008 get a closed connection and one log line', async () => {
  const before = logLines(2, 'HBONE TLS handshake refused').length;
  const s = connectInNetns({ netns: bed.pod('outsider').nsPath, host: echoIp(), port: 15008 });
  s.on('error', () => {});
  s.once('connect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await waitFor(() => s.destroyed || s.readableEnded, { timeoutMs: 5000, message: 'the agent to close the connection' });
  await waitFor(() => logLines(2, 'HBONE TLS handshake refused').length === before + 1, { timeoutMs: 5000, message: 'one log line' });
  assert.match(String(logLines(2, 'HBONE TLS handshake refused').pop()!.reason), /not a TLS client/);
  await stillServes();
});

test('TLS without a client certificate is refused', async () => {
  const before = logLines(2, 'HBONE TLS handshake refused').length;
  const s = tlsFromOutsider({});
  await waitFor(() => s.destroyed, { timeoutMs: 5000, message: 'the agent to close the connection' });
  await waitFor(() => logLines(2, 'HBONE TLS handshake refused').length === before + 1, { timeoutMs: 5000, message: 'one log line' });
  assert.equal(logLines(2, 'HBONE TLS handshake refused').pop()!.reason, 'client presented no certificate');
  await stillServes();
});

test('HTTP/2 without CONNECT gets 400', async () => {
  const session = http2.connect(`https://${echoIp()}:15008`, { createConnection: () => tlsFromOutsider({ key: creds.keyPem, cert: creds.certChainPem.join('') }) });
  session.on('error', () => {});
  try {
    const req = session.request({ ':method': 'GET', ':path': '/', ':authority': `${echoIp()}:8080` });
    const status = await new Promise<number>((r) => req.once('response', (h) => r(Number(h[':status']))));
    req.resume();
    assert.equal(status, 400);
  } finally {
    session.destroy();
  }
  await stillServes();
});

test('CONNECT to the agent ports or to an address that is not this pod gets 400; a good CONNECT from a foreign client works', async () => {
  const client = new HboneClient({ getCredentials: () => creds, createSocket: (d) => connectInNetns({ netns: bed.pod('outsider').nsPath, host: d.host, port: d.port }) });
  try {
    const base = { sourceIdentity: creds.identity, destinationIdentities: ['spiffe://cluster.local/ns/default/sa/echo'], destination: { host: echoIp(), port: 15008 } };
    for (const authority of [`${echoIp()}:15001`, `${echoIp()}:15006`, `${echoIp()}:15008`, `${bed.pod('sleep').ip}:8080`]) {
      await assert.rejects(client.connect({ ...base, authority }), (e: HboneError) => e.status === 400, authority);
    }
    const reasons = () => logLines(2, 'HBONE request refused').map((l) => String(l.reason));
    await waitFor(() => reasons().some((r) => r.includes('target port 15001')) && reasons().some((r) => r.includes(`authority ${bed.pod('sleep').ip}:8080 is not an address of pod default/echo`)),
      { timeoutMs: 5000, message: 'refusal lines naming the reasons' });
    const t = await client.connect({ ...base, authority: `${echoIp()}:8080` });
    let got = '';
    t.stream.setEncoding('utf8');
    t.stream.on('data', (c: string) => { got += c; });
    t.stream.end('from outside');
    await waitFor(() => got.includes('from outside'), { timeoutMs: 5000, message: 'echo through a foreign HBONE client' });
    // the server sees the outsider's address: the agent spoofed it
    assert.match(got, new RegExp(`peer=${bed.pod('outsider').ip.replace(/\./g, '\\.')}:`));
  } finally {
    client.destroy();
  }
  assert.ok(agent2Lines().length > 0);
  await stillServes();
});

test('a connection to the agent\'s own ports from loopback inside the pod is refused (SelfCall)', async () => {
  for (const port of [15001, 15006]) {
    const before = logLines(1, 'connection failed').length;
    const r = await exchange(connectInNetns({ netns: bed.pod('sleep').nsPath, host: '127.0.0.1', port }), 'loop?', 5000);
    assert.notEqual(r.echo, 'loop?');
    await waitFor(() => logLines(1, 'connection failed').length === before + 1, { timeoutMs: 5000, message: `one log line for port ${port}` });
    assert.match(String(logLines(1, 'connection failed').pop()!.error), new RegExp(`own port ${port}`));
  }
  await stillServes();
});

test('missing privileges at start-up: a clear error naming the capability, exit non-zero', async () => {
  const child = spawn(process.execPath, [AGENT_MAIN], {
    uid: 65534, gid: 65534,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LOCAL_XDS_PATH: bed.configPath, AMBIT_LOCAL_CA_CERT: '/nonexistent', AMBIT_LOCAL_CA_KEY: '/nonexistent' },
  });
  let stderr = '';
  child.stderr.on('data', (c) => { stderr += c; });
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  assert.equal(code, 1);
  assert.match(stderr, /CAP_(NET|SYS)_ADMIN/);
});
