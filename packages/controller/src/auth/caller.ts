// Who is calling: the bearer token every xDS and CA client sends, turned into a Kubernetes identity by an injected
// authenticator (TokenReview in a cluster, a fake in tests). Shared by the xDS and CA services so both refuse the
// same callers with the same messages.
import * as grpc from '@grpc/grpc-js';
import { GRPC_METADATA } from '@ambit/api';

/** The Kubernetes identity behind a service-account token. */
export interface CallerIdentity {
  namespace: string;
  serviceAccount: string;
  /** From a bound (projected) token: the pod it was issued to. */
  podName?: string;
  podUid?: string;
}

/**
 * Validates a bearer token. Resolve to the identity, or reject / resolve to an Error whose message says why
 * (it reaches the client in the UNAUTHENTICATED status).
 */
export type Authenticator = (token: string) => Promise<CallerIdentity | Error> | CallerIdentity | Error;

/** An Error that grpc-js turns into a status with this code and details. */
export interface GrpcStatusError extends Error {
  code: grpc.status;
  details: string;
}

export function grpcError(code: grpc.status, message: string): GrpcStatusError {
  return Object.assign(new Error(message), { code, details: message });
}

export function isGrpcStatusError(err: unknown): err is GrpcStatusError {
  return err instanceof Error && typeof (err as Partial<GrpcStatusError>).code === 'number';
}

export interface AuthenticateCallOptions {
  /** Undefined means every caller is accepted as anonymous (local development only). */
  authenticate?: Authenticator;
  /** This controller's cluster; a client naming another one in `clusterid` is refused. */
  clusterId: string;
}

export const ANONYMOUS: CallerIdentity = Object.freeze({ namespace: '', serviceAccount: '' });

/** Checks `clusterid` and `authorization: Bearer <token>`; throws a GrpcStatusError (UNAUTHENTICATED) on failure. */
export async function authenticateCall(metadata: grpc.Metadata, options: AuthenticateCallOptions): Promise<CallerIdentity> {
  const clusterId = firstString(metadata, GRPC_METADATA.clusterId);
  // Absent is accepted: Istio's clients always send it, but other xDS clients (grpcurl, Envoy) may not.
  if (clusterId !== undefined && clusterId !== options.clusterId) {
    throw grpcError(grpc.status.UNAUTHENTICATED,
      `client cluster "${clusterId}" (clusterid header) is not this controller's cluster "${options.clusterId}"; check CLUSTER_ID on the client`);
  }
  if (!options.authenticate) return ANONYMOUS;
  const header = firstString(metadata, GRPC_METADATA.authorization);
  if (!header) {
    throw grpcError(grpc.status.UNAUTHENTICATED,
      'no "authorization: Bearer <token>" metadata; the client must send its service-account token');
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw grpcError(grpc.status.UNAUTHENTICATED, 'authorization metadata is not of the form "Bearer <token>"');
  let result: CallerIdentity | Error;
  try {
    result = await options.authenticate(m[1]!);
  } catch (err) {
    result = err instanceof Error ? err : new Error(String(err));
  }
  if (result instanceof Error) {
    throw grpcError(grpc.status.UNAUTHENTICATED, `service-account token rejected: ${result.message}`);
  }
  if (!result.namespace || !result.serviceAccount) {
    throw grpcError(grpc.status.UNAUTHENTICATED, 'service-account token names no namespace/service account');
  }
  return result;
}

export function formatCaller(caller: CallerIdentity): string {
  if (!caller.serviceAccount) return 'anonymous';
  return `${caller.namespace}/${caller.serviceAccount}${caller.podName ? ` (pod ${caller.podName})` : ''}`;
}

function firstString(metadata: grpc.Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}
