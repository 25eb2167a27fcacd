// security.istio.io: AuthorizationPolicy, PeerAuthentication, RequestAuthentication (istiod's webhook checks),
// plus the ambient-specific warning users hit most: HTTP rules on a policy that only ztunnel enforces.
import { LABELS } from '../labels.js';
import { Checker, isSet, type Json } from './checker.js';
import { durationField, policyAttachment, workloadSelectorField } from './common.js';
import { MESSAGES } from './diagnostic.js';
import { checkIpOrCidr, checkPort } from './primitives.js';

const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'serviceAccounts', 'notServiceAccounts', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks',
] as const;
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
/** Source fields ztunnel can enforce (L4); requestPrincipals need a JWT, so HTTP. */
const L4_SOURCE_FIELDS = new Set(['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']);
const L4_CONDITION_KEYS = new Set(['source.ip', 'source.namespace', 'source.principal', 'source.serviceAccount', 'destination.ip', 'destination.port', 'remote.ip', 'connection.sni']);
const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);
const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;

export function validateAuthorizationPolicy(c: Checker, spec: Json): void {
  const { selector, targetRefs } = policyAttachment(c, spec);
  const action = c.enumValue('spec.action', spec.action, ACTIONS) ?? 'ALLOW';
  const provider = c.object('spec.provider', spec.provider);
  const rulesPresent = spec.rules !== undefined && spec.rules !== null;
  const rules = c.array('spec.rules', spec.rules);

  if (action === 'CUSTOM') {
    if (!rulesPresent) c.error('spec.rules', 'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
    else if (!provider || !c.string('spec.provider.name', provider.name)) c.error('spec.provider.name', '`provider.name` must not be empty');
  } else if (provider) {
    c.error('spec.provider', `\`provider\` must not be with non CUSTOM action, found ${action}`);
  }
  if (action === 'DENY' && !rulesPresent) {
    c.error('spec.rules', 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
  }

  let usesHttp = false;
  rules.forEach((raw, i) => {
    const rp = `spec.rules[${i}]`;
    if (raw === null || raw === undefined) {
      c.error(rp, '`rule` must not be nil');
      return;
    }
    const rule = c.object(rp, raw);
    if (!rule) return;
    let fromExists = false;
    let toExists = false;
    let tcpInFrom = false;
    let tcpInTo = false;
    if (Array.isArray(rule.from) && rule.from.length === 0) c.error(`${rp}.from`, '`from` must not be empty');
    for (const { item, path } of c.objects(`${rp}.from`, rule.from)) {
      const src = c.object(`${path}.source`, item.source);
      if (!src) {
        c.error(`${path}.source`, '`from.source` must not be nil');
        continue;
      }
      fromExists = true;
      const lists: Partial<Record<(typeof SOURCE_FIELDS)[number], { value: string; path: string }[]>> = {};
      for (const f of SOURCE_FIELDS) lists[f] = c.strings(`${path}.source.${f}`, src[f]);
      const count = (fs: readonly (typeof SOURCE_FIELDS)[number][]): number => fs.reduce((n, f) => n + (lists[f]?.length ?? 0), 0);
      if (count(['principals', 'notPrincipals', 'namespaces', 'notNamespaces']) > 0 && count(['serviceAccounts', 'notServiceAccounts']) > 0) {
        c.error(`${path}.source`, 'cannot set serviceAccounts with namespaces or principals');
      }
      if (count(SOURCE_FIELDS) === 0) c.error(`${path}.source`, '`from.source` must not be empty');
      for (const f of SOURCE_FIELDS) {
        for (const s of lists[f] ?? []) {
          if (s.value === '') c.error(s.path, `empty value not allowed, found in ${f}`);
          else if (f.toLowerCase().includes('ipblocks')) {
            const problem = checkIpOrCidr(s.value);
            if (problem) c.error(s.path, `invalid IP address or CIDR range: ${s.value}`);
          } else if (f === 'serviceAccounts' || f === 'notServiceAccounts') {
            const parts = s.value.split('/');
            if (parts.length !== 2 || !parts[0] || !parts[1] || s.value.includes('*')) c.error(s.path, `service account ${JSON.stringify(s.value)} must be <namespace>/<name>, without wildcards`);
          }
        }
        if ((lists[f]?.length ?? 0) > 0) {
          if (L4_SOURCE_FIELDS.has(f)) tcpInFrom = true;
          else usesHttp = true;
        }
      }
    }
    if (Array.isArray(rule.to) && rule.to.length === 0) c.error(`${rp}.to`, '`to` must not be empty');
    for (const { item, path } of c.objects(`${rp}.to`, rule.to)) {
      const op = c.object(`${path}.operation`, item.operation);
      if (!op) {
        c.error(`${path}.operation`, '`to.operation` must not be nil');
        continue;
      }
      toExists = true;
      let any = false;
      for (const f of OPERATION_FIELDS) {
        const values = c.strings(`${path}.operation.${f}`, op[f]);
        if (values.length > 0) any = true;
        for (const v of values) {
          if (v.value === '') c.error(v.path, `empty value not allowed, found in ${f}`);
          else if (f === 'ports' || f === 'notPorts') {
            if (!/^\d+$/.test(v.value) || checkPort(Number(v.value))) c.error(v.path, `invalid port ${JSON.stringify(v.value)}; must be 1..65535`);
          } else if (f === 'paths' || f === 'notPaths') {
            const problem = checkPathTemplate(v.value);
            if (problem) c.error(v.path, problem);
          }
        }
        if (values.length > 0) {
          if (f === 'ports' || f === 'notPorts') tcpInTo = true;
          else usesHttp = true;
        }
      }
      if (!any) c.error(`${path}.operation`, '`to.operation` must not be empty');
    }
    for (const { item, path } of c.objects(`${rp}.when`, rule.when)) {
      const key = c.string(`${path}.key`, item.key);
      const values = c.strings(`${path}.values`, item.values);
      const notValues = c.strings(`${path}.notValues`, item.notValues);
      if (!key) {
        c.error(`${path}.key`, '`key` must not be empty');
        continue;
      }
      if (values.length === 0 && notValues.length === 0) {
        c.error(path, `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
        continue;
      }
      const problem = checkConditionKey(key);
      if (problem) {
        c.error(`${path}.key`, problem);
        continue;
      }
      if (!L4_CONDITION_KEYS.has(key)) usesHttp = true;
      for (const v of [...values, ...notValues]) {
        if (IP_KEYS.has(key) && checkIpOrCidr(v.value)) c.error(v.path, `invalid value for key ${key}: invalid IP address or CIDR range: ${v.value}`);
        if (key === 'destination.port' && (!/^\d+$/.test(v.value) || checkPort(Number(v.value)))) c.error(v.path, `invalid value for key ${key}: invalid port ${v.value}`);
      }
      if (action === 'CUSTOM' && (key === 'source.namespace' || key === 'source.serviceAccount' || key === 'source.principal' || key.startsWith('request.auth.'))) {
        c.error(`${path}.key`, `${key} is currently not supported with CUSTOM action`);
      }
    }
    if (action === 'CUSTOM') {
      for (const { item, path } of c.objects(`${rp}.from`, rule.from)) {
        const src = item.source as Json | undefined;
        for (const f of ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals']) {
          if (src && isSet(src[f])) c.error(`${path}.source.${f}`, `From.${f[0]!.toUpperCase()}${f.slice(1)} is currently not supported with CUSTOM action`);
        }
      }
    }
    if (action === 'DENY' && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
      c.warn(rp, 'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port');
    }
  });

  if (usesHttp && targetRefs.length === 0) {
    // In ambient mode a policy without targetRefs is enforced by ztunnel, which only sees L4 attributes.
    const where = selector ? 'spec.selector' : 'spec';
    const effect = action === 'DENY' || action === 'AUDIT'
      ? 'rules that use HTTP attributes are dropped'
      : 'rules that use HTTP attributes never match, so only traffic allowed by other rules or policies passes';
    c.report(MESSAGES.IneffectivePolicy,
      `The policy has no impact: ztunnel does not support HTTP rules (methods, paths, hosts, requestPrincipals, request.* conditions); ${effect}. Attach the policy to a waypoint with spec.targetRefs to enforce them.`,
      where);
  }

  const dryRun = c.obj.metadata.annotations?.[LABELS.dryRun];
  if (dryRun !== undefined) {
    if (action !== 'ALLOW' && action !== 'DENY') c.error(`metadata.annotations[${JSON.stringify(LABELS.dryRun)}]`, `the annotation ${LABELS.dryRun} currently only supports action ALLOW/DENY, found action ${action}`);
    else if (!['true', 'false', '1', '0', 't', 'f', 'TRUE', 'FALSE', 'True', 'False'].includes(dryRun)) {
      c.error(`metadata.annotations[${JSON.stringify(LABELS.dryRun)}]`, `invalid value ${JSON.stringify(dryRun)}; must be "true" or "false"`);
    }
  }
}

/** Istio's CheckValidPathTemplate: `{*}` and `{**}` stand for whole segments; `{**}` only last. */
function checkPathTemplate(path: string): string | undefined {
  if (!path.includes('{') && !path.includes('}')) return undefined;
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (!s.includes('{') && !s.includes('}')) continue;
    if (s !== '{*}' && s !== '{**}') return `invalid or unsupported path ${JSON.stringify(path)}: operators {*} and {**} must each be a whole path segment`;
    if (s === '{**}' && i !== segments.length - 1) return `invalid or unsupported path ${JSON.stringify(path)}: {**} is only allowed as the last segment`;
  }
  return undefined;
}

/** Keys of `when` conditions Istio accepts. */
function checkConditionKey(key: string): string | undefined {
  if (/^request\.headers\[[^\]]+\]$/.test(key)) return undefined;
  if (/^request\.auth\.claims\[[^\]]+\](\[[^\]]+\])*$/.test(key)) return undefined;
  if (key.startsWith('experimental.envoy.filters.')) return undefined;
  if (['source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'source.serviceAccount', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'destination.ip', 'destination.port', 'connection.sni'].includes(key)) return undefined;
  if (key.startsWith('request.headers') || key.startsWith('request.auth.claims')) return `invalid key ${JSON.stringify(key)}: use the form ${key.startsWith('request.headers') ? 'request.headers[<name>]' : 'request.auth.claims[<claim>]'}`;
  return `unknown attribute: ${key}`;
}

export function validatePeerAuthentication(c: Checker, spec: Json): void {
  // PeerAuthentication attaches by selector only.
  if (spec.targetRef !== undefined || spec.targetRefs !== undefined) c.error('spec.targetRefs', 'PeerAuthentication does not support targetRef/targetRefs; use spec.selector');
  const selector = workloadSelectorField(c, 'spec.selector', spec.selector);
  const mtls = c.object('spec.mtls', spec.mtls);
  if (mtls) c.enumValue('spec.mtls.mode', mtls.mode, MTLS_MODES);
  const portLevel = spec.portLevelMtls;
  if (portLevel !== undefined && portLevel !== null) {
    const ports = c.object('spec.portLevelMtls', portLevel) ?? {};
    const emptySelector = !selector || Object.keys((selector.matchLabels as Json | undefined) ?? {}).length === 0;
    if (emptySelector) c.error('spec.portLevelMtls', 'mesh/namespace peer authentication cannot have port level mTLS');
    if (Object.keys(ports).length === 0) c.error('spec.portLevelMtls', 'port level mTLS, if defined, must have at least one element');
    for (const [port, v] of Object.entries(ports)) {
      const p = `spec.portLevelMtls[${JSON.stringify(port)}]`;
      if (!/^\d+$/.test(port) || checkPort(Number(port))) c.error(p, 'port must be in range 1..65535');
      const m = c.object(p, v);
      if (m) c.enumValue(`${p}.mode`, m.mode, MTLS_MODES);
    }
  }
}

export function validateRequestAuthentication(c: Checker, spec: Json): void {
  policyAttachment(c, spec);
  for (const { item, path } of c.objects('spec.jwtRules', spec.jwtRules)) {
    const issuer = c.string(`${path}.issuer`, item.issuer) ?? '';
    const jwksUri = c.string(`${path}.jwksUri`, item.jwksUri) ?? '';
    const jwks = c.string(`${path}.jwks`, item.jwks) ?? '';
    if (issuer === '' && jwksUri === '') c.error(`${path}.issuer`, 'issuer or jwksUri must be non-empty string');
    if (jwksUri !== '') {
      let url: URL | undefined;
      try {
        url = new URL(jwksUri);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) c.error(`${path}.jwksUri`, `jwksUri ${JSON.stringify(jwksUri)} must be an http(s) URL with a host`);
    }
    if (jwks !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(jwks);
      } catch (err) {
        c.error(`${path}.jwks`, `jwks parse error: ${(err as Error).message}`);
      }
      if (parsed !== undefined && (typeof parsed !== 'object' || parsed === null || (!Array.isArray((parsed as Json).keys) && typeof (parsed as Json).kty !== 'string'))) {
        c.error(`${path}.jwks`, 'jwks parse error: not a JSON Web Key Set (expected {"keys": [...]})');
      }
      if (jwksUri !== '') c.warn(`${path}.jwks`, 'both jwks and jwksUri are set; jwks is used and jwksUri is ignored');
    }
    for (const a of c.strings(`${path}.audiences`, item.audiences)) if (a.value === '') c.error(a.path, 'audience must be non-empty string');
    for (const h of c.objects(`${path}.fromHeaders`, item.fromHeaders)) {
      if (!c.string(`${h.path}.name`, h.item.name)) c.error(`${h.path}.name`, 'location header name must be non-empty string');
      c.string(`${h.path}.prefix`, h.item.prefix);
    }
    for (const q of c.strings(`${path}.fromParams`, item.fromParams)) if (q.value === '') c.error(q.path, 'location query must be non-empty string');
    for (const q of c.strings(`${path}.fromCookies`, item.fromCookies)) if (q.value === '') c.error(q.path, 'cookie name must be non-empty string');
    for (const o of c.objects(`${path}.outputClaimToHeaders`, item.outputClaimToHeaders)) {
      const header = c.string(`${o.path}.header`, o.item.header) ?? '';
      const claim = c.string(`${o.path}.claim`, o.item.claim) ?? '';
      if (header === '' || claim === '') c.error(o.path, 'outputClaimToHeaders header and claim value must be non-empty string');
      else if (!/^[-A-Za-z0-9]+$/.test(header)) c.error(`${o.path}.header`, `header name ${header} is not a valid header name`);
    }
    c.boolean(`${path}.forwardOriginalToken`, item.forwardOriginalToken);
    c.string(`${path}.outputPayloadToHeader`, item.outputPayloadToHeader);
    if (item.timeout !== undefined) durationField(c, `${path}.timeout`, item.timeout);
  }
}
