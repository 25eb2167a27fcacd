import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  CertificateError,
  ConfigError,
  GRPC_METADATA,
  IdentityMismatchError,
  IMPERSONATED_IDENTITY_KEY,
  loadGrpcServices,
  toStruct,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
} from '@ambit/api';
import { createCsr, splitPemBundle, verifyChain, type CertifiedKey } from '@ambit/pki';
import { parseGrpcTarget, type AuthTokenSource, type GrpcTarget } from '../config/load.js';
import { createLocalCaClient, type CaClient } from './secret-manager.js';

/**
 * Istio's certificate service client (spec §4): `istio.v1.auth.IstioCertificateService/CreateCertificate` with a
 * fresh ECDSA P-256 CSR whose only name is the requested SPIFFE URI, `ImpersonatedIdentity` in the request
 * metadata (the agent asks on behalf of a pod), and `authorization: Bearer <token>` + `clusterid` as gRPC metadata.
 * The channel is TLS, verified with the root file, which is re-read on every request so a rotated root takes
 * effect without a restart. The issued leaf must carry exactly the requested identity.
 *
 * Renewal at half-life and retry backoff (max 150 s) are the SecretManager's rotator's job; this client does one
 * request per call.
 */

export interface GrpcCaClientOptions {
  /** CA_ADDRESS: `[https://]host:port` (or `http://host:port`, plaintext, for tests). */
  readonly address: string;
  /** CA_ROOT_CA: PEM root(s) that verify the server's TLS certificate. */
  readonly rootCaPath: string;
  /** ALT_CA_HOSTNAME: name to verify in the server certificate instead of the address's host. */
  readonly altHostname?: string | undefined;
  readonly authToken: AuthTokenSource;
  readonly clusterId: string;
  /** CA_HEADER_* extras. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Requested lifetime (SECRET_TTL); the server may shorten it. */
  readonly ttlSeconds: number;
  /** Deadline of one CreateCertificate call. Default 10 s. */
  readonly timeoutMs?: number;
  readonly logger: Logger;
}

export interface GrpcCaClient extends CaClient {
  close(): void;
}

/** Reads the bearer token (a file is re-read on each use: projected service-account tokens rotate). */
export async function readAuthToken(source: AuthTokenSource): Promise<string> {
  if ('token' in source) return source.token;
  let text: string;
  try {
    text = await readFile(source.file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the service-account token ${source.file}: ${(err as Error).message}; mount the istio-token projected volume or set AUTH_TOKEN`, { cause: err });
  }
  const token = text.trim();
  if (!token) throw new ConfigError(`the service-account token file ${source.file} is empty`);
  return token;
}

/** gRPC metadata Istio's clients send: extra headers, then `authorization` and `clusterid` (which win). */
export function buildCallMetadata(token: string, clusterId: string, headers: Readonly<Record<string, string>> = {}): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  md.set(GRPC_METADATA.authorization, `Bearer ${token}`);
  md.set(GRPC_METADATA.clusterId, clusterId);
  return md;
}

/**
 * Channel credentials for a target: TLS verified with the PEM roots read from `rootCaPath` now, or plaintext for
 * an `http://` address. Returns the root text so callers can notice a rotated root.
 */
export async function createChannelCredentials(target: GrpcTarget, rootCaPath: string, what: string): Promise<{ credentials: grpc.ChannelCredentials; rootPem: string }> {
  if (!target.tls) return { credentials: grpc.credentials.createInsecure(), rootPem: '' };
  let rootPem: string;
  try {
    rootPem = await readFile(rootCaPath, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the root certificate ${rootCaPath} that verifies ${what}: ${(err as Error).message}`, { cause: err });
  }
  if (splitPemBundle(rootPem).length === 0) throw new ConfigError(`${rootCaPath} holds no PEM certificate (it should verify ${what})`);
  return { credentials: grpc.credentials.createSsl(Buffer.from(rootPem)), rootPem };
}

/** Self-signed: its own issuer, and its signature verifies with its own key. */
function isSelfSigned(pem: string): boolean {
  try {
    const c = new X509Certificate(pem);
    return c.ca && c.checkIssued(c) && c.verify(c.publicKey);
  } catch {
    return false;
  }
}

const CALL_HINTS: Partial<Record<grpc.status, string>> = {
  [grpc.status.UNAUTHENTICATED]: 'is the token valid and issued for the audience istio-ca?',
  [grpc.status.PERMISSION_DENIED]: 'may this agent impersonate that identity (trusted node account, a pod with it on this node)?',
  [grpc.status.UNAVAILABLE]: 'is the CA reachable, and does CA_ROOT_CA verify its certificate?',
  [grpc.status.DEADLINE_EXCEEDED]: 'is the CA reachable and healthy?',
};

type CreateCertificateMethod = (
  request: IstioCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<IstioCertificateResponse>,
) => void;

export function createGrpcCaClient(options: GrpcCaClientOptions): GrpcCaClient {
  const target = parseGrpcTarget(options.address);
  if (!target) throw new ConfigError(`CA address "${options.address}" is not [https://]host:port`);
  const log = options.logger;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const { CaClient: CaServiceClient } = loadGrpcServices();
  let channel: { client: grpc.Client; rootPem: string } | undefined;

  async function client(): Promise<grpc.Client> {
    const { credentials, rootPem } = await createChannelCredentials(target!, options.rootCaPath, `the CA at ${options.address}`);
    if (channel && channel.rootPem === rootPem) return channel.client;
    if (channel) {
      log.info({ rootCaPath: options.rootCaPath }, 'CA root changed: rebuilding the CA channel');
      channel.client.close();
    }
    const channelOptions: grpc.ChannelOptions = {
      // Retries are the rotator's (backoff up to 150 s); the channel must not sit in a longer backoff of its own.
      'grpc.max_reconnect_backoff_ms': 15_000,
      ...(options.altHostname ? { 'grpc.ssl_target_name_override': options.altHostname, 'grpc.default_authority': options.altHostname } : {}),
    };
    channel = { client: new CaServiceClient(target!.target, credentials, channelOptions), rootPem };
    return channel.client;
  }

  function call(c: grpc.Client, request: IstioCertificateRequest, metadata: grpc.Metadata): Promise<IstioCertificateResponse> {
    const method = (c as unknown as { CreateCertificate: CreateCertificateMethod }).CreateCertificate;
    return new Promise((resolve, reject) => {
      method.call(c, request, metadata, { deadline: Date.now() + timeoutMs }, (err, resp) => (err ? reject(err) : resolve(resp ?? {})));
    });
  }

  return {
    describe: () => `CA ${options.address}`,

    async fetchCertificate(identity) {
      const [c, token, { csrPem, keyPem }] = await Promise.all([client(), readAuthToken(options.authToken), createCsr(identity)]);
      const request: IstioCertificateRequest = {
        csr: csrPem,
        validity_duration: options.ttlSeconds,
        metadata: toStruct({ [IMPERSONATED_IDENTITY_KEY]: identity }),
      };
      let response: IstioCertificateResponse;
      try {
        response = await call(c, request, buildCallMetadata(token, options.clusterId, options.headers));
      } catch (err) {
        const e = err as grpc.ServiceError;
        const hint = CALL_HINTS[e.code as grpc.status];
        throw new CertificateError(
          `CreateCertificate for ${identity} at ${options.address} failed: ${grpc.status[e.code] ?? e.code} ${e.details ?? e.message}${hint ? `; ${hint}` : ''}`,
          { cause: err },
        );
      }
      // Each entry should be one PEM certificate; a bundle in one entry is tolerated.
      const pems = (response.cert_chain ?? []).flatMap((p) => splitPemBundle(p));
      if (pems.length === 0) throw new CertificateError(`CA ${options.address} returned no certificate for ${identity}`);
      // Istio's CA appends its root: it becomes the workload trust root (so a root rotated by the CA reaches the
      // data path), as ztunnel does. Without it, the root file that verified the CA's TLS is the trust root.
      let chain = pems;
      let roots: string[];
      if (pems.length > 1 && isSelfSigned(pems[pems.length - 1]!)) {
        roots = [pems[pems.length - 1]!];
        chain = pems.slice(0, -1);
      } else {
        try {
          roots = splitPemBundle(await readFile(options.rootCaPath, 'utf8'));
        } catch (err) {
          throw new CertificateError(`CA ${options.address} sent no root and ${options.rootCaPath} cannot be read to verify the chain`, { cause: err });
        }
      }
      let verified;
      try {
        verified = verifyChain(chain, roots);
      } catch (err) {
        throw new CertificateError(`certificate from CA ${options.address} for ${identity} does not verify: ${(err as Error).message}`, { cause: err });
      }
      if (verified.identity !== identity) {
        throw new IdentityMismatchError(`CA ${options.address} issued a certificate for ${verified.identity ?? 'no single identity'} when ${identity} was requested`);
      }
      log.debug({ identity, notAfter: verified.notAfter.toISOString() }, 'certificate issued by the CA');
      return { identity, keyPem, certChainPem: chain, rootsPem: roots, notBefore: verified.notBefore, notAfter: verified.notAfter } satisfies CertifiedKey;
    },

    close() {
      channel?.client.close();
      channel = undefined;
    },
  };
}

/** The CA settings the agent and the waypoint share (their configs use the same variable names). */
export interface CaSettings {
  localCa?: { certPath: string; keyPath: string } | undefined;
  caAddress?: string | undefined;
  caRootCaPath: string;
  altCaHostname?: string | undefined;
  authToken: AuthTokenSource;
  clusterId: string;
  caHeaders: Readonly<Record<string, string>>;
  trustDomain: string;
  secretTtlSeconds: number;
}

/**
 * The CA a process's certificates come from: local CA files, or the controller's CA over gRPC. Config guarantees
 * one of them; `close` ends the gRPC channel (a no-op for the local CA).
 */
export async function createConfiguredCaClient(settings: CaSettings, logger: Logger): Promise<{ ca: CaClient; close: () => void }> {
  if (settings.localCa) {
    return { ca: await createLocalCaClient({ ...settings.localCa, trustDomain: settings.trustDomain, ttlSeconds: settings.secretTtlSeconds }), close: () => {} };
  }
  const grpcCa = createGrpcCaClient({
    address: settings.caAddress!, rootCaPath: settings.caRootCaPath, altHostname: settings.altCaHostname, authToken: settings.authToken,
    clusterId: settings.clusterId, headers: settings.caHeaders, ttlSeconds: settings.secretTtlSeconds, logger,
  });
  return { ca: grpcCa, close: () => grpcCa.close() };
}
