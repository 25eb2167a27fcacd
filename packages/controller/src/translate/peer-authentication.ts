// PeerAuthentication in ambient (spec §6.1): never sent as such. The effective mode of a workload (mesh ->
// namespace -> workload, the oldest policy winning at each level) becomes a reference to the static DENY policy
// `<rootns>/istio_converted_static_strict` (deny anything without an mTLS identity) and/or to a converted
// port-level policy `<ns>/converted_peer_authentication_<name>`, as istiod computes them. The names are the
// ones packages/ztunnel/src/policy/peer-authentication.ts expects.
import type { Authorization, AuthorizationGroup, AuthorizationRules, KubeObject } from '@ambit/api';
import { TranslationError } from './context.js';
import { labelsMatch, type LabelMap } from './object-index.js';

export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';
export const PORT_LEVEL_POLICY_PREFIX = 'converted_peer_authentication_';

type Mode = 'UNSET' | 'STRICT' | 'PERMISSIVE' | 'DISABLE';

const MODES = new Set<Mode>(['UNSET', 'STRICT', 'PERMISSIVE', 'DISABLE']);

function modeOf(pa: KubeObject, mtls: unknown, field: string): Mode {
  const mode = (mtls as { mode?: unknown } | undefined)?.mode;
  if (mode === undefined || mode === null || mode === '') return 'UNSET';
  if (typeof mode === 'string' && MODES.has(mode as Mode)) return mode as Mode;
  throw new TranslationError(pa, field, `${JSON.stringify(mode)} is not one of UNSET, STRICT, PERMISSIVE, DISABLE`);
}

const topMode = (pa: KubeObject): Mode => modeOf(pa, pa.spec?.mtls, 'spec.mtls.mode');

/** Port-level modes sorted by port number. */
function portModes(pa: KubeObject): [number, Mode][] {
  const raw = pa.spec?.portLevelMtls;
  if (!raw) return [];
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new TranslationError(pa, 'spec.portLevelMtls', 'must be a map of port number to {mode}');
  return Object.entries(raw as Record<string, unknown>)
    .map(([port, mtls]): [number, Mode] => {
      if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
        throw new TranslationError(pa, `spec.portLevelMtls[${port}]`, 'the key must be a port number (1..65535)');
      }
      return [Number(port), modeOf(pa, mtls, `spec.portLevelMtls[${port}].mode`)];
    })
    .sort((a, b) => a[0] - b[0]);
}

/** A selector with at least one label: a workload-level policy. */
function hasSelector(pa: KubeObject): boolean {
  const ml = pa.spec?.selector?.matchLabels;
  return Boolean(ml && typeof ml === 'object' && Object.keys(ml).length > 0);
}

function olderThan(a: KubeObject, b: KubeObject): boolean {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb;
  // Same second: a stable order so every replica and every resync picks the same one.
  return `${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}`;
}

export function oldest(policies: readonly KubeObject[]): KubeObject | undefined {
  let o: KubeObject | undefined;
  for (const p of policies) if (!o || olderThan(p, o)) o = p;
  return o;
}

export function portLevelPolicyName(paName: string): string {
  return `${PORT_LEVEL_POLICY_PREFIX}${paName}`;
}

/** The mesh-level (root namespace, no selector) or namespace-level (no selector) policies of a namespace. */
export function selectorlessOf(policies: readonly KubeObject[]): KubeObject[] {
  return policies.filter((p) => !hasSelector(p));
}

/**
 * Authorization keys (`ns/name`) a workload lists for its effective PeerAuthentication, given every
 * PeerAuthentication of the root namespace and of the workload's namespace.
 */
export function peerAuthenticationKeys(rootNamespace: string, rootPolicies: readonly KubeObject[], nsPolicies: readonly KubeObject[], labels: LabelMap): string[] {
  const mesh = oldest(selectorlessOf(rootPolicies));
  let namespaceCfg: KubeObject | undefined;
  let workloadCfg: KubeObject | undefined;
  for (const p of nsPolicies) {
    if (!hasSelector(p)) {
      if ((p.metadata.namespace ?? '') === rootNamespace) continue; // that is the mesh policy
      if (!namespaceCfg || olderThan(p, namespaceCfg)) namespaceCfg = p;
    } else if ((p.metadata.namespace ?? '') !== rootNamespace && labelsMatch(p.spec.selector.matchLabels, labels)) {
      if (!workloadCfg || olderThan(p, workloadCfg)) workloadCfg = p;
    }
  }
  let strict = mesh ? topMode(mesh) === 'STRICT' : false;
  if (namespaceCfg && topMode(namespaceCfg) !== 'UNSET') strict = topMode(namespaceCfg) === 'STRICT';

  let portKey = '';
  if (workloadCfg) {
    const mode = topMode(workloadCfg);
    if (mode === 'STRICT') strict = true;
    if (mode === 'PERMISSIVE' || mode === 'DISABLE') strict = false;
    const ports = portModes(workloadCfg);
    const key = `${workloadCfg.metadata.namespace ?? ''}/${portLevelPolicyName(workloadCfg.metadata.name)}`;
    if (ports.length > 0) {
      const anyNonStrict = ports.some(([, m]) => m === 'PERMISSIVE' || m === 'DISABLE');
      const anyStrict = ports.some(([, m]) => m === 'STRICT');
      if (mode === 'STRICT') {
        // The converted policy carries the STRICT default with the port exceptions; the static one would deny them.
        if (anyNonStrict) { portKey = key; strict = false; }
      } else if (mode === 'PERMISSIVE' || mode === 'DISABLE') {
        if (anyStrict) portKey = key;
      } else if (strict) {
        if (ports.some(([, m]) => m === 'PERMISSIVE')) { portKey = key; strict = false; }
      } else if (anyStrict) {
        portKey = key;
      }
    }
  }
  const keys: string[] = [];
  if (strict) keys.push(`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`);
  if (portKey) keys.push(portKey);
  return keys.sort();
}

const DENY_WITHOUT_IDENTITY = (): AuthorizationRules => ({ matches: [{ not_principals: [{ presence: {} }] }] });

/** The static policy istiod sends whenever any PeerAuthentication exists. */
export function staticStrictAuthorization(rootNamespace: string): Authorization {
  return { name: STATIC_STRICT_POLICY_NAME, namespace: rootNamespace, scope: 'WORKLOAD_SELECTOR', action: 'DENY', groups: [{ rules: [DENY_WITHOUT_IDENTITY()] }] };
}

/**
 * The converted form of a workload-level PeerAuthentication with port-level mTLS (outside the root namespace),
 * given the namespace-level and mesh-level policies in force; undefined when the static policy says it all.
 */
export function translatePeerAuthentication(pa: KubeObject, rootNamespace: string, nsCfg: KubeObject | undefined, rootCfg: KubeObject | undefined): Authorization | undefined {
  const ns = pa.metadata.namespace ?? '';
  const mode = topMode(pa);
  const ports = portModes(pa);
  if (ns === rootNamespace || !hasSelector(pa) || ports.length === 0) return undefined;
  const nsMode = nsCfg ? topMode(nsCfg) : undefined;
  const rootMode = rootCfg ? topMode(rootCfg) : undefined;

  const rules: AuthorizationRules[] = [];
  const groups: AuthorizationGroup[] = [];
  if (mode === 'STRICT') rules.push(DENY_WITHOUT_IDENTITY());
  let foundNonStrictPort = false;
  for (const [port, portMode] of ports) {
    if (portMode === 'STRICT') {
      const parentStrict = mode === 'STRICT' ||
        (mode === 'UNSET' && nsMode === 'STRICT') ||
        (mode === 'UNSET' && (nsMode === undefined || nsMode === 'UNSET') && rootMode === 'STRICT');
      if (parentStrict) continue;
      // One group per STRICT port: groups are OR'd.
      groups.push({ rules: [{ matches: [{ not_principals: [{ presence: {} }], destination_ports: [port] }] }] });
    } else if (portMode === 'PERMISSIVE' || portMode === 'DISABLE') {
      if (mode === 'PERMISSIVE' || mode === 'DISABLE') continue;
      if (mode === 'UNSET' && ((nsMode !== undefined && nsMode !== 'STRICT') || (nsMode === undefined && rootMode !== undefined && rootMode !== 'STRICT') || (nsMode === undefined && rootMode === undefined))) continue;
      foundNonStrictPort = true;
      // Deny only when the connection is not for this port (AND'd with the identity rule).
      rules.push({ matches: [{ not_destination_ports: [port] }] });
    }
  }
  if (mode === 'STRICT' && !foundNonStrictPort) return undefined;
  if (rules.length === 0 && groups.length === 0) return undefined;
  const mergeStrict = (rootMode === 'STRICT' && (nsMode === undefined || nsMode === 'UNSET' || nsMode === 'STRICT')) || nsMode === 'STRICT';
  if (mergeStrict && foundNonStrictPort) rules.push(DENY_WITHOUT_IDENTITY());
  if (rules.length > 0) groups.push({ rules });
  return { name: portLevelPolicyName(pa.metadata.name), namespace: ns, scope: 'WORKLOAD_SELECTOR', action: 'DENY', groups };
}
