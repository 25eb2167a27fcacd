import type { SpiffeId } from '@ambit/api';
import type { Authorization } from '../state/types.js';
import { keyOfPolicy } from '../state/types.js';

/**
 * PeerAuthentication in ambient is not a resource of its own (spec §6.1): istiod turns an effective STRICT mode
 * into the static DENY policy `<rootns>/istio_converted_static_strict` (`notPrincipals: [presence]`, i.e. deny any
 * connection without an mTLS identity) and lists it on the workload; port-level modes become
 * `converted_peer_authentication_<name>` DENY policies. `authorize()` enforces both like any DENY policy. This file
 * names those policies, builds the static one (for local config and our controller), and gives the plaintext
 * inbound listener (15006) a clearer message than the generic DENY reason.
 */
export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';
export const PORT_LEVEL_PEER_AUTHENTICATION_PREFIX = 'converted_peer_authentication_';

export type PeerAuthenticationMode = 'STRICT' | 'PERMISSIVE';

/** The policy istiod sends for an effective STRICT mode. */
export function createStaticStrictPolicy(rootNamespace: string): Authorization {
  return Object.freeze({
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: 'WorkloadSelector',
    action: 'Deny',
    rules: [[[{ notPrincipals: [{ presence: true }] }]]],
    dryRun: false,
  } as const);
}

/** STRICT when the static strict policy applies to the workload (from its applicable policies). */
export function peerAuthenticationModeOf(applicable: readonly Authorization[]): PeerAuthenticationMode {
  return applicable.some((p) => p.name === STATIC_STRICT_POLICY_NAME && p.action === 'Deny' && !p.dryRun) ? 'STRICT' : 'PERMISSIVE';
}

export interface PeerAuthenticationDecision {
  readonly allow: boolean;
  readonly reason: string;
}

/**
 * Plaintext under STRICT is refused; anything with an mTLS identity passes (HBONE is always mTLS). This is a
 * fast, well-worded pre-check: `authorize()` reaches the same verdict through the static policy.
 */
export function checkPeerAuthentication(input: {
  readonly applicable: readonly Authorization[];
  readonly sourceIdentity?: SpiffeId | string;
}): PeerAuthenticationDecision {
  const strict = input.applicable.find((p) => p.name === STATIC_STRICT_POLICY_NAME && p.action === 'Deny' && !p.dryRun);
  const hasIdentity = typeof input.sourceIdentity === 'string' ? input.sourceIdentity !== '' : input.sourceIdentity !== undefined;
  if (strict && !hasIdentity) {
    return {
      allow: false,
      reason: `plaintext connection refused: PeerAuthentication STRICT requires mTLS (policy "${keyOfPolicy(strict)}"); send through the mesh (HBONE) or set PERMISSIVE`,
    };
  }
  return { allow: true, reason: strict ? 'mTLS identity present (STRICT)' : 'PERMISSIVE' };
}
