// One gRPC server over TLS carries both xDS and the CA (port 15012, like istiod), so agents need one address,
// one root and one hostname for both.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { PORTS } from '@ambit/api';
import { issueTlsCertificate, type CertificateAuthority, type TlsKeyPair } from '@ambit/pki';

export interface GrpcServiceBinding {
  service: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface ControlPlaneServerOptions {
  services: readonly GrpcServiceBinding[];
  /** Serving certificate (leaf first, may include intermediates) and key, PEM. */
  tls: { certChainPem: string; keyPem: string };
  /** Default 15012; 0 picks a free port (tests). */
  port?: number;
  /** Default "0.0.0.0". */
  host?: string;
  logger: Logger;
}

export interface ControlPlaneServer {
  server: grpc.Server;
  port: number;
  /** Stops accepting, then waits up to `graceMs` for calls to finish before cutting them. */
  close(graceMs?: number): Promise<void>;
}

export async function startControlPlaneServer(options: ControlPlaneServerOptions): Promise<ControlPlaneServer> {
  const logger = options.logger.child({ component: 'grpc' });
  const server = new grpc.Server({
    // Agents hold one ADS stream for hours; keepalive finds dead peers behind NATs and silent node failures.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  });
  for (const s of options.services) server.addService(s.service, s.implementation);
  const credentials = grpc.ServerCredentials.createSsl(null, [{
    cert_chain: Buffer.from(options.tls.certChainPem),
    private_key: Buffer.from(options.tls.keyPem),
  }], false);
  const host = options.host ?? '0.0.0.0';
  const wanted = options.port ?? PORTS.xds;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${wanted}`, credentials, (err, bound) => {
      if (err) reject(new Error(`cannot listen on ${host}:${wanted} for xDS/CA: ${err.message}; is another controller running?`, { cause: err }));
      else resolve(bound);
    });
  });
  logger.info({ host, port }, 'xDS and CA listening (TLS)');
  return {
    server,
    port,
    close(graceMs = 5_000) {
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

export interface ServingCertificateOptions {
  /** Namespace of the controller's Service. Default istio-system. */
  namespace?: string;
  /** Name of the controller's Service; default "istiod", the name Istio's agents dial (XDS_ADDRESS, CA_ADDRESS). */
  serviceName?: string;
  clusterDomain?: string;
  extraDnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  ttlSeconds?: number;
}

/**
 * The controller's serving certificate, signed by the mesh CA, so agents verify it with the same root they use
 * for workload certificates (XDS_ROOT_CA / CA_ROOT_CA default to the mesh root file).
 */
export function issueServingCertificate(ca: CertificateAuthority, options: ServingCertificateOptions = {}): Promise<TlsKeyPair> {
  const ns = options.namespace ?? 'istio-system';
  const svc = options.serviceName ?? 'istiod';
  const domain = options.clusterDomain ?? 'cluster.local';
  const dnsNames = [...new Set([
    `${svc}.${ns}.svc`, `${svc}.${ns}.svc.${domain}`, `${svc}.${ns}`, svc, ...(options.extraDnsNames ?? []),
  ])];
  return issueTlsCertificate(ca, {
    commonName: dnsNames[0]!,
    dnsNames,
    ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
    usages: ['server'],
    ttlSeconds: options.ttlSeconds ?? 365 * 24 * 3600,
  });
}
