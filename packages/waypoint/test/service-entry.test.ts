// ServiceEntry destinations (MESH_EXTERNAL, endpoints not captured: Workload protocol TCP) behind the waypoint: the
// upstream is a plain TCP connection to the endpoint, and a DestinationRule tls block originates TLS inside it.
// A loopback TLS server plays the external API; a loopback HTTP server plays a DNS ServiceEntry host (localhost).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTlsCa, issueTlsCertificate } from '@ambit/pki';
import { dr, ipBytes, NS, startHarness, type Harness } from './harness.js';

const API_HOST = 'api.external.test';
const API_VIP = '240.240.0.10';
const DNS_HOST = 'dns.external.test';
const DNS_VIP = '240.240.0.11';
const API = `${API_VIP}:80`;

let h: Harness;
let dir: string;
let tlsServer: https.Server;
let plainServer: http.Server;
let tcpServer: net.Server;
let files: { ca: string; otherCa: string; clientCert: string; clientKey: string };

async function listen(server: net.Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, host, () => resolve()); });
  return (server.address() as AddressInfo).port;
}

before(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'ambit-waypoint-se-'));
  const serverCa = await createTlsCa({ commonName: 'external server CA' });
  const otherCa = await createTlsCa({ commonName: 'some other CA' });
  const clientCa = await createTlsCa({ commonName: 'client CA' });
  const serverCert = await issueTlsCertificate(serverCa, { commonName: API_HOST, dnsNames: [API_HOST], usages: ['server'], ttlSeconds: 3600 });
  const clientCert = await issueTlsCertificate(clientCa, { commonName: 'waypoint-client', usages: ['client'], ttlSeconds: 3600 });
  files = { ca: join(dir, 'ca.pem'), otherCa: join(dir, 'other-ca.pem'), clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client-key.pem') };
  writeFileSync(files.ca, serverCa.certPem);
  writeFileSync(files.otherCa, otherCa.certPem);
  writeFileSync(files.clientCert, clientCert.certPem);
  writeFileSync(files.clientKey, clientCert.keyPem);
  // The external API: TLS only; reports the SNI it saw and the client certificate, if any.
  tlsServer = https.createServer({ key: serverCert.keyPem, cert: serverCert.certPem, ca: clientCa.certPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ tls: true, sni: (socket as TLSSocket & { servername?: string }).servername ?? null, client: peer && peer.subject ? peer.subject.CN : null, clientAuthorized: socket.authorized, path: req.url, host: req.headers.host }));
  });
  const tlsPort = await listen(tlsServer, '127.0.0.4');
  plainServer = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ tls: false, path: req.url, host: req.headers.host })); });
  const plainPort = await listen(plainServer, '127.0.0.1');
  tcpServer = net.createServer((sock) => { sock.on('error', () => {}); sock.write('hello from outside\n'); sock.pipe(sock); });
  const tcpPort = await listen(tcpServer, '127.0.0.4');
  // What the controller sends for the ServiceEntries (bound to the waypoint): a Service per host, a Workload per
  // endpoint without tunnel protocol (not in the mesh); the DNS one has a host name instead of an address.
  h.addAddresses([
    { name: `${NS}/${API_HOST}`, message: { service: { name: 'api', namespace: NS, hostname: API_HOST, addresses: [{ network: '', address: ipBytes(API_VIP) }], ports: [{ service_port: 80, target_port: 443 }, { service_port: 9000, target_port: 9000 }] } } },
    {
      name: `Kubernetes/networking.istio.io/ServiceEntry/${NS}/api/127.0.0.4`,
      message: { workload: { uid: `Kubernetes/networking.istio.io/ServiceEntry/${NS}/api/127.0.0.4`, name: 'api', namespace: NS, addresses: [ipBytes('127.0.0.4')], workload_name: 'api', canonical_name: 'api', canonical_revision: 'latest', services: { [`${NS}/${API_HOST}`]: { ports: [{ service_port: 80, target_port: tlsPort }, { service_port: 9000, target_port: tcpPort }] } } } },
    },
    { name: `${NS}/${DNS_HOST}`, message: { service: { name: 'dns', namespace: NS, hostname: DNS_HOST, addresses: [{ network: '', address: ipBytes(DNS_VIP) }], ports: [{ service_port: 80, target_port: 80 }] } } },
    {
      name: `Kubernetes/networking.istio.io/ServiceEntry/${NS}/dns/localhost`,
      message: { workload: { uid: `Kubernetes/networking.istio.io/ServiceEntry/${NS}/dns/localhost`, name: 'dns', namespace: NS, hostname: 'localhost', workload_name: 'dns', canonical_name: 'dns', canonical_revision: 'latest', services: { [`${NS}/${DNS_HOST}`]: { ports: [{ service_port: 80, target_port: plainPort }] } } } },
    },
  ]);
});

after(async () => {
  await h?.close();
  tlsServer?.closeAllConnections();
  tlsServer?.close();
  plainServer?.closeAllConnections();
  plainServer?.close();
  tcpServer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const clear = (): void => { const names = [...h.app.configStore.objects().keys()]; if (names.length) h.applyConfig([], names); };

test('DNS ServiceEntry endpoint (host name, not in the mesh): plain TCP to the resolved host, no HBONE', async () => {
  clear();
  const r = await h.request(`${DNS_VIP}:80`, { path: '/dns', host: DNS_HOST });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { tls: false, path: '/dns', host: DNS_HOST });
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.path === '/dns').at(-1)!;
  assert.match(String(line.upstream_host), /^localhost:\d+$/);
});

test('TLS origination SIMPLE toward a ServiceEntry host: the app speaks HTTP, the waypoint speaks TLS with SNI and verifies the server', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('api', { host: API_HOST, trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: files.ca, subjectAltNames: [API_HOST] } } })]), []);
  const r = await h.request(API, { path: '/v1/things', host: API_HOST });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(JSON.parse(r.body), { tls: true, sni: API_HOST, client: null, clientAuthorized: false, path: '/v1/things', host: API_HOST });
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.path === '/v1/things').at(-1)!;
  assert.equal(line.upstream_cluster, `outbound|80||${API_HOST}`);
  assert.equal(line['dst.service'], API_HOST);
});

test('TLS origination MUTUAL presents the client certificate from the DestinationRule', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('api', { host: API_HOST, trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'MUTUAL', caCertificates: files.ca, clientCertificate: files.clientCert, privateKey: files.clientKey } }] } })]), []);
  const r = await h.request(API, { path: '/mutual', host: API_HOST });
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as { client: string; clientAuthorized: boolean };
  assert.equal(body.client, 'waypoint-client');
  assert.equal(body.clientAuthorized, true);
});

test('TLS origination fails closed: a server certificate from another CA answers 503 UF naming the TLS failure', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('api', { host: API_HOST, trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: files.otherCa } } })]), []);
  const r = await h.request(API, { path: '/wrong-ca', host: API_HOST });
  assert.equal(r.status, 503);
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.path === '/wrong-ca').at(-1)!;
  assert.equal(line.response_flags, 'URX,UF', 'retried (connect failure), then failed');
  assert.match(String(line.upstream_transport_failure_reason), /TLS origination to 127\.0\.0\.4:\d+ \(sni api\.external\.test\) failed/);
});

test('without a tls block the ServiceEntry upstream gets plaintext (the TLS server refuses it)', async () => {
  clear();
  const r = await h.request(API, { path: '/plaintext', host: API_HOST });
  assert.equal(r.status, 503);
});

test('a missing caCertificates file answers 503 UF with the reason, without touching the upstream', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('api', { host: API_HOST, trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: join(dir, 'missing.pem') } } })]), []);
  const r = await h.request(API, { path: '/missing-ca', host: API_HOST });
  assert.equal(r.status, 503);
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.path === '/missing-ca').at(-1)!;
  assert.equal(line.response_flags, 'UF');
  assert.match(String(line.upstream_transport_failure_reason), /cannot read caCertificates .*missing\.pem/);
});

test('opaque TCP to a ServiceEntry endpoint goes over a plain TCP connection (port declared TCP: server speaks first, then echoes)', async () => {
  clear();
  // The user's ServiceEntry declares the port's protocol; the waypoint then does not wait for the client to speak.
  assert.deepEqual(h.applyConfig([{
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'api', namespace: NS },
    spec: { hosts: [API_HOST], addresses: [API_VIP], location: 'MESH_EXTERNAL', resolution: 'STATIC', endpoints: [{ address: '127.0.0.4' }],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 9000, name: 'db', protocol: 'TCP' }] },
  }]), []);
  const t = await h.tunnel(`${API_VIP}:9000`);
  const text = await new Promise<string>((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no echo in 5 s: ${JSON.stringify(got)}`)), 5000);
    t.on('data', (c: Buffer) => {
      got += c;
      if (got === 'hello from outside\n') t.write('ping\n');
      if (got.endsWith('ping\n')) { clearTimeout(timer); resolve(got); }
    });
    t.on('error', reject);
  });
  t.destroy();
  assert.equal(text, 'hello from outside\nping\n');
  clear();
});
