// Service-account token authentication with TokenReview, the way istiod's kube JWT authenticator does it: a
// bound token (it has an `aud` claim) must be valid for the `istio-ca` audience; a legacy token without `aud` is
// reviewed without audiences. Results are cached by a hash of the token (never the token) for a short time.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Authenticator, CallerIdentity } from '../auth/caller.js';
import type { KubeRest } from './kube-rest.js';
import { collectionPath, RESOURCES } from './resources.js';

/** The audience agents request for their projected token (Istio's chart: `istio-ca`). */
export const ISTIO_CA_AUDIENCE = 'istio-ca';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
const SA_PREFIX = 'system:serviceaccount:';

export interface TokenReviewAuthenticatorOptions {
  rest: KubeRest;
  logger: Logger;
  audiences?: readonly string[];
  /** How long an accepted token's identity is reused. Default 60 s (never past the token's exp). */
  cacheTtlMs?: number;
  /** How long a rejection is remembered. Default 5 s. */
  negativeCacheTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

interface Claims {
  aud?: string | string[];
  exp?: number;
  sub?: string;
}

/** The unverified claims of a JWT (used only to explain a rejection and to pick the audiences to review). */
function peekClaims(token: string): Claims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const c = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return typeof c === 'object' && c !== null ? (c as Claims) : undefined;
  } catch {
    return undefined;
  }
}

export function createTokenReviewAuthenticator(options: TokenReviewAuthenticatorOptions): Authenticator {
  const logger = options.logger.child({ component: 'token-review' });
  const audiences = options.audiences ?? [ISTIO_CA_AUDIENCE];
  const ttl = options.cacheTtlMs ?? 60_000;
  const negativeTtl = options.negativeCacheTtlMs ?? 5_000;
  const now = options.now ?? Date.now;
  const cache = new LRUCache<string, CallerIdentity | Error>({ max: options.maxEntries ?? 10_000, ttl, ttlAutopurge: false });
  const inflight = new Map<string, Promise<CallerIdentity | Error>>();

  async function review(token: string): Promise<CallerIdentity | Error> {
    const claims = peekClaims(token);
    if (!claims) return new Error('the token is not a JWT');
    const aud = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (claims.exp !== undefined && claims.exp * 1000 <= now()) {
      return new Error(`the token expired at ${new Date(claims.exp * 1000).toISOString()}`);
    }
    // A legacy (secret-based) token has no audience; istiod reviews it without audiences.
    const reviewAudiences = aud.length === 0 ? [] : [...audiences];
    if (aud.length > 0 && !aud.some((a) => audiences.includes(a))) {
      return new Error(`the token is for audience ${aud.join(', ')}, not ${audiences.join(', ')}; mount a projected token with audience ${audiences[0]}`);
    }
    let status: TokenReviewStatus;
    try {
      const res = await options.rest.request<{ status?: TokenReviewStatus }>('POST', collectionPath(RESOURCES.TokenReview), {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, ...(reviewAudiences.length ? { audiences: reviewAudiences } : {}) },
        },
      });
      status = res.status ?? {};
    } catch (err) {
      // Not cached: the apiserver being unreachable says nothing about the token.
      throw new Error(`TokenReview failed: ${(err as Error).message}`, { cause: err });
    }
    if (!status.authenticated) {
      return new Error(`TokenReview did not authenticate the token${claims.sub ? ` of ${claims.sub}` : ''}: ${status.error || 'no reason given'}`);
    }
    const username = status.user?.username ?? '';
    if (!username.startsWith(SA_PREFIX)) return new Error(`the token belongs to "${username}", which is not a service account`);
    const [namespace, serviceAccount] = username.slice(SA_PREFIX.length).split(':');
    if (!namespace || !serviceAccount) return new Error(`the token's user "${username}" does not name a namespace and service account`);
    if (reviewAudiences.length > 0 && status.audiences && !status.audiences.some((a) => audiences.includes(a))) {
      return new Error(`the token is valid for ${status.audiences.join(', ')}, not ${audiences.join(', ')}`);
    }
    const extra = status.user?.extra ?? {};
    const podName = extra[POD_NAME_EXTRA]?.[0];
    const podUid = extra[POD_UID_EXTRA]?.[0];
    return { namespace, serviceAccount, ...(podName ? { podName } : {}), ...(podUid ? { podUid } : {}) };
  }

  return async (token: string) => {
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = cache.get(key);
    if (hit) return hit;
    let p = inflight.get(key);
    if (!p) {
      p = review(token).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    const result = await p;
    if (result instanceof Error) {
      logger.debug({ reason: result.message }, 'token rejected');
      cache.set(key, result, { ttl: negativeTtl });
    } else {
      const exp = peekClaims(token)?.exp;
      const left = exp === undefined ? ttl : Math.min(ttl, exp * 1000 - now());
      if (left > 0) cache.set(key, result, { ttl: left });
    }
    return result;
  };
}
