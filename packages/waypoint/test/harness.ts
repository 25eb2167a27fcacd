// In-process waypoint harness on loopback, real TLS and HTTP/2 everywhere:
// - a mesh CA (files, as the waypoint's local CA);
// - "destination agents": one HboneServer per endpoint IP (127.0.0.x, the same port), each with the endpoint's identity,
//   splicing CONNECTs to small echo apps on that IP (HTTP/1.1, h2c, TCP echo);
// - the waypoint app (discovery 'external'), fed Address resources through the xDS conversion path and configuration
//   objects through the xDS raw-type handler, exactly as the xDS client feeds them;
// - a "source agent": an HboneClient with a client workload identity that opens CONNECTs to the waypoint.
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable, type Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import {
  ADDRESS_TYPE_URL, CONFIG_OBJECT_TYPE_URL, configObjectName, decodeAny, encodeAny, encodeConfigObject,
  type Address as PbAddress, type KubeObject,
} from '@ambit/api';
import { CertificateAuthority } from '@ambit/pki';
import { HboneClient, HboneServer, splice, type Credentials } from '@ambit/hbone';
import { convertAddressResponse } from '@ambit/ztunnel';
import { loadConfig } from '../src/config/load.js';
import { createWaypointApp, type WaypointApp } from '../src/app.js';
import { configObjectXdsType } from '../src/discovery/config-source.js';
import type { WaypointPlugin } from '../src/plugins/plugin.js';
import { asHttp1Socket } from '../src/proxy/stream-compat.js';

export const TD = 'cluster.local';
export const NS = 'mesh';
export const CLIENT_ID = `spiffe://${TD}/ns/${NS}/sa/client`;
export const WAYPOINT_ID = `spiffe://${TD}/ns/${NS}/sa/waypoint`;

export interface Endpoint {
  readonly name: string;
  readonly ip: string;
  readonly version: string;
  readonly httpPort: number;
  readonly h2Port: number;
  readonly tcpPort: number;
  /** Requests this endpoint's HTTP apps saw. */
  readonly seen: SeenRequest[];
  /** Queue of forced statuses for the next requests (retry tests). */
  readonly failNext: number[];
  /** HBONE CONNECTs this endpoint's agent accepted (new upstream connections from the waypoint). */
  readonly connects: { count: number };
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly json: () => EchoBody;
}

export interface EchoBody {
  pod: string;
  method: string;
  path: string;
  host: string;
  headers: Record<string, string>;
  body: string;
}

export interface Harness {
  readonly app: WaypointApp;
  readonly endpoints: readonly Endpoint[];
  readonly registry: Registry;
  readonly logs: Array<Record<string, unknown>>;
  readonly ca: CertificateAuthority;
  readonly client: HboneClient;
  /** Adds Address resources (services, workloads) through the xDS conversion path. */
  addAddresses(resources: Array<{ name: string; message: PbAddress }>): void;
  /** Applies configuration objects through the xDS raw-type path; returns the NACKed names with messages. */
  applyConfig(objects: KubeObject[], removed?: string[]): readonly { name: string; message: string }[];
  /** Opens a tunnel to the waypoint for `authority` (VIP:port) as the client workload. */
  tunnel(authority: string, identity?: string): Promise<Duplex>;
  /** One HTTP/1.1 request on a fresh tunnel. */
  request(authority: string, opts?: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; host?: string }): Promise<Reply>;
  /** Sums a counter's samples whose labels include `labels`. */
  metric(name: string, labels: Record<string, string>): Promise<number>;
  /** HTTP/2 prior knowledge session over a tunnel. */
  h2(authority: string): Promise<http2.ClientHttp2Session>;
  close(): Promise<void>;
}

export const ipBytes = (s: string): Buffer => Buffer.from(s.split('.').map(Number));

export const VIPS = { echo: '10.96.0.10', echoV1: '10.96.0.11', echoV2: '10.96.0.12', other: '10.96.0.13' } as const;

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function readBody(s: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

function echoHandler(ep: { name: string; seen: SeenRequest[]; failNext: number[] }) {
  return async (req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const path = req.url ?? '/';
    ep.seen.push({ method: req.method ?? '', path, headers: req.headers, body });
    const forced = ep.failNext.shift();
    const status = forced ?? (/^\/status\/(\d{3})/.exec(path) ? Number(/^\/status\/(\d{3})/.exec(path)![1]) : 200);
    const delay = /[?&]delay=(\d+)/.exec(path);
    if (delay) await new Promise((r) => setTimeout(r, Number(delay[1])));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (!k.startsWith(':') && v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
    if (req.headers['content-type']?.startsWith('application/grpc')) {
      const r = res as http2.Http2ServerResponse;
      r.writeHead(200, { 'content-type': 'application/grpc', 'x-pod': ep.name });
      r.write(Buffer.from(body));
      r.addTrailers({ 'grpc-status': forced ? '14' : '0', 'grpc-message': forced ? 'forced' : '' });
      r.end();
      return;
    }
    const out = JSON.stringify({ pod: ep.name, method: req.method ?? '', path, host: (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '', headers, body } satisfies EchoBody);
    (res as ServerResponse).writeHead(status, { 'content-type': 'application/json', 'x-pod': ep.name, 'x-echo-set': 'upstream' });
    res.end(out);
  };
}

async function listenOn(server: net.Server, host: string, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return (server.address() as AddressInfo).port;
}

export async function startHarness(opts: { plugins?: WaypointPlugin[]; random?: () => number; env?: Record<string, string>; environment?: Record<string, string>; spanFlushIntervalMs?: number } = {}): Promise<Harness> {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const dir = mkdtempSync(join(tmpdir(), 'ambit-waypoint-test-'));
  writeFileSync(join(dir, 'ca.pem'), ca.rootCertPem);
  writeFileSync(join(dir, 'ca-key.pem'), ca.keyPem);
  const closers: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];

  // Endpoints and their destination agents, one HBONE port shared by all endpoint IPs (like 15008 on every pod).
  const defs = [
    { name: 'echo-v1-0', ip: '127.0.0.2', version: 'v1' },
    { name: 'echo-v2-0', ip: '127.0.0.3', version: 'v2' },
  ];
  let hbonePort = 0;
  const endpoints: Endpoint[] = [];
  for (const d of defs) {
    const ep = { ...d, seen: [] as SeenRequest[], failNext: [] as number[], connects: { count: 0 } };
    const h1 = http.createServer(echoHandler(ep));
    const h2 = http2.createServer(echoHandler(ep));
    const tcp = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.write(`hello from ${d.name}\n`); s.pipe(s); });
    const httpPort = await listenOn(h1, d.ip);
    const h2Port = await listenOn(h2, d.ip);
    const tcpPort = await listenOn(tcp, d.ip);
    closers.push(() => { h1.closeAllConnections(); h1.close(); h2.close(); tcp.close(); });
    const cert = await ca.issueWorkloadCertificate(`spiffe://${TD}/ns/${NS}/sa/echo-${d.version}`);
    const creds: Credentials = { identity: cert.identity, keyPem: cert.keyPem, certChainPem: cert.certChainPem, rootsPem: cert.rootsPem };
    const agent = new HboneServer({
      credentials: creds, trustDomain: TD,
      onConnect: (req) => {
        ep.connects.count++;
        const app = net.connect({ host: req.authority.host, port: req.authority.port, allowHalfOpen: true });
        app.once('connect', () => { try { void splice(app, req.accept()); } catch { app.destroy(); } });
        app.once('error', (err) => req.reject(503, `connect to app failed: ${err.message}`));
      },
    });
    const a = await agent.listen({ host: d.ip, port: hbonePort });
    hbonePort = a.port;
    closers.push(() => agent.close({ timeoutMs: 100 }));
    endpoints.push({ ...ep, httpPort, h2Port, tcpPort });
  }

  const { logger, lines } = captureLogger();
  const registry = new Registry();
  const config = loadConfig({
    AMBIT_LOCAL_CA_CERT: join(dir, 'ca.pem'), AMBIT_LOCAL_CA_KEY: join(dir, 'ca-key.pem'), AMBIT_LOCAL_CONFIG_PATH: dir,
    POD_NAMESPACE: NS, GATEWAY_NAME: 'waypoint', AMBIT_HBONE_ADDRESS: '127.0.0.1:0', AMBIT_UPSTREAM_HBONE_PORT: String(hbonePort),
    AMBIT_ADMIN_ADDRESS: '127.0.0.1:0', AMBIT_METRICS_ADDRESS: '127.0.0.1:0', AMBIT_READINESS_ADDRESS: '127.0.0.1:0',
    LOG_LEVEL: 'info', ...opts.env,
  });
  const app = await createWaypointApp(config, {
    logger, registry, version: 'test', exit: () => {}, discovery: 'external',
    ...(opts.plugins ? { plugins: opts.plugins } : {}), ...(opts.random ? { random: opts.random } : {}),
    ...(opts.environment ? { environment: opts.environment } : {}), ...(opts.spanFlushIntervalMs ? { spanFlushIntervalMs: opts.spanFlushIntervalMs } : {}),
  });
  await app.start();
  closers.push(() => app.shutdown('test done'));

  // Address resources, through the xDS client's conversion path.
  const svc = (name: string, vip: string): PbAddress => ({
    service: {
      name, namespace: NS, hostname: `${name}.${NS}.svc.${TD}`, addresses: [{ network: '', address: ipBytes(vip) }],
      ports: [{ service_port: 80, target_port: 8080 }, { service_port: 81, target_port: 8081 }, { service_port: 9000, target_port: 9000 }],
    },
  });
  const wl = (ep: Endpoint): PbAddress => {
    const ports = { ports: [{ service_port: 80, target_port: ep.httpPort }, { service_port: 81, target_port: ep.h2Port }, { service_port: 9000, target_port: ep.tcpPort }] };
    return {
      workload: {
        uid: `Kubernetes//Pod/${NS}/${ep.name}`, name: ep.name, namespace: NS, addresses: [ipBytes(ep.ip)], tunnel_protocol: 'HBONE',
        service_account: `echo-${ep.version}`, node: 'node-1', canonical_name: 'echo', canonical_revision: ep.version, workload_name: `echo-${ep.version}`,
        services: { [`${NS}/echo.${NS}.svc.${TD}`]: ports, [`${NS}/echo-${ep.version}.${NS}.svc.${TD}`]: ports },
      },
    };
  };
  const client: PbAddress = {
    workload: { uid: `Kubernetes//Pod/${NS}/client-0`, name: 'client-0', namespace: NS, addresses: [ipBytes('127.0.0.1')], tunnel_protocol: 'HBONE', service_account: 'client', canonical_name: 'client', canonical_revision: 'v1', workload_name: 'client' },
  };
  const resources: Array<{ name: string; message: PbAddress }> = [
    { name: `${NS}/echo.${NS}.svc.${TD}`, message: svc('echo', VIPS.echo) },
    { name: `${NS}/echo-v1.${NS}.svc.${TD}`, message: svc('echo-v1', VIPS.echoV1) },
    { name: `${NS}/echo-v2.${NS}.svc.${TD}`, message: svc('echo-v2', VIPS.echoV2) },
    { name: `${NS}/other.${NS}.svc.${TD}`, message: svc('other', VIPS.other) },
    ...endpoints.map((e) => ({ name: `Kubernetes//Pod/${NS}/${e.name}`, message: wl(e) })),
    { name: `Kubernetes//Pod/${NS}/client-0`, message: client },
  ];
  const addAddresses = (list: Array<{ name: string; message: PbAddress }>): void => {
    const converted = convertAddressResponse(list.map((r) => ({ name: r.name, message: decodeAny<PbAddress>(encodeAny(ADDRESS_TYPE_URL, r.message)) })), []);
    const applied = app.addressUpdater.applyDelta(converted.batch);
    if (applied.rejected.length) throw new Error(`harness Address data rejected: ${applied.rejected.map((r) => r.message).join('; ')}`);
  };
  addAddresses(resources);

  const xdsConfig = configObjectXdsType(app.configStore);
  const clientCert = await ca.issueWorkloadCertificate(CLIENT_ID);
  const creds = new Map<string, Credentials>([[CLIENT_ID, { identity: CLIENT_ID, keyPem: clientCert.keyPem, certChainPem: clientCert.certChainPem, rootsPem: clientCert.rootsPem }]]);
  const hboneClient = new HboneClient({
    getCredentials: async (id) => {
      const c = creds.get(id);
      if (c) return c;
      const k = await ca.issueWorkloadCertificate(id);
      const made = { identity: id, keyPem: k.keyPem, certChainPem: k.certChainPem, rootsPem: k.rootsPem };
      creds.set(id, made);
      return made;
    },
  });
  closers.push(() => hboneClient.destroy());
  const wp = app.hboneAddress()!;
  let version = 0;

  const h: Harness = {
    app, endpoints, registry, logs: lines, ca, client: hboneClient,
    addAddresses,
    async metric(name, labels) {
      const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
      const values = (m?.values ?? []) as Array<{ labels: Record<string, string | number>; value: number }>;
      return values.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((a, v) => a + v.value, 0);
    },
    applyConfig(objects, removed = []) {
      version++;
      return xdsConfig.apply({
        resources: objects.map((o) => ({ name: configObjectName(o), version: String(version), typeUrl: CONFIG_OBJECT_TYPE_URL, value: encodeConfigObject(o) })),
        removed,
      });
    },
    async tunnel(authority, identity = CLIENT_ID) {
      const t = await hboneClient.connect({
        sourceIdentity: identity, destinationIdentities: [WAYPOINT_ID], destination: { host: wp.host, port: wp.port }, authority,
        headers: { forwarded: 'for="127.0.0.1:40000"' },
      });
      return t.stream as unknown as Duplex;
    },
    async request(authority, o = {}) {
      const stream = await h.tunnel(authority);
      return new Promise<Reply>((resolve, reject) => {
        // Every request is bounded: a stuck exchange fails the test with its name instead of holding the run.
        const timer = setTimeout(() => { stream.destroy(); reject(new Error(`request to ${authority}${o.path ?? '/'} got no complete response in 10 s; last waypoint log lines: ${lines.slice(-4).map((l) => JSON.stringify(l)).join(' | ')}`)); }, 10_000);
        const body = o.body === undefined ? undefined : Buffer.from(o.body);
        const req = http.request({
          createConnection: () => asHttp1Socket(stream) as unknown as net.Socket, method: o.method ?? 'GET', path: o.path ?? '/',
          headers: { host: o.host ?? 'echo', ...(body ? { 'content-length': String(body.length) } : {}), ...o.headers },
        }, (res) => {
          readBody(res).then((text) => {
            clearTimeout(timer);
            stream.end();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) as EchoBody });
          }, reject);
        });
        req.on('error', (err) => { clearTimeout(timer); reject(err); });
        req.end(body);
      });
    },
    async h2(authority) {
      const stream = await h.tunnel(authority);
      return http2.connect('http://echo', { createConnection: () => stream });
    },
    async close() {
      for (const c of closers.reverse()) await c();
    },
  };
  return h;
}

export function sample(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Polls until `cond` holds (bounded). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function vs(name: string, spec: Record<string, unknown>, created = '2026-01-01T00:00:00Z'): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: NS, creationTimestamp: created }, spec };
}
export function dr(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace: NS }, spec };
}
export function httpRoute(name: string, spec: Record<string, unknown>, opts: { namespace?: string; created?: string } = {}): KubeObject {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: opts.namespace ?? NS, creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z' }, spec };
}
export const echoParent = { group: '', kind: 'Service', name: 'echo', port: 80 };
