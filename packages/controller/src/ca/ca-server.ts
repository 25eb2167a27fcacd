// istio.v1.auth.IstioCertificateService/CreateCertificate: signs a CSR for the caller's own identity, or, for a
// trusted node agent, for the identity of a pod on the agent's own node (istiod's node_auth.go rules, spec §4).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  DEFAULT_CLUSTER_ID, IMPERSONATED_IDENTITY_KEY, formatSpiffeId, loadGrpcServices, parseSpiffeId, structString,
  type IstioCertificateRequest, type IstioCertificateResponse,
} from '@ambit/api';
import { DEFAULT_WORKLOAD_TTL_SECONDS, MAX_WORKLOAD_TTL_SECONDS, type CertificateAuthority } from '@ambit/pki';
import { authenticateCall, formatCaller, grpcError, isGrpcStatusError, type Authenticator, type CallerIdentity } from '../auth/caller.js';

/** A pod as the impersonation check needs it. */
export interface PodIdentity {
  namespace: string;
  name: string;
  serviceAccount: string;
}

export interface CaServiceOptions {
  ca: CertificateAuthority;
  authenticate: Authenticator;
  logger: Logger;
  clusterId?: string;
  /** `<namespace>/<service account>` allowed to ask for other identities (CA_TRUSTED_NODE_ACCOUNTS). */
  trustedNodeAccounts?: readonly string[];
  /**
   * The node the calling pod runs on, after checking the pod exists with the token's UID and service account;
   * undefined when it cannot be established (the request is then refused).
   */
  nodeOfCaller: (caller: CallerIdentity) => Promise<string | undefined> | string | undefined;
  podsOnNode: (nodeName: string) => Promise<readonly PodIdentity[]> | readonly PodIdentity[];
  /** Lifetime when the client asks for none. Default 24 h (DEFAULT_WORKLOAD_CERT_TTL). */
  defaultTtlSeconds?: number;
  /** Longer requests are shortened to this. Default 90 d (MAX_WORKLOAD_CERT_TTL). */
  maxTtlSeconds?: number;
}

export interface CaService {
  service: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export const DEFAULT_TRUSTED_NODE_ACCOUNTS: readonly string[] = Object.freeze(['istio-system/ztunnel']);

export function createCaService(options: CaServiceOptions): CaService {
  const logger = options.logger.child({ component: 'ca' });
  const clusterId = options.clusterId ?? DEFAULT_CLUSTER_ID;
  const trusted = new Set(options.trustedNodeAccounts ?? DEFAULT_TRUSTED_NODE_ACCOUNTS);
  const defaultTtl = options.defaultTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
  const maxTtl = Math.min(options.maxTtlSeconds ?? MAX_WORKLOAD_TTL_SECONDS, MAX_WORKLOAD_TTL_SECONDS);
  const trustDomain = options.ca.trustDomain;

  async function identityFor(caller: CallerIdentity, req: IstioCertificateRequest): Promise<string> {
    const own = formatSpiffeId({ trustDomain, namespace: caller.namespace, serviceAccount: caller.serviceAccount });
    const requested = structString(req.metadata, IMPERSONATED_IDENTITY_KEY);
    if (!requested || requested === own) return own;

    const callerSa = `${caller.namespace}/${caller.serviceAccount}`;
    const deny = (reason: string): never => {
      throw grpcError(grpc.status.PERMISSION_DENIED, `caller ${formatCaller(caller)} may not obtain a certificate for ${requested}: ${reason}`);
    };
    if (!trusted.has(callerSa)) {
      deny(`only trusted node agents (${[...trusted].join(', ') || 'none configured'}) may impersonate, and ${callerSa} is not one`);
    }
    const id = parseSpiffeId(requested);
    if (!id) deny('ImpersonatedIdentity is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>');
    if (id!.trustDomain !== trustDomain) deny(`trust domain "${id!.trustDomain}" is not this mesh's "${trustDomain}"`);
    const node = await options.nodeOfCaller(caller);
    if (!node) deny('the node of the calling pod could not be determined (is the token bound to a running pod?)');
    const pods = await options.podsOnNode(node!);
    const match = pods.some((p) => p.namespace === id!.namespace && p.serviceAccount === id!.serviceAccount);
    if (!match) deny(`no pod with service account ${id!.namespace}/${id!.serviceAccount} runs on the caller's node ${node}`);
    return requested;
  }

  async function createCertificate(
    call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
  ): Promise<IstioCertificateResponse> {
    const caller = await authenticateCall(call.metadata, { authenticate: options.authenticate, clusterId });
    const req = call.request;
    if (!req.csr) throw grpcError(grpc.status.INVALID_ARGUMENT, 'IstioCertificateRequest.csr is empty');
    const identity = await identityFor(caller, req);
    const asked = Number(req.validity_duration ?? 0);
    const ttlSeconds = asked > 0 ? Math.min(asked, maxTtl) : defaultTtl;
    let chain: string[];
    try {
      chain = await options.ca.signCsr(req.csr, { identity, ttlSeconds });
    } catch (err) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, `cannot sign the CSR for ${identity}: ${(err as Error).message}`);
    }
    logger.info({ caller: formatCaller(caller), identity, ttlSeconds }, 'issued workload certificate');
    return { cert_chain: chain };
  }

  const { ca } = loadGrpcServices();
  return {
    service: ca,
    implementation: {
      CreateCertificate: ((call, callback) => {
        createCertificate(call).then(
          (res) => callback(null, res),
          (err: unknown) => {
            const status = isGrpcStatusError(err) ? err : grpcError(grpc.status.INTERNAL, `certificate request failed: ${String(err)}`);
            logger.warn({ peer: call.getPeer(), code: grpc.status[status.code], reason: status.details }, 'certificate request refused');
            callback(status);
          },
        );
      }) as grpc.handleUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
    },
  };
}
