import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { CertificateAuthority } from '@ambit/pki';
import { HboneClient, HboneError, formatAuthority, splice } from '../src/index.js';
import { CLIENT_ID, SERVER_ID, credentialsOf, readAll, startEcho, startMesh, waitFor } from './fixtures.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const size of [0, 1, 64 * 1024 * 1024]) {
  test(`byte-exact echo of ${size} bytes through the tunnel`, async (t) => {
    const echo = await startEcho();
    const mesh = await startMesh();
    t.after(async () => { await mesh.close(); echo.server.close(); });
    const tunnel = await mesh.client.connect({
      sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID],
      destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: formatAuthority('127.0.0.1', echo.port),
    });
    assert.equal(tunnel.peerIdentity, SERVER_ID);
    const payload = randomBytes(size);
    const reply = readAll(tunnel.stream);
    tunnel.stream.end(payload);
    const got = await reply;
    assert.equal(got.length, size);
    assert.equal(sha(got), sha(payload));
  });
}

test('250 concurrent streams on one key use 3 connections, sharing handshakes', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  let handshakes = 0;
  mesh.server.server.on('secureConnection', () => handshakes++);
  const req = {
    sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID],
    destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}`,
  };
  const tunnels = await Promise.all(Array.from({ length: 250 }, () => mesh.client.connect(req)));
  assert.equal(new Set(tunnels.map((x) => x.connectionId)).size, 3);
  assert.equal(mesh.client.stats().connections, 3);
  assert.equal(handshakes, 3);
  // every stream works
  const replies = await Promise.all(tunnels.map((x, i) => { const r = readAll(x.stream); x.stream.end(`hello ${i}`); return r; }));
  replies.forEach((r, i) => assert.equal(r.toString(), `hello ${i}`));
});

test('a different source identity gets its own connection', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const other = credentialsOf(await mesh.ca.issueWorkloadCertificate('spiffe://cluster.local/ns/default/sa/other'));
  const client = new HboneClient({ getCredentials: (id) => (id === CLIENT_ID ? mesh.clientCreds : other) });
  t.after(() => client.destroy());
  const base = { destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}` };
  const a = await client.connect({ ...base, sourceIdentity: CLIENT_ID });
  const b = await client.connect({ ...base, sourceIdentity: other.identity });
  const c = await client.connect({ ...base, sourceIdentity: CLIENT_ID });
  assert.notEqual(a.connectionId, b.connectionId);
  assert.equal(a.connectionId, c.connectionId);
  for (const x of [a, b, c]) x.stream.close();
});

test('a server presenting the wrong SAN is refused by the client', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  await assert.rejects(
    mesh.client.connect({
      sourceIdentity: CLIENT_ID, destinationIdentities: ['spiffe://cluster.local/ns/default/sa/someone-else'],
      destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}`,
    }),
    (err: HboneError) => err.code === 'AMB_ERR_HBONE_IDENTITY' && /presented spiffe:\/\/cluster.local\/ns\/default\/sa\/server, expected one of/.test(err.message),
  );
});

test('client ends writing and still reads the reply (half-close)', async (t) => {
  // An app that reads the whole request, then answers, then closes: only correct if FIN crossed as END_STREAM.
  const app = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => { setImmediate(() => s.end(`got ${Buffer.concat(chunks).length} bytes`)); });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); app.close(); });
  const tunnel = await mesh.client.connect({
    sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID],
    destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${(app.address() as net.AddressInfo).port}`,
  });
  const reply = readAll(tunnel.stream);
  tunnel.stream.write('abc');
  tunnel.stream.end('def');
  assert.equal((await reply).toString(), 'got 6 bytes');
});

test('app refuses the connection -> 503', async (t) => {
  const mesh = await startMesh();
  t.after(() => mesh.close());
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  await assert.rejects(
    mesh.client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${port}` }),
    (err: HboneError) => err.code === 'AMB_ERR_HBONE_STATUS' && err.status === 503,
  );
  assert.ok(mesh.logs.some((l) => l.msg === 'HBONE request refused' && l.status === 503 && /ECONNREFUSED/.test(String(l.reason))));
});

for (const port of [15001, 15006, 15008]) {
  test(`CONNECT to illegal port ${port} answers 400`, async (t) => {
    const mesh = await startMesh();
    t.after(() => mesh.close());
    await assert.rejects(
      mesh.client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${port}` }),
      (err: HboneError) => err.status === 400,
    );
    assert.equal(mesh.logs.filter((l) => l.msg === 'HBONE request refused' && String(l.reason).includes(`target port ${port}`)).length, 1);
  });
}

test('the app resetting its socket resets the stream, and a stream reset resets the app socket', async (t) => {
  let appSide: net.Socket | undefined;
  const appErrors: string[] = [];
  const app = net.createServer((s) => { appSide = s; s.on('error', (e: NodeJS.ErrnoException) => appErrors.push(e.code ?? e.message)); });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); app.close(); });
  const req = { sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${(app.address() as net.AddressInfo).port}` };
  // app -> RST -> client stream reset
  const a = await mesh.client.connect(req);
  await waitFor(() => appSide !== undefined, 2000, 'app accept');
  const aClosed = new Promise<number | undefined>((r) => a.stream.once('close', () => r(a.stream.rstCode)));
  a.stream.on('error', () => {});
  appSide!.resetAndDestroy();
  assert.equal(await aClosed, 0xa /* CONNECT_ERROR */);
  // client stream reset -> app sees a TCP RST
  appSide = undefined;
  const b = await mesh.client.connect(req);
  await waitFor(() => appSide !== undefined, 2000, 'app accept');
  const appClosed = new Promise<void>((r) => appSide!.once('close', () => r()));
  b.stream.close(0x8 /* CANCEL */);
  await appClosed;
  assert.deepEqual(appErrors, ['ECONNRESET']);
});

test('a slow reader slows the writer and memory stays bounded (backpressure)', async (t) => {
  let appSide: net.Socket | undefined;
  const app = net.createServer((s) => { appSide = s; s.pause(); });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); app.close(); });
  const tunnel = await mesh.client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${(app.address() as net.AddressInfo).port}` });
  tunnel.stream.on('error', () => {});
  // Write until the tunnel pushes back, for at most 256 MiB.
  const chunk = Buffer.alloc(64 * 1024, 7);
  let accepted = 0;
  const writeUntilFull = async () => {
    for (let i = 0; i < 4096; i++) {
      accepted += chunk.length;
      if (!tunnel.stream.write(chunk)) {
        const drained = await Promise.race([new Promise((r) => tunnel.stream.once('drain', () => r(true))), new Promise((r) => setTimeout(() => r(false), 300))]);
        if (!drained) return;
      }
    }
  };
  await writeUntilFull();
  // With the app not reading, what the writer got rid of is bounded by the stream window (4 MiB), the kernel
  // socket buffers on loopback, and one stream's buffers — far below the 256 MiB it tried to write.
  assert.ok(accepted < 48 * 1024 * 1024, `writer pushed ${accepted} bytes into a tunnel nobody reads`);
  // And once the app reads, everything flows.
  let received = 0;
  appSide!.on('data', (c) => { received += c.length; });
  appSide!.resume();
  tunnel.stream.end();
  await waitFor(() => received >= accepted, 10_000, `app to receive ${accepted} bytes (has ${received})`);
  assert.equal(received, accepted);
});

test('GOAWAY lets in-flight streams finish', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const tunnel = await mesh.client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}` });
  const reply = readAll(tunnel.stream);
  tunnel.stream.write('before goaway;');
  const closing = mesh.server.close();
  await waitFor(() => mesh.client.stats().connections === 0, 2000, 'client to see GOAWAY and stop pooling the connection');
  tunnel.stream.end('after goaway');
  assert.equal((await reply).toString(), 'before goaway;after goaway');
  await closing;
  await waitFor(() => mesh.server.connectionCount === 0, 2000, 'server connections to close');
});

test('a peer that stops answering fails its streams within the keepalive bound', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  // A relay between client and server that can freeze: the peer neither answers nor closes (a dead host).
  let frozen = false;
  const held: net.Socket[] = [];
  const relay = net.createServer((down) => {
    const up = net.connect(mesh.serverPort, '127.0.0.1');
    held.push(down, up);
    down.on('data', (d) => { if (!frozen) up.write(d); });
    up.on('data', (d) => { if (!frozen) down.write(d); });
    down.on('error', () => {}); up.on('error', () => {});
    down.on('close', () => up.destroy()); up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const client = new HboneClient({ getCredentials: () => mesh.clientCreds, pingIntervalMs: 50, pingTimeoutMs: 200 });
  t.after(async () => { client.destroy(); for (const s of held) s.destroy(); relay.close(); await mesh.close(); echo.server.close(); });
  const tunnel = await client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: (relay.address() as net.AddressInfo).port }, authority: `127.0.0.1:${echo.port}` });
  tunnel.stream.write('ping?');
  const firstReply = await new Promise<Buffer>((r) => tunnel.stream.once('data', r));
  assert.equal(firstReply.toString(), 'ping?');
  let failedAt = 0;
  tunnel.stream.on('error', () => {});
  tunnel.stream.once('close', () => { failedAt = Date.now(); });
  const frozeAt = Date.now();
  frozen = true;
  await waitFor(() => failedAt > 0, 5000, 'stream to fail after the peer went silent');
  // bound: one interval to send the PING plus the PING timeout, with scheduling slack
  assert.ok(failedAt - frozeAt < 50 + 200 + 1000, `failed after ${failedAt - frozeAt} ms`);
  await waitFor(() => client.stats().connections === 0, 2000, 'the dead connection to leave the pool');
});

test('concurrent first requests to a dead address share one failed handshake', async () => {
  const ca = await CertificateAuthority.create();
  const creds = credentialsOf(await ca.issueWorkloadCertificate(CLIENT_ID));
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  let sockets = 0;
  const client = new HboneClient({ getCredentials: () => creds, createSocket: (d) => { sockets++; return net.connect(d.port, d.host); } });
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => client.connect({
    sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port }, authority: '10.0.0.1:80',
  })));
  assert.equal(sockets, 1);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal((r as PromiseRejectedResult).reason.code, 'AMB_ERR_HBONE_CONNECT');
    assert.match((r as PromiseRejectedResult).reason.message, /ECONNREFUSED \(nothing listens on the HBONE port\)/);
  }
  client.destroy();
});

test('idle pooled connections are closed after the idle timeout', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh({ client: { idleTimeoutMs: 100 } });
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const tunnel = await mesh.client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}` });
  const r = readAll(tunnel.stream);
  tunnel.stream.end('x');
  await r;
  await waitFor(() => mesh.client.stats().connections === 0 && mesh.server.connectionCount === 0, 3000, 'idle connection to close');
});

test('CONNECT carries baggage, forwarded and traceparent to the server', async (t) => {
  const echo = await startEcho();
  let seen: Record<string, unknown> = {};
  const mesh = await startMesh({ server: { onConnect: (req) => { seen = { ...req.headers, peer: req.peerIdentity, authority: req.authorityText }; req.reject(401, 'test'); } } });
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const headers = { baggage: 'k8s.cluster.name=Kubernetes,k8s.namespace.name=default', forwarded: 'for="10.0.1.2:5555"', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' };
  await assert.rejects(mesh.client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `[fd00::1]:80`, headers }),
    (e: HboneError) => e.status === 401 && /authorization denied/.test(e.message));
  assert.equal(seen.baggage, headers.baggage);
  assert.equal(seen.forwarded, headers.forwarded);
  assert.equal(seen.traceparent, headers.traceparent);
  assert.equal(seen.peer, CLIENT_ID);
  assert.equal(seen.authority, '[fd00::1]:80');
  assert.equal(seen[':method'], 'CONNECT');
  assert.equal(seen[':path'], undefined);
  void splice;
});
