// AuthorizationPolicy -> istio.security.Authorization for ztunnel (spec §3.5, §6.1), following istiod's ambient
// conversion: each rule is one Group; its `to`, its `from` and each `when` are AND'd Rules; several to/from entries
// are OR'd Matches. ztunnel is L4: in an ALLOW policy a rule naming an HTTP attribute is dropped whole (so the
// policy allows less); in a DENY policy only the HTTP attributes are dropped and what is left is sent, which can be
// a Match with no field set: ztunnel never matches such a Match, so that rule denies nothing. Both cases are
// reported on the policy's `ZtunnelAccepted` condition, as istiod does.
import {
  LABELS,
  type Authorization, type AuthorizationGroup, type AuthorizationMatch, type AuthorizationRules,
  type IpPrefix, type KubeObject, type ServiceAccountMatch, type StringMatch,
} from '@ambit/api';
import { TranslationError, type TranslateContext } from './context.js';
import { parseCidr } from './addresses.js';
import { CONDITION_TYPES } from './mesh.js';
import { waypointFor, lookupWaypoint } from './waypoints.js';

export interface StatusCondition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface PolicyTranslation {
  /** What ztunnel gets; absent for waypoint (targetRef) policies, unsupported actions and unsent dry-run policies. */
  readonly authorization?: Authorization;
  /** Conditions to write on the policy's status; empty when istiod would write none. */
  readonly conditions: StatusCondition[];
  /** matchLabels of a selector policy (WORKLOAD_SELECTOR scope). */
  readonly selector?: Readonly<Record<string, string>>;
}

interface Source {
  principals?: string[]; notPrincipals?: string[];
  requestPrincipals?: string[]; notRequestPrincipals?: string[];
  namespaces?: string[]; notNamespaces?: string[];
  serviceAccounts?: string[]; notServiceAccounts?: string[];
  ipBlocks?: string[]; notIpBlocks?: string[];
  remoteIpBlocks?: string[]; notRemoteIpBlocks?: string[];
}
interface Operation {
  hosts?: string[]; notHosts?: string[];
  ports?: string[]; notPorts?: string[];
  methods?: string[]; notMethods?: string[];
  paths?: string[]; notPaths?: string[];
}
interface Condition { key?: string; values?: string[]; notValues?: string[] }
interface Rule { from?: { source?: Source }[]; to?: { operation?: Operation }[]; when?: Condition[] }

const L7_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
const L7_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const;
const L4_WHEN_KEYS = new Set(['source.ip', 'source.namespace', 'source.principal', 'destination.ip', 'destination.port']);

/** Istio's wildcard convention: `*` presence, `*x` suffix, `x*` prefix, else exact. */
export function toStringMatch(value: string): StringMatch {
  if (value === '*') return { presence: {} };
  if (value.startsWith('*')) return { suffix: value.slice(1) };
  if (value.endsWith('*')) return { prefix: value.slice(0, -1) };
  return { exact: value };
}

/** Converts one policy field; each helper names the field on error so the policy is rejected, not weakened. */
class FieldConverter {
  constructor(private readonly policy: KubeObject) {}

  strings(values: unknown, field: string): StringMatch[] {
    return this.list(values, field).map((v, i) => {
      if (typeof v !== 'string') throw new TranslationError(this.policy, `${field}[${i}]`, 'must be a string');
      return toStringMatch(v);
    });
  }

  ips(values: unknown, field: string): IpPrefix[] {
    return this.list(values, field).map((v, i) => {
      const c = typeof v === 'string' ? parseCidr(v) : undefined;
      if (!c) throw new TranslationError(this.policy, `${field}[${i}]`, `${JSON.stringify(v)} is not an IP address or CIDR`);
      return { address: c.address, length: c.length };
    });
  }

  ports(values: unknown, field: string): number[] {
    return this.list(values, field).map((v, i) => {
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new TranslationError(this.policy, `${field}[${i}]`, `${JSON.stringify(v)} is not a port number`);
      return n;
    });
  }

  serviceAccounts(values: unknown, field: string, namespace: string): ServiceAccountMatch[] {
    return this.list(values, field).map((v, i) => {
      if (typeof v !== 'string' || !v) throw new TranslationError(this.policy, `${field}[${i}]`, 'must be "<namespace>/<serviceaccount>" or "<serviceaccount>"');
      const slash = v.indexOf('/');
      return slash < 0 ? { namespace, serviceAccount: v } : { namespace: v.slice(0, slash), serviceAccount: v.slice(slash + 1) };
    });
  }

  private list(values: unknown, field: string): unknown[] {
    if (values === undefined || values === null) return [];
    if (!Array.isArray(values)) throw new TranslationError(this.policy, field, 'must be a list');
    return values;
  }
}

/** Drops empty repeated fields so the encoded Match carries only what is set. */
function compact(m: AuthorizationMatch): AuthorizationMatch {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (Array.isArray(v) && v.length > 0) out[k] = v;
  return out as AuthorizationMatch;
}

function convertRule(rule: Rule, at: string, action: 'ALLOW' | 'DENY', namespace: string, conv: FieldConverter, l7: Set<string>): AuthorizationRules[] | undefined {
  let foundL7 = false;
  const rules: AuthorizationRules[] = [];
  const to = rule.to ?? [];
  if (to.length > 0) {
    rules.push({
      matches: to.map((t, i) => {
        const op = t?.operation ?? {};
        const f = `${at}.to[${i}].operation`;
        for (const k of L7_OPERATION_FIELDS) if ((op[k]?.length ?? 0) > 0) { foundL7 = true; l7.add(k); }
        return compact({ destination_ports: conv.ports(op.ports, `${f}.ports`), not_destination_ports: conv.ports(op.notPorts, `${f}.notPorts`) });
      }),
    });
  }
  const from = rule.from ?? [];
  if (from.length > 0) {
    rules.push({
      matches: from.map((s, i) => {
        const src = s?.source ?? {};
        const f = `${at}.from[${i}].source`;
        for (const k of L7_SOURCE_FIELDS) if ((src[k]?.length ?? 0) > 0) { foundL7 = true; l7.add(k); }
        return compact({
          source_ips: conv.ips(src.ipBlocks, `${f}.ipBlocks`),
          not_source_ips: conv.ips(src.notIpBlocks, `${f}.notIpBlocks`),
          namespaces: conv.strings(src.namespaces, `${f}.namespaces`),
          not_namespaces: conv.strings(src.notNamespaces, `${f}.notNamespaces`),
          service_accounts: conv.serviceAccounts(src.serviceAccounts, `${f}.serviceAccounts`, namespace),
          not_service_accounts: conv.serviceAccounts(src.notServiceAccounts, `${f}.notServiceAccounts`, namespace),
          principals: conv.strings(src.principals, `${f}.principals`),
          not_principals: conv.strings(src.notPrincipals, `${f}.notPrincipals`),
        });
      }),
    });
  }
  (rule.when ?? []).forEach((w, i) => {
    const key = w?.key ?? '';
    const f = `${at}.when[${i}]`;
    const m: AuthorizationMatch = {};
    if (!L4_WHEN_KEYS.has(key)) {
      foundL7 = true;
      l7.add(key);
    } else if (key === 'source.namespace') {
      m.namespaces = conv.strings(w.values, `${f}.values`);
      m.not_namespaces = conv.strings(w.notValues, `${f}.notValues`);
    } else if (key === 'source.principal') {
      m.principals = conv.strings(w.values, `${f}.values`);
      m.not_principals = conv.strings(w.notValues, `${f}.notValues`);
    } else if (key === 'source.ip') {
      m.source_ips = conv.ips(w.values, `${f}.values`);
      m.not_source_ips = conv.ips(w.notValues, `${f}.notValues`);
    } else if (key === 'destination.ip') {
      m.destination_ips = conv.ips(w.values, `${f}.values`);
      m.not_destination_ips = conv.ips(w.notValues, `${f}.notValues`);
    } else {
      m.destination_ports = conv.ports(w.values, `${f}.values`);
      m.not_destination_ports = conv.ports(w.notValues, `${f}.notValues`);
    }
    rules.push({ matches: [compact(m)] });
  });
  // An ALLOW rule that needs HTTP attributes can never be satisfied at L4: leave it out entirely.
  if (action === 'ALLOW' && foundL7) return undefined;
  return rules;
}

function hasTargetRefs(spec: any): boolean {
  return Boolean(spec?.targetRef) || (Array.isArray(spec?.targetRefs) && spec.targetRefs.length > 0);
}

/** `True` when the policy applies, from its action and the attributes ztunnel had to drop. */
function ztunnelCondition(status: 'True' | 'False', reason: string, message: string): StatusCondition {
  return { type: CONDITION_TYPES.ztunnelAccepted, status, reason, message };
}

/** Where a targetRef policy is bound (istiod's WaypointAccepted condition). */
function waypointCondition(policy: KubeObject, ctx: TranslateContext): StatusCondition {
  const spec = policy.spec ?? {};
  const refs = (Array.isArray(spec.targetRefs) ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : []) as { kind?: string; group?: string; name?: string; namespace?: string }[];
  const ns = policy.metadata.namespace ?? '';
  const bound: string[] = [];
  let problem: { reason: string; message: string } | undefined;
  for (const ref of refs) {
    const key = `${ref.namespace || ns}/${ref.name ?? ''}`;
    const refNs = ref.namespace || ns;
    let result: { ok: true; by: string } | { ok: false; reason: string; message: string };
    if (ref.kind === 'Gateway') {
      const w = lookupWaypoint(ctx, refNs, ref.name ?? '');
      result = 'reason' in w ? { ok: false, reason: 'TargetNotFound', message: w.message } : { ok: true, by: key };
    } else if (ref.kind === 'GatewayClass') {
      const cls = ctx.get('GatewayClass', '', ref.name ?? '');
      if (ns !== ctx.mesh.rootNamespace) result = { ok: false, reason: 'Invalid', message: `an AuthorizationPolicy referencing a GatewayClass must be in the root namespace ${ctx.mesh.rootNamespace}` };
      else result = cls ? { ok: true, by: ref.name ?? '' } : { ok: false, reason: 'TargetNotFound', message: `GatewayClass ${ref.name ?? ''} was not found` };
    } else if (ref.kind === 'Service' || ref.kind === 'ServiceEntry') {
      const target = ctx.get(ref.kind, refNs, ref.name ?? '');
      if (!target) result = { ok: false, reason: 'TargetNotFound', message: `${ref.kind} ${key} was not found` };
      else {
        const b = waypointFor(ctx, { namespace: refNs, labels: target.metadata.labels }, 'service');
        result = b.waypoint
          ? { ok: true, by: `${b.waypoint.namespace}/${b.waypoint.name}` }
          : { ok: false, reason: 'AncestorNotBound', message: `${ref.kind} ${key} is not bound to a waypoint` };
      }
    } else {
      result = { ok: false, reason: 'Invalid', message: `targetRef kind ${JSON.stringify(ref.kind)} is not supported` };
    }
    if (result.ok) bound.push(result.by);
    else problem ??= { reason: result.reason, message: result.message };
  }
  if (problem) return { type: CONDITION_TYPES.waypointAccepted, status: 'False', reason: problem.reason, message: problem.message };
  return { type: CONDITION_TYPES.waypointAccepted, status: 'True', reason: 'Accepted', message: `bound to ${bound.join(', ')}` };
}

/**
 * One AuthorizationPolicy. Throws TranslationError (naming the field) for values that cannot be converted, so the
 * caller keeps the last good version rather than sending a weakened one.
 */
export function translateAuthorizationPolicy(policy: KubeObject, ctx: TranslateContext): PolicyTranslation {
  const spec = policy.spec ?? {};
  const namespace = policy.metadata.namespace ?? '';
  if (hasTargetRefs(spec)) return { conditions: [waypointCondition(policy, ctx)] };

  const dryRun = policy.metadata.annotations?.[LABELS.dryRun]?.toLowerCase() === 'true';
  if (dryRun && !ctx.mesh.enableDryRunAuthorizationPolicy) return { conditions: [] };

  const actionText = (spec.action ?? 'ALLOW') as string;
  if (actionText !== 'ALLOW' && actionText !== 'DENY') {
    return { conditions: [ztunnelCondition('False', 'UnsupportedValue', `ztunnel does not support the ${actionText} action; the policy is not applied by ztunnel`)] };
  }
  const action: 'ALLOW' | 'DENY' = actionText;
  const selectorSpec = spec.selector;
  const selector = selectorSpec ? ((selectorSpec.matchLabels ?? {}) as Record<string, string>) : undefined;
  const scope = selectorSpec ? 'WORKLOAD_SELECTOR' : namespace === ctx.mesh.rootNamespace ? 'GLOBAL' : 'NAMESPACE';

  const conv = new FieldConverter(policy);
  const l7 = new Set<string>();
  const rulesIn = spec.rules ?? [];
  if (!Array.isArray(rulesIn)) throw new TranslationError(policy, 'spec.rules', 'must be a list');
  const groups: AuthorizationGroup[] = [];
  (rulesIn as Rule[]).forEach((rule, i) => {
    const rules = convertRule(rule ?? {}, `spec.rules[${i}]`, action, namespace, conv, l7);
    if (rules) groups.push({ rules });
  });

  const authorization: Authorization = { name: policy.metadata.name, namespace, scope, action, groups };
  if (dryRun) authorization.dry_run = true;
  let condition: StatusCondition;
  if (l7.size > 0) {
    const found = [...l7].sort().join(', ');
    const effect = action === 'ALLOW'
      ? 'In this ALLOW policy the rules that use them are left out, so it allows less than written.'
      : 'In this DENY policy they are removed from the rules; a rule left without any L4 attribute denies nothing.';
    condition = ztunnelCondition('True', 'UnsupportedValue',
      `ztunnel enforces L4 attributes only and ignored HTTP attributes (found: ${found}); bind a waypoint and target it to enforce them. ${effect}`);
  } else {
    condition = ztunnelCondition('True', 'Accepted', 'attached to ztunnel');
  }
  return { authorization, conditions: [condition], ...(selector ? { selector } : {}) };
}

/** A condition for a policy that could not be translated (its previous version, if any, stays in force). */
export function invalidPolicyCondition(message: string): StatusCondition {
  return ztunnelCondition('False', 'InvalidValue', message);
}
