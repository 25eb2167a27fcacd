import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { CertificateAuthority } from '@ambit/pki';
import { HboneClient, HboneError, HBONE_CIPHERS } from '../src/index.js';
import { CLIENT_ID, SERVER_ID, credentialsOf, readAll, startEcho, startMesh, waitFor, type Mesh } from './fixtures.js';

/** After each bad peer, a good tunnel still works: nothing else was disturbed. */
async function assertStillServes(mesh: Mesh, echoPort: number): Promise<void> {
  const t = await mesh.client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echoPort}` });
  const r = readAll(t.stream);
  t.stream.end('still here');
  assert.equal((await r).toString(), 'still here');
}

function logsWith(mesh: Mesh, msg: string): Array<Record<string, unknown>> {
  return mesh.logs.filter((l) => l.msg === msg);
}

async function rawTlsClient(mesh: Mesh, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const s = tls.connect({ host: '127.0.0.1', port: mesh.serverPort, ca: mesh.serverCreds.rootsPem, minVersion: 'TLSv1.3', ciphers: HBONE_CIPHERS, checkServerIdentity: () => undefined, ...opts });
  s.on('error', () => {});
  return s;
}

function closedWithin(socket: net.Socket, ms: number): Promise<void> {
  return waitFor(() => socket.destroyed || socket.readableEnded, ms, 'the server to close the connection');
}

test('a client from another trust domain is refused by the server (same root)', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const foreign = credentialsOf(await mesh.ca.issueWorkloadCertificate('spiffe://evil.example/ns/default/sa/client'));
  const client = new HboneClient({ getCredentials: () => foreign });
  t.after(() => client.destroy());
  await assert.rejects(client.connect({ sourceIdentity: foreign.identity, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}` }),
    (e: HboneError) => e.code === 'AMB_ERR_HBONE_IDENTITY' && /refused our identity spiffe:\/\/evil.example/.test(e.message));
  const refused = logsWith(mesh, 'HBONE connection refused: client identity not in this trust domain');
  assert.equal(refused.length, 1);
  assert.match(String(refused[0]!.reason), /trust domain evil.example is not cluster.local/);
  await assertStillServes(mesh, echo.port);
});

test('a client whose certificate comes from another root is refused by the server', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const otherCa = await CertificateAuthority.create();
  const stranger = credentialsOf(await otherCa.issueWorkloadCertificate(CLIENT_ID));
  const client = new HboneClient({ getCredentials: () => ({ ...stranger, rootsPem: mesh.serverCreds.rootsPem }) });
  t.after(() => client.destroy());
  await assert.rejects(client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}` }), HboneError);
  await waitFor(() => logsWith(mesh, 'HBONE TLS handshake refused').length === 1, 2000, 'one refusal log line');
  assert.match(String(logsWith(mesh, 'HBONE TLS handshake refused')[0]!.reason), /not signed by the mesh root/);
  await assertStillServes(mesh, echo.port);
});

test('a client with an expired certificate is refused by the server', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const expired = credentialsOf(await mesh.ca.issueWorkloadCertificate(CLIENT_ID, { notBefore: new Date(Date.now() - 7200e3), ttlSeconds: 3600 }));
  const client = new HboneClient({ getCredentials: () => expired });
  t.after(() => client.destroy());
  await assert.rejects(client.connect({ sourceIdentity: CLIENT_ID, destinationIdentities: [SERVER_ID], destination: { host: '127.0.0.1', port: mesh.serverPort }, authority: `127.0.0.1:${echo.port}` }), HboneError);
  await waitFor(() => logsWith(mesh, 'HBONE TLS handshake refused').length === 1, 2000, 'one refusal log line');
  assert.equal(logsWith(mesh, 'HBONE TLS handshake refused')[0]!.reason, 'client certificate expired');
  await assertStillServes(mesh, echo.port);
});

test('a client with no certificate is refused by the server', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const s = await rawTlsClient(mesh, { ALPNProtocols: ['h2'] });
  await closedWithin(s, 2000);
  await waitFor(() => logsWith(mesh, 'HBONE TLS handshake refused').length === 1, 2000, 'one refusal log line');
  assert.equal(logsWith(mesh, 'HBONE TLS handshake refused')[0]!.reason, 'client presented no certificate');
  await assertStillServes(mesh, echo.port);
});

test('garbage bytes get a closed connection and one log line', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const s = net.connect(mesh.serverPort, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage');
  await closedWithin(s, 2000);
  await waitFor(() => logsWith(mesh, 'HBONE TLS handshake refused').length === 1, 2000, 'one refusal log line');
  assert.match(String(logsWith(mesh, 'HBONE TLS handshake refused')[0]!.reason), /not a TLS client/);
  await assertStillServes(mesh, echo.port);
});

test('a TLS client offering only HTTP/1.1 is refused in the handshake and logged once', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const s = await rawTlsClient(mesh, { key: mesh.clientCreds.keyPem, cert: mesh.clientCreds.certChainPem.join(''), ALPNProtocols: ['http/1.1'] });
  let secured = false;
  s.once('secureConnect', () => { secured = true; });
  await closedWithin(s, 2000);
  assert.equal(secured, false);
  await waitFor(() => logsWith(mesh, 'HBONE TLS handshake refused').length === 1, 2000, 'one log line');
  assert.equal(logsWith(mesh, 'HBONE TLS handshake refused')[0]!.reason, 'client did not offer ALPN h2');
  await assertStillServes(mesh, echo.port);
});

test('a TLS client with no ALPN speaking HTTP/1.1 is closed and logged once', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const s = await rawTlsClient(mesh, { key: mesh.clientCreds.keyPem, cert: mesh.clientCreds.certChainPem.join('') });
  const got = readAll(s).catch(() => Buffer.alloc(0));
  s.once('secureConnect', () => s.write('CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n'));
  await closedWithin(s, 3000);
  assert.equal((await got).length, 0);
  await waitFor(() => logsWith(mesh, 'HBONE connection refused: client did not negotiate ALPN h2').length === 1, 2000, 'one log line');
  await assertStillServes(mesh, echo.port);
});

function h2Session(mesh: Mesh): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${mesh.serverPort}`, {
    ca: mesh.serverCreds.rootsPem, key: mesh.clientCreds.keyPem, cert: mesh.clientCreds.certChainPem.join(''),
    minVersion: 'TLSv1.3', checkServerIdentity: () => undefined,
  });
  session.on('error', () => {});
  return session;
}

test('an HTTP/2 client sending GET gets 400 and one log line', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const session = h2Session(mesh);
  t.after(() => session.destroy());
  const req = session.request({ ':method': 'GET', ':path': '/', ':authority': `127.0.0.1:${echo.port}` });
  const status = await new Promise<number>((r) => req.once('response', (h) => r(Number(h[':status']))));
  req.resume();
  assert.equal(status, 400);
  const lines = logsWith(mesh, 'HBONE request refused');
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.reason, 'method GET is not CONNECT');
  await assertStillServes(mesh, echo.port);
});

test('a CONNECT with an empty or malformed authority gets 400 or a refused stream', async (t) => {
  const echo = await startEcho();
  const mesh = await startMesh();
  t.after(async () => { await mesh.close(); echo.server.close(); });
  const session = h2Session(mesh);
  t.after(() => session.destroy());
  for (const authority of ['', 'no-port', '[::1]', '10.0.0.1:99999', '10.0.0.1:']) {
    const req = session.request({ ':method': 'CONNECT', ':authority': authority });
    req.on('error', () => {});
    const outcome = await new Promise<string>((r) => {
      req.once('response', (h) => r(`status ${h[':status']}`));
      req.once('close', () => r(`reset ${req.rstCode}`));
    });
    req.resume();
    // nghttp2 itself refuses a CONNECT whose :authority is empty (RST_STREAM PROTOCOL_ERROR) before our handler
    // runs; everything that reaches us gets 400.
    if (authority === '') assert.match(outcome, /^(status 400|reset 1)$/);
    else assert.equal(outcome, 'status 400', `authority "${authority}"`);
  }
  assert.ok(logsWith(mesh, 'HBONE request refused').length >= 4);
  await assertStillServes(mesh, echo.port);
});
