import { BlockList } from 'node:net';
import { parseSpiffeId, type SpiffeId } from '@ambit/api';
import { canonicalizeIp, parseCidr } from '../state/ip.js';
import type { Authorization, AuthorizationMatch, StringMatch, Workload } from '../state/types.js';
import { keyOfPolicy } from '../state/types.js';

/**
 * L4 authorization at the destination (spec §6.1), the same decision as ztunnel's `assert_rbac` + `rbac.rs`:
 * 1. any matching DENY policy denies;
 * 2. no ALLOW policy applies: allow;
 * 3. any matching ALLOW policy allows;
 * 4. otherwise deny.
 * Dry-run policies take no part in the decision; the decision they would have led to is reported beside it.
 */

/** What the destination agent knows about one inbound connection. */
export interface ConnectionFacts {
  /**
   * The peer's identity from its mTLS certificate: parsed, or the SPIFFE URI as presented. Absent for plaintext
   * (15006) traffic. The source namespace is always derived from it, never from the source IP.
   */
  readonly sourceIdentity?: SpiffeId | string;
  readonly sourceIp: string;
  /** The destination pod IP. */
  readonly destinationIp: string;
  /** The target port after service -> target translation, not 15008. */
  readonly destinationPort: number;
  /** The local workload the connection is for. Not used by the decision (the caller already chose its policies
   * with `state.policiesFor(workload)`); carried so one facts object can feed the decision and the access log. */
  readonly destinationWorkload?: Workload;
}

export interface AuthorizationDecision {
  readonly allow: boolean;
  /** Names the policy that decided, e.g. `denied by DENY policy "ns/name"`. */
  readonly reason: string;
  /** `ns/name` of the deciding policy, when one did. */
  readonly policy?: string;
  /** Present when dry-run policies applied: what would have happened had they been enforced. Not enforced. */
  readonly dryRun?: { readonly allow: boolean; readonly reason: string; readonly policy?: string };
}

/** The facts the matchers need, derived once per connection. */
interface Peer {
  /** The identity without `spiffe://` ("" for none): what principals are compared against. */
  readonly principal: string;
  /** From the identity ("" for none). */
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly hasIdentity: boolean;
  readonly sourceIp: string | undefined;
  readonly destinationIp: string | undefined;
  readonly destinationPort: number;
}

export function authorize(facts: ConnectionFacts, policies: readonly Authorization[]): AuthorizationDecision {
  const peer = derivePeer(facts);
  const enforced = policies.filter((p) => !p.dryRun);
  const decision = decide(peer, enforced);
  if (enforced.length === policies.length) return decision;
  const shadow = decide(peer, policies);
  return { ...decision, dryRun: shadow };
}

function decide(peer: Peer, policies: readonly Authorization[]): Omit<AuthorizationDecision, 'dryRun'> {
  const deny = policies.filter((p) => p.action === 'Deny');
  const allow = policies.filter((p) => p.action === 'Allow');
  for (const p of deny) {
    if (matchesPeer(p, peer)) return { allow: false, reason: `denied by DENY policy "${keyOfPolicy(p)}"`, policy: keyOfPolicy(p) };
  }
  if (allow.length === 0) {
    return { allow: true, reason: deny.length ? `allowed: no ALLOW policy applies (${deny.length} DENY not matched)` : 'allowed: no policy applies' };
  }
  for (const p of allow) {
    if (matchesPeer(p, peer)) return { allow: true, reason: `allowed by ALLOW policy "${keyOfPolicy(p)}"`, policy: keyOfPolicy(p) };
  }
  return { allow: false, reason: `denied: no ALLOW policy matched (${allow.length} applicable)` };
}

/** Whether one policy matches the connection, ignoring its action and dry-run flag. */
export function matchesPolicy(policy: Authorization, facts: ConnectionFacts): boolean {
  return matchesPeer(policy, derivePeer(facts));
}

function derivePeer(facts: ConnectionFacts): Peer {
  let principal = '';
  let namespace = '';
  let serviceAccount = '';
  const id = facts.sourceIdentity;
  if (typeof id === 'string' && id !== '') {
    const parsed = parseSpiffeId(id);
    // Principals are compared without the scheme; an identity without it matches no principal (ztunnel's
    // `matches_principal` fails when "spiffe://" is absent).
    principal = parsed ? `${parsed.trustDomain}/ns/${parsed.namespace}/sa/${parsed.serviceAccount}` : '';
    namespace = parsed?.namespace ?? '';
    serviceAccount = parsed?.serviceAccount ?? '';
  } else if (typeof id === 'object' && id) {
    principal = `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
    namespace = id.namespace;
    serviceAccount = id.serviceAccount;
  }
  return {
    principal,
    namespace,
    serviceAccount,
    hasIdentity: principal !== '',
    sourceIp: canonicalizeIp(facts.sourceIp),
    destinationIp: canonicalizeIp(facts.destinationIp),
    destinationPort: facts.destinationPort,
  };
}

/** Rules ORed; clauses within a rule ANDed; matches within a clause ORed. */
function matchesPeer(policy: Authorization, peer: Peer): boolean {
  // No rules: matches nothing (an ALLOW allows nothing, a DENY denies nothing).
  for (const rule of policy.rules) {
    let ruleMatches = true;
    for (const clause of rule) {
      // An empty clause matches; a clause whose matches are all empty does not.
      if (clause.length === 0) continue;
      if (!clause.some((m) => matchesOne(m, peer))) {
        ruleMatches = false;
        break;
      }
    }
    if (ruleMatches) return true;
  }
  return false;
}

/** All set fields must hold (ANDed); within a field any value (ORed); within a not* field, none. */
function matchesOne(m: AuthorizationMatch, peer: Peer): boolean {
  if (isEmptyMatch(m)) return false;
  return (
    field(m.destinationIps, m.notDestinationIps, (c) => inCidrs(c, peer.destinationIp)) &&
    field(m.sourceIps, m.notSourceIps, (c) => inCidrs(c, peer.sourceIp)) &&
    field(m.destinationPorts, m.notDestinationPorts, (ports) => ports.includes(peer.destinationPort)) &&
    field(m.serviceAccounts, m.notServiceAccounts, (sas) =>
      peer.hasIdentity && sas.some((sa) => sa.namespace === peer.namespace && sa.serviceAccount === peer.serviceAccount)) &&
    field(m.principals, m.notPrincipals, (ps) => peer.hasIdentity && ps.some((p) => matchesString(p, peer.principal))) &&
    field(m.namespaces, m.notNamespaces, (ns) => ns.some((n) => matchesString(n, peer.namespace)))
  );
}

/** positive: absent or any matches; negative: absent or none matches. */
function field<T>(positive: readonly T[] | undefined, negative: readonly T[] | undefined, anyMatch: (values: readonly T[]) => boolean): boolean {
  if (positive && positive.length > 0 && !anyMatch(positive)) return false;
  if (negative && negative.length > 0 && anyMatch(negative)) return false;
  return true;
}

function isEmptyMatch(m: AuthorizationMatch): boolean {
  for (const v of Object.values(m)) if (Array.isArray(v) && v.length > 0) return false;
  return true;
}

export function matchesString(m: StringMatch, value: string): boolean {
  if ('exact' in m) return value === m.exact;
  if ('prefix' in m) return value.startsWith(m.prefix);
  if ('suffix' in m) return value.endsWith(m.suffix);
  return value !== '';
}

// CIDR lists are compiled once per list into a node:net BlockList (native prefix match for v4 and v6); the
// validated policy objects are frozen, so the list array identity is a safe cache key.
const compiled = new WeakMap<readonly string[], { v4: BlockList; v6: BlockList }>();

function inCidrs(cidrs: readonly string[], ip: string | undefined): boolean {
  if (!ip) return false;
  let lists = compiled.get(cidrs);
  if (!lists) {
    lists = { v4: new BlockList(), v6: new BlockList() };
    for (const text of cidrs) {
      const c = parseCidr(text);
      if (typeof c === 'string') continue; // rejected by validation already
      if (c.family === 4) lists.v4.addSubnet(c.address, c.prefix, 'ipv4');
      else lists.v6.addSubnet(c.address, c.prefix, 'ipv6');
    }
    compiled.set(cidrs, lists);
  }
  return ip.includes(':') ? lists.v6.check(ip, 'ipv6') : lists.v4.check(ip, 'ipv4');
}
