// Loopback harness: a real TLS gRPC server with the xDS and CA services, and grpc-js clients that speak to it
// the way ztunnel does (bearer token, clusterid, TLS verified against the mesh root with istiod's hostname).
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import {
  loadGrpcServices, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse,
  type IstioCertificateRequest, type IstioCertificateResponse,
} from '@ambit/api';
import { CertificateAuthority } from '@ambit/pki';
import {
  createCaService, createResourceStore, createXdsServer, issueServingCertificate, startControlPlaneServer,
  type CaServiceOptions, type CallerIdentity, type ControlPlaneServer, type ResourceStore, type XdsServer,
} from '../src/index.js';

export const TOKENS: Record<string, CallerIdentity> = {
  'token-ztunnel-node1': { namespace: 'istio-system', serviceAccount: 'ztunnel', podName: 'ztunnel-aaaaa', podUid: 'uid-z1' },
  'token-ztunnel-node2': { namespace: 'istio-system', serviceAccount: 'ztunnel', podName: 'ztunnel-bbbbb', podUid: 'uid-z2' },
  'token-app': { namespace: 'default', serviceAccount: 'app', podName: 'app-1', podUid: 'uid-app' },
};

/** Stand-in for TokenReview: known tokens map to identities, anything else is refused. */
export function fakeAuthenticate(token: string): CallerIdentity | Error {
  return TOKENS[token] ?? new Error('token is not valid (TokenReview: authenticated=false)');
}

export interface LogCapture {
  logger: Logger;
  lines: Record<string, unknown>[];
}
export function captureLogs(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

export interface Harness {
  ca: CertificateAuthority;
  store: ResourceStore;
  xds: XdsServer;
  server: ControlPlaneServer;
  logs: LogCapture;
  address: string;
  rootPem: string;
  close(): Promise<void>;
}

export async function startHarness(options: { debounceMs?: number; ca?: Partial<CaServiceOptions> } = {}): Promise<Harness> {
  const ca = await CertificateAuthority.create();
  const logs = captureLogs();
  const store = createResourceStore();
  const xds = createXdsServer({ store, authenticate: fakeAuthenticate, logger: logs.logger, debounceMs: options.debounceMs ?? 10 });
  const caService = createCaService({
    ca,
    authenticate: fakeAuthenticate,
    logger: logs.logger,
    nodeOfCaller: (c) => ({ 'ztunnel-aaaaa': 'node1', 'ztunnel-bbbbb': 'node2' } as Record<string, string>)[c.podName ?? ''],
    podsOnNode: (node) => (node === 'node1'
      ? [{ namespace: 'default', name: 'app-1', serviceAccount: 'app' }]
      : [{ namespace: 'payments', name: 'billing-1', serviceAccount: 'billing' }]),
    ...options.ca,
  });
  const tls = await issueServingCertificate(ca);
  const server = await startControlPlaneServer({
    services: [xds, caService], tls: { certChainPem: tls.certPem, keyPem: tls.keyPem }, port: 0, host: '127.0.0.1', logger: logs.logger,
  });
  return {
    ca, store, xds, server, logs, address: `127.0.0.1:${server.port}`, rootPem: ca.rootCertPem,
    async close() {
      xds.close();
      await server.close(1000);
    },
  };
}

function clientOptions(): grpc.ClientOptions {
  // We dial 127.0.0.1 but verify the name agents verify: the serving cert's istiod.istio-system.svc.
  return { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc', 'grpc.default_authority': 'istiod.istio-system.svc' };
}

export function metadataFor(token: string | null, clusterId = 'Kubernetes'): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  md.set('clusterid', clusterId);
  return md;
}

/** An ADS stream with a pull API: `next()` waits (with a deadline) for the next response. */
export interface AdsStream {
  send(req: DeltaDiscoveryRequest): void;
  next(timeoutMs?: number): Promise<DeltaDiscoveryResponse>;
  /** Resolves with the stream's final status. */
  status: Promise<grpc.StatusObject>;
  /** True if no response arrives within `ms`. */
  quietFor(ms: number): Promise<boolean>;
  close(): void;
}

/** `token: null` sends no authorization metadata at all. */
export function openAds(h: Harness, token: string | null = 'token-ztunnel-node1', clusterId?: string): AdsStream {
  const { AdsClient } = loadGrpcServices();
  const client = new AdsClient(h.address, grpc.credentials.createSsl(Buffer.from(h.rootPem)), clientOptions());
  const call = (client as unknown as {
    DeltaAggregatedResources(md: grpc.Metadata): grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  }).DeltaAggregatedResources(metadataFor(token, clusterId));
  const queue: DeltaDiscoveryResponse[] = [];
  const waiters: ((r: DeltaDiscoveryResponse) => void)[] = [];
  call.on('data', (r: DeltaDiscoveryResponse) => {
    const w = waiters.shift();
    if (w) w(r);
    else queue.push(r);
  });
  call.on('error', () => { /* reported through `status` */ });
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return {
    send: (req) => call.write(req),
    next(timeoutMs = 3000) {
      const q = queue.shift();
      if (q) return Promise.resolve(q);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no DeltaDiscoveryResponse within ${timeoutMs} ms`));
        }, timeoutMs);
        const w = (r: DeltaDiscoveryResponse): void => {
          clearTimeout(t);
          resolve(r);
        };
        waiters.push(w);
      });
    },
    status,
    async quietFor(ms) {
      try {
        const r = await this.next(ms);
        queue.unshift(r);
        return false;
      } catch {
        return true;
      }
    },
    close() {
      call.end();
      client.close();
    },
  };
}

export function createCertificate(
  h: Harness, token: string, req: IstioCertificateRequest,
): Promise<IstioCertificateResponse> {
  const { CaClient } = loadGrpcServices();
  const client = new CaClient(h.address, grpc.credentials.createSsl(Buffer.from(h.rootPem)), clientOptions());
  return new Promise((resolve, reject) => {
    (client as unknown as {
      CreateCertificate(r: IstioCertificateRequest, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: IstioCertificateResponse) => void): void;
    }).CreateCertificate(req, metadataFor(token), (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!);
    });
  });
}

/** Polls until `check` returns a value (not undefined), or fails after the deadline. */
export async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
