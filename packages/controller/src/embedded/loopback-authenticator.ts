// Embedded mode has no TokenReview. Its gRPC server listens on loopback only (settings refuse anything else),
// so every caller is a process on this machine. xDS accepts them anonymously; the CA needs an identity to put in
// the certificate, which it takes from the service-account claims of the caller's JWT WITHOUT verifying the
// signature: on loopback the caller could read any key file anyway. Never use this outside embedded mode.
import type { Authenticator, CallerIdentity } from '../auth/caller.js';

interface ServiceAccountClaims {
  sub?: string;
  'kubernetes.io'?: { namespace?: string; serviceaccount?: { name?: string }; pod?: { name?: string; uid?: string } };
}

export const loopbackAuthenticator: Authenticator = (token: string): CallerIdentity | Error => {
  const parts = token.split('.');
  if (parts.length !== 3) return new Error('embedded mode: the token is not a JWT');
  let claims: ServiceAccountClaims;
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as ServiceAccountClaims;
  } catch {
    return new Error('embedded mode: the token payload is not JSON');
  }
  const k = claims['kubernetes.io'];
  const fromSub = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(claims.sub ?? '');
  const namespace = k?.namespace ?? fromSub?.[1];
  const serviceAccount = k?.serviceaccount?.name ?? fromSub?.[2];
  if (!namespace || !serviceAccount) return new Error('embedded mode: the token names no service account (sub: system:serviceaccount:<ns>:<name>)');
  return { namespace, serviceAccount, ...(k?.pod?.name ? { podName: k.pod.name } : {}), ...(k?.pod?.uid ? { podUid: k.pod.uid } : {}) };
};
