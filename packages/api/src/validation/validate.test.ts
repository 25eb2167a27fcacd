import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../config-objects.js';
import { formatDiagnostic, type Diagnostic } from './diagnostic.js';
import { validateObject } from './validate.js';

function obj(apiVersion: string, kind: string, spec: unknown, name = 'reviews', extra: Partial<KubeObject['metadata']> = {}): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: 'default', ...extra }, spec };
}
const vs = (spec: unknown): KubeObject => obj('networking.istio.io/v1', 'VirtualService', spec);
const errors = (ds: Diagnostic[]): Diagnostic[] => ds.filter((d) => d.severity === 'Error');
/** The error at `field`, failing the test with every diagnostic when there is none. */
function errorAt(ds: Diagnostic[], field: string, message?: RegExp): Diagnostic {
  const d = ds.find((x) => x.severity === 'Error' && x.field === field && (!message || message.test(x.message)));
  assert.ok(d, `no error at ${field}${message ? ` matching ${message}` : ''}; got:\n${ds.map(formatDiagnostic).join('\n')}`);
  return d;
}

const GOOD_VS = {
  hosts: ['reviews'],
  http: [
    { name: 'v2', match: [{ uri: { prefix: '/v2' }, headers: { 'x-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], timeout: '1.5s', retries: { attempts: 3, perTryTimeout: '100ms', retryOn: '5xx,connect-failure,503' } },
    { route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 90 }, { destination: { host: 'reviews', subset: 'v3' }, weight: 10 }], fault: { delay: { fixedDelay: '5s', percentage: { value: 10 } } } },
  ],
};

test('a valid VirtualService has no diagnostics, in every served apiVersion', () => {
  for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
    assert.deepEqual(validateObject(obj(v, 'VirtualService', GOOD_VS)), [], v);
  }
});

test('an unknown apiVersion is an error on apiVersion', () => {
  errorAt(validateObject(obj('networking.istio.io/v2', 'VirtualService', GOOD_VS)), 'apiVersion', /unsupported apiVersion "networking.istio.io\/v2"/);
});

test('VirtualService weights: type, sign and zero total are errors naming the route', () => {
  const ds = validateObject(vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'a' }, weight: 'abc' }, { destination: { host: 'b' }, weight: -5 }] }] }));
  const d = errorAt(ds, 'spec.http[0].route[0].weight', /must be an integer, got string "abc"/);
  assert.equal(d.code, 'IST0106');
  assert.equal(d.name, 'SchemaValidationError');
  assert.equal(formatDiagnostic(d), 'Error [IST0106] (VirtualService reviews.default) Schema validation error: spec.http[0].route[0].weight: must be an integer, got string "abc"');
  errorAt(ds, 'spec.http[0].route[1].weight', /weight -5 < 0/);
  errorAt(ds, 'spec.http[0].route', /total destination weight = 0/);
  // Relative weights that do not add up to 100 are valid in current Istio.
  assert.deepEqual(errors(validateObject(vs({ hosts: ['r'], http: [{ route: [{ destination: { host: 'a' }, weight: 1 }, { destination: { host: 'b' }, weight: 3 }] }] }))), []);
});

test('VirtualService hosts, routes and destinations', () => {
  errorAt(validateObject(vs({ hosts: ['reviews'] })), 'spec', /http, tcp or tls must be provided/);
  errorAt(validateObject(vs({ hosts: ['*'], http: [{ route: [{ destination: { host: 'a' } }] }] })), 'spec.hosts[0]', /wildcard host \* is not allowed/);
  errorAt(validateObject(vs({ hosts: ['a', 'a'], http: [{ route: [{ destination: { host: 'a' } }] }] })), 'spec.hosts[1]', /duplicate hosts/);
  errorAt(validateObject(vs({ hosts: ['bad_host'], http: [{ route: [{ destination: { host: 'a' } }] }] })), 'spec.hosts[0]', /not a valid domain name/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route: [{ weight: 100 }] }] })), 'spec.http[0].route[0].destination', /destination is required/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route: [{ destination: { port: { number: 80 } } }] }] })), 'spec.http[0].route[0].destination.host', /destination host is required/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route: [{ destination: { host: 'a', subset: 'V_1' } }] }] })), 'spec.http[0].route[0].destination.subset', /subset name is invalid/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route: [{ destination: { host: 'a', port: { number: 70000 } } }] }] })), 'spec.http[0].route[0].destination.port.number', /1\.\.65535/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ match: [{ uri: { exact: '/' } }] }] })), 'spec.http[0].route', /route, redirect or direct response is required/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ redirect: { uri: '/x' }, route: [{ destination: { host: 'a' } }] }] })), 'spec.http[0].redirect', /both route and redirect/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ redirect: { uri: '/x', redirectCode: 200 } }] })), 'spec.http[0].redirect.redirectCode', /must be 3xx/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ directResponse: { status: 700 } }] })), 'spec.http[0].directResponse.status', /200-599/);
  errorAt(validateObject(vs({ hosts: ['r'], tcp: [{ route: [] }] })), 'spec.tcp[0].route', /TCP route is required/);
  errorAt(validateObject(vs({ hosts: ['r.example.com'], tls: [{ match: [{ sniHosts: ['other.com'] }], route: [{ destination: { host: 'a' } }] }] })), 'spec.tls[0].match[0].sniHosts[0]', /not a compatible subset/);
});

test('VirtualService uri match: exactly one of exact/prefix/regex, and the regex must be RE2', () => {
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ match: [{ uri: { prefix: '/a', exact: '/b' } }], route: [{ destination: { host: 'a' } }] }] })), 'spec.http[0].match[0].uri', /exactly one of exact, prefix or regex, got exact and prefix/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ match: [{ uri: {} }], route: [{ destination: { host: 'a' } }] }] })), 'spec.http[0].match[0].uri', /exactly one/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ match: [{ uri: { regex: '^/api(?!/internal)' } }], route: [{ destination: { host: 'a' } }] }] })), 'spec.http[0].match[0].uri.regex', /lookahead/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ match: [{ headers: { 'x-id': { regex: '(a)\\1' } } }], route: [{ destination: { host: 'a' } }] }] })), 'spec.http[0].match[0].headers["x-id"].regex', /backreference/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ match: [{ uri: { prefix: '' } }], route: [{ destination: { host: 'a' } }] }] })), 'spec.http[0].match[0].uri.prefix', /should not be empty/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ match: [{ headers: { 'bad header': { exact: 'x' } } }], route: [{ destination: { host: 'a' } }] }] })), 'spec.http[0].match[0].headers["bad header"]', /not a valid header name/);
});

test('VirtualService retries, timeouts, faults and mirrors', () => {
  const route = [{ destination: { host: 'a' } }];
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, retries: { attempts: -1 } }] })), 'spec.http[0].retries.attempts', /cannot be negative/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, retries: { attempts: 0, perTryTimeout: '1s' } }] })), 'spec.http[0].retries.attempts', /attempts are set to 0/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, retries: { attempts: 2, retryOn: '5xx,bogus' } }] })), 'spec.http[0].retries.retryOn', /"bogus" is not a valid retryOn policy/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, retries: { attempts: 2, perTryTimeout: '0.5ms' } }] })), 'spec.http[0].retries.perTryTimeout', /at least 1ms/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, timeout: '10' }] })), 'spec.http[0].timeout', /invalid duration "10"/);
  assert.deepEqual(errors(validateObject(vs({ hosts: ['r'], http: [{ route, timeout: '0s' }] }))), []);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, fault: { abort: { httpStatus: 503, percentage: { value: 101 } } } }] })), 'spec.http[0].fault.abort.percentage', /percentage 101 is not in range 0\.\.100/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, fault: { abort: { httpStatus: 99 } } }] })), 'spec.http[0].fault.abort.httpStatus', /200-599/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, fault: { abort: { grpcStatus: 'NOPE' } } }] })), 'spec.http[0].fault.abort.grpcStatus', /not supported/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, fault: { delay: { fixedDelay: 'soon' } } }] })), 'spec.http[0].fault.delay.fixedDelay', /invalid duration/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, fault: {} }] })), 'spec.http[0].fault', /abort and\/or a delay/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, mirror: { host: 'm' }, mirrorPercentage: { value: 200 } }] })), 'spec.http[0].mirrorPercentage', /not in range/);
  errorAt(validateObject(vs({ hosts: ['r'], http: [{ route, rewrite: { uri: '/a', uriRegexRewrite: { match: 'x', rewrite: 'y' } } }] })), 'spec.http[0].rewrite', /may only contain one of URI or UriRegexRewrite/);
});

test('unreachable VirtualService rules are reported as IST0130 warnings, duplicate matches as IST0131', () => {
  const ds = validateObject(vs({ hosts: ['r'], http: [
    { match: [{ uri: { prefix: '/a' } }], route: [{ destination: { host: 'a' } }] },
    { match: [{ uri: { prefix: '/a' } }], route: [{ destination: { host: 'b' } }] },
    { route: [{ destination: { host: 'c' } }] },
    { route: [{ destination: { host: 'd' } }] },
  ] }));
  assert.deepEqual(errors(ds), []);
  assert.ok(ds.some((d) => d.code === 'IST0131' && d.severity === 'Info' && d.field === 'spec.http[1].match[0]'), ds.map(formatDiagnostic).join('\n'));
  assert.ok(ds.some((d) => d.code === 'IST0130' && d.field === 'spec.http[1]' && /all matches used by prior rules/.test(d.message)));
  assert.ok(ds.some((d) => d.code === 'IST0130' && d.field === 'spec.http[3]' && /only the last rule can have no matches/.test(d.message)));
});

test('DestinationRule: subsets unique and named, labels valid, traffic policy one-ofs and ranges', () => {
  const dr = (spec: unknown): KubeObject => obj('networking.istio.io/v1', 'DestinationRule', spec);
  assert.deepEqual(validateObject(dr({
    host: 'reviews',
    trafficPolicy: {
      connectionPool: { tcp: { maxConnections: 100, connectTimeout: '30ms' }, http: { http1MaxPendingRequests: 10, idleTimeout: '1m' } },
      outlierDetection: { consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m', maxEjectionPercent: 50 },
      loadBalancer: { simple: 'LEAST_REQUEST' },
      tls: { mode: 'ISTIO_MUTUAL' },
    },
    subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } }],
  })), []);
  errorAt(validateObject(dr({})), 'spec.host', /host is required/);
  errorAt(validateObject(dr({ host: 'r', subsets: [{ name: 'v1' }, { name: 'v1' }] })), 'spec.subsets[1].name', /duplicate subset names: v1/);
  errorAt(validateObject(dr({ host: 'r', subsets: [{ labels: { a: 'b' } }] })), 'spec.subsets[0].name', /subset name cannot be empty/);
  errorAt(validateObject(dr({ host: 'r', subsets: [{ name: 'v1', labels: { 'bad key!': 'x' } }] })), 'spec.subsets[0].labels["bad key!"]', /label key/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: {} })), 'spec.trafficPolicy', /at least one field/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN', consistentHash: { useSourceIp: true } } } })), 'spec.trafficPolicy.loadBalancer', /only one of simple or consistentHash/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } })), 'spec.trafficPolicy.loadBalancer.simple', /unknown value "FASTEST"/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { ttl: '0s' } } } } })), 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name', /name required/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { loadBalancer: { consistentHash: { maglev: { tableSize: 1000 } } } } })), 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', /prime/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { connectionPool: {} } })), 'spec.trafficPolicy.connectionPool', /at least one field/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { connectionPool: { tcp: { maxConnections: -1 } } } })), 'spec.trafficPolicy.connectionPool.tcp.maxConnections', /non-negative/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { outlierDetection: { maxEjectionPercent: 120 } } })), 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', /0\.\.100/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { outlierDetection: { consecutiveLocalOriginFailures: 3 } } })), 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', /split external local origin errors/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { tls: { mode: 'MUTUAL' } } })), 'spec.trafficPolicy.tls.clientCertificate', /client certificate required/);
  errorAt(validateObject(dr({ host: 'r', trafficPolicy: { portLevelSettings: [{ loadBalancer: { simple: 'RANDOM' } }] } })), 'spec.trafficPolicy.portLevelSettings[0].port', /valid port/);
});

test('ServiceEntry and WorkloadEntry', () => {
  const se = (spec: unknown): KubeObject => obj('networking.istio.io/v1', 'ServiceEntry', spec, 'ext');
  assert.deepEqual(errors(validateObject(se({ hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS', location: 'MESH_EXTERNAL' }))), []);
  errorAt(validateObject(se({ ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] })), 'spec.hosts', /at least one host/);
  errorAt(validateObject(se({ hosts: ['*'] })), 'spec.hosts[0]', /invalid host \*/);
  errorAt(validateObject(se({ hosts: ['a.com'], ports: [{ number: 80, name: 'http' }, { number: 80, name: 'http' }] })), 'spec.ports[1].name', /already defined/);
  errorAt(validateObject(se({ hosts: ['a.com'], ports: [{ number: 80, name: 'http', protocol: 'SMTP' }] })), 'spec.ports[0].protocol', /unsupported protocol "SMTP"/);
  errorAt(validateObject(se({ hosts: ['a.com'], addresses: ['10.0.0.0/8'], resolution: 'DNS' })), 'spec.addresses', /CIDR addresses are allowed only/);
  errorAt(validateObject(se({ hosts: ['a.com'], resolution: 'NONE', endpoints: [{ address: '1.2.3.4' }] })), 'spec.endpoints', /no endpoints/);
  errorAt(validateObject(se({ hosts: ['a.com'], resolution: 'STATIC', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: 'not-an-ip.com' }] })), 'spec.endpoints[0].address', /not a valid IP address/);
  errorAt(validateObject(se({ hosts: ['*.a.com'], resolution: 'DNS', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] })), 'spec.hosts[0]', /must be FQDN/);
  errorAt(validateObject(se({ hosts: ['a.com'], resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'x.com' }, { address: 'y.com' }] })), 'spec.endpoints', /0 or 1 endpoint/);
  errorAt(validateObject(se({ hosts: ['a.com', 'b.com'], resolution: 'DNS', ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }] })), 'spec.ports', /multiple hosts provided with non-HTTP, non-TLS ports/);
  errorAt(validateObject(se({ hosts: ['a.com'], workloadSelector: { labels: { app: 'x' } }, endpoints: [] })), 'spec.workloadSelector', /only one of WorkloadSelector or Endpoints/);
  const we = (spec: unknown): KubeObject => obj('networking.istio.io/v1', 'WorkloadEntry', spec, 'vm1');
  assert.deepEqual(errors(validateObject(we({ address: '10.1.2.3', labels: { app: 'vm' }, ports: { http: 8080 }, serviceAccount: 'vm-sa' }))), []);
  errorAt(validateObject(we({})), 'spec.address', /address is required/);
  errorAt(validateObject(we({ address: 'not valid' })), 'spec.address', /not a valid FQDN or an IP address/);
  errorAt(validateObject(we({ address: '10.1.2.3', ports: { http: 0 } })), 'spec.ports["http"]', /1\.\.65535/);
});

test('AuthorizationPolicy: action/provider rules, selector vs targetRefs, rule contents', () => {
  const ap = (spec: unknown, extra: Partial<KubeObject['metadata']> = {}): KubeObject => obj('security.istio.io/v1', 'AuthorizationPolicy', spec, 'policy', extra);
  assert.deepEqual(validateObject(ap({
    targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
    action: 'ALLOW',
    rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }], to: [{ operation: { methods: ['GET'], paths: ['/info*', '/api/{*}/x'] } }], when: [{ key: 'request.headers[version]', values: ['v1'] }] }],
  })), []);
  assert.deepEqual(validateObject(ap({})), [], 'an allow-nothing policy is valid');
  errorAt(validateObject(ap({ selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Service', group: '', name: 's' }] })), 'spec.targetRefs', /only one of targetRefs or workloadSelector/);
  errorAt(validateObject(ap({ targetRefs: [{ kind: 'Deployment', group: 'apps', name: 'x' }] })), 'spec.targetRefs[0]', /targetRef must be to one of/);
  errorAt(validateObject(ap({ targetRefs: [{ kind: 'Service', group: '', name: 's', namespace: 'other' }] })), 'spec.targetRefs[0].namespace', /cross namespace/);
  errorAt(validateObject(ap({ action: 'DENY' })), 'spec.rules', /DENY action without `rules`/);
  errorAt(validateObject(ap({ action: 'CUSTOM', rules: [{}] })), 'spec.provider.name', /must not be empty/);
  errorAt(validateObject(ap({ action: 'ALLOW', provider: { name: 'ext' }, rules: [{}] })), 'spec.provider', /must not be with non CUSTOM action/);
  errorAt(validateObject(ap({ action: 'MAYBE' })), 'spec.action', /unknown value "MAYBE"/);
  errorAt(validateObject(ap({ rules: [{ from: [{ source: {} }] }] })), 'spec.rules[0].from[0].source', /must not be empty/);
  errorAt(validateObject(ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/40'] } }] }] })), 'spec.rules[0].from[0].source.ipBlocks[0]', /invalid IP address or CIDR/);
  errorAt(validateObject(ap({ rules: [{ to: [{ operation: { ports: ['http'] } }] }] })), 'spec.rules[0].to[0].operation.ports[0]', /invalid port/);
  errorAt(validateObject(ap({ rules: [{ to: [{ operation: { paths: ['/a/{**}/b'] } }] }] })), 'spec.rules[0].to[0].operation.paths[0]', /last segment/);
  errorAt(validateObject(ap({ rules: [{ when: [{ key: 'request.bogus', values: ['x'] }] }] })), 'spec.rules[0].when[0].key', /unknown attribute/);
  errorAt(validateObject(ap({ rules: [{ when: [{ key: 'source.ip' }] }] })), 'spec.rules[0].when[0]', /at least one of `values` or `notValues`/);
  errorAt(validateObject(ap({ rules: [{ from: [{ source: { namespaces: ['a'], serviceAccounts: ['a/b'] } }] }] })), 'spec.rules[0].from[0].source', /cannot set serviceAccounts with namespaces/);
  errorAt(validateObject(ap({ action: 'AUDIT', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } })), 'metadata.annotations["istio.io/dry-run"]', /only supports action ALLOW\/DENY/);
});

test('AuthorizationPolicy with HTTP rules enforced by ztunnel gets IST0167 IneffectivePolicy; a DENY on HTTP attributes only gets the TCP warning', () => {
  const ap = (spec: unknown): KubeObject => obj('security.istio.io/v1', 'AuthorizationPolicy', spec, 'policy');
  const ds = validateObject(ap({ selector: { matchLabels: { app: 'reviews' } }, action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }));
  assert.deepEqual(errors(ds), []);
  const ineffective = ds.find((d) => d.code === 'IST0167');
  assert.ok(ineffective, ds.map(formatDiagnostic).join('\n'));
  assert.equal(ineffective.name, 'IneffectivePolicy');
  assert.match(ineffective.message, /targetRefs/);
  assert.ok(ds.some((d) => d.code === 'IST0133' && /deny all traffic to TCP ports/.test(d.message)));
  // L4-only rules are fine at ztunnel.
  assert.deepEqual(validateObject(ap({ selector: { matchLabels: { app: 'reviews' } }, rules: [{ from: [{ source: { namespaces: ['a'] } }], to: [{ operation: { ports: ['8080'] } }] }] })), []);
});

test('PeerAuthentication modes and port-level mTLS', () => {
  const pa = (spec: unknown): KubeObject => obj('security.istio.io/v1', 'PeerAuthentication', spec, 'default');
  assert.deepEqual(validateObject(pa({ mtls: { mode: 'STRICT' } })), []);
  assert.deepEqual(validateObject(pa({ selector: { matchLabels: { app: 'db' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '5432': { mode: 'PERMISSIVE' } } })), []);
  errorAt(validateObject(pa({ mtls: { mode: 'STRICTER' } })), 'spec.mtls.mode', /unknown value "STRICTER"; must be one of UNSET, DISABLE, PERMISSIVE, STRICT/);
  errorAt(validateObject(pa({ portLevelMtls: { '8080': { mode: 'DISABLE' } } })), 'spec.portLevelMtls', /cannot have port level mTLS/);
  errorAt(validateObject(pa({ selector: { matchLabels: { app: 'x' } }, portLevelMtls: { '0': { mode: 'DISABLE' } } })), 'spec.portLevelMtls["0"]', /1\.\.65535/);
});

test('RequestAuthentication jwtRules', () => {
  const ra = (spec: unknown): KubeObject => obj('security.istio.io/v1', 'RequestAuthentication', spec, 'jwt');
  assert.deepEqual(validateObject(ra({ targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], jwtRules: [{ issuer: 'https://issuer.example.com', jwksUri: 'https://issuer.example.com/jwks.json', audiences: ['app'], fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }] }] })), []);
  errorAt(validateObject(ra({ jwtRules: [{ audiences: ['a'] }] })), 'spec.jwtRules[0].issuer', /issuer or jwksUri must be non-empty/);
  errorAt(validateObject(ra({ jwtRules: [{ issuer: 'i', jwksUri: 'ftp://x' }] })), 'spec.jwtRules[0].jwksUri', /http\(s\) URL/);
  errorAt(validateObject(ra({ jwtRules: [{ issuer: 'i', jwks: '{not json' }] })), 'spec.jwtRules[0].jwks', /jwks parse error/);
  const both = validateObject(ra({ jwtRules: [{ issuer: 'i', jwksUri: 'https://x/j', jwks: '{"keys":[]}' }] }));
  assert.ok(both.some((d) => d.code === 'IST0133' && d.field === 'spec.jwtRules[0].jwks'), both.map(formatDiagnostic).join('\n'));
  errorAt(validateObject(ra({ jwtRules: [{ issuer: 'i', fromHeaders: [{ prefix: 'x' }] }] })), 'spec.jwtRules[0].fromHeaders[0].name', /non-empty/);
  errorAt(validateObject(ra({ jwtRules: [{ issuer: 'i', timeout: 'forever' }] })), 'spec.jwtRules[0].timeout', /invalid duration/);
});

test('Telemetry', () => {
  const t = (spec: unknown): KubeObject => obj('telemetry.istio.io/v1', 'Telemetry', spec, 'mesh-default');
  assert.deepEqual(validateObject(t({ tracing: [{ randomSamplingPercentage: 10, providers: [{ name: 'otel' }] }], accessLogging: [{ providers: [{ name: 'envoy' }] }] })), []);
  errorAt(validateObject(t({ tracing: [{ randomSamplingPercentage: 101 }] })), 'spec.tracing[0].randomSamplingPercentage', /\[0\.0, 100\.0\]/);
  errorAt(validateObject(t({ accessLogging: [{ providers: [{}] }] })), 'spec.accessLogging[0].providers[0].name', /may not be empty/);
  errorAt(validateObject(t({ metrics: [{ overrides: [{ tagOverrides: { foo: { operation: 'UPSERT' } } }] }] })), 'spec.metrics[0].overrides[0].tagOverrides["foo"].value', /must be set when operation is UPSERT/);
});

test('Gateway API: waypoint listener, HTTPRoute and GRPCRoute structure', () => {
  const gw = (spec: unknown, name = 'waypoint', labels?: Record<string, string>): KubeObject => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) }, spec });
  assert.deepEqual(validateObject(gw({ gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] })), []);
  errorAt(validateObject(gw({ gatewayClassName: 'istio-waypoint', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] })), 'spec.listeners', /HBONE on port 15008/);
  errorAt(validateObject(gw({ gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] }, 'none')), 'metadata.name', /cannot be called "none"/);
  errorAt(validateObject(gw({ gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] }, 'waypoint', { 'istio.io/waypoint-for': 'everything' })), 'metadata.labels["istio.io/waypoint-for"]', /unknown value/);
  errorAt(validateObject(gw({ gatewayClassName: 'x', listeners: [{ name: 'a', port: 80, protocol: 'HTTP' }, { name: 'a', port: 81, protocol: 'HTTP' }] })), 'spec.listeners[1].name', /unique/);

  const hr = (spec: unknown): KubeObject => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec });
  assert.deepEqual(validateObject(hr({ parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v2' } }], backendRefs: [{ name: 'echo-v2', port: 80, weight: 30 }], timeouts: { request: '500ms' } }] })), []);
  errorAt(validateObject(hr({ rules: [{ matches: [{ path: { type: 'PathPrefix', value: 'v2' } }] }] })), 'spec.rules[0].matches[0].path.value', /start with '\/'/);
  errorAt(validateObject(hr({ rules: [{ matches: [{ path: { type: 'RegularExpression', value: '/(?=x)' } }] }] })), 'spec.rules[0].matches[0].path.value', /lookahead/);
  errorAt(validateObject(hr({ rules: [{ backendRefs: [{ name: 'echo' }] }] })), 'spec.rules[0].backendRefs[0].port', /port is required/);
  errorAt(validateObject(hr({ rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'a' } }, { type: 'URLRewrite', urlRewrite: { hostname: 'b' } }] }] })), 'spec.rules[0].filters', /not both/);
  errorAt(validateObject(hr({ rules: [{ timeouts: { request: '1s', backendRequest: '2s' } }] })), 'spec.rules[0].timeouts.backendRequest', /cannot be longer/);
  errorAt(validateObject(hr({ rules: [{ timeouts: { request: '1.5s' } }] })), 'spec.rules[0].timeouts.request', /invalid duration/);

  const gr = (spec: unknown): KubeObject => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name: 'g', namespace: 'default' }, spec });
  assert.deepEqual(validateObject(gr({ rules: [{ matches: [{ method: { service: 'helloworld.Greeter', method: 'SayHello' } }], backendRefs: [{ name: 'grpc', port: 50051 }] }] })), []);
  errorAt(validateObject(gr({ rules: [{ matches: [{ method: { type: 'Exact' } }] }] })), 'spec.rules[0].matches[0].method', /service or method/);
});

test('wrong types anywhere are reported at their path instead of throwing', () => {
  const weird = [
    vs('not an object'),
    vs({ hosts: 'reviews', http: { route: 1 } }),
    vs({ hosts: [1, null], http: [null, 3, { route: 'x', match: 'y', retries: 5 }] }),
    obj('networking.istio.io/v1', 'DestinationRule', { host: 7, subsets: [5], trafficPolicy: [] }),
    obj('security.istio.io/v1', 'AuthorizationPolicy', { rules: [null, 'x', { from: 'y', to: [null], when: [{ key: 5 }] }] }),
  ];
  for (const o of weird) {
    const ds = validateObject(o);
    assert.ok(errors(ds).length > 0, JSON.stringify(o.spec));
    for (const d of ds) assert.equal(typeof d.message, 'string');
  }
  errorAt(validateObject(vs('not an object')), 'spec', /must be an object/);
  errorAt(validateObject(vs({ hosts: 'reviews', http: [] })), 'spec.hosts', /must be a list/);
});

test('kinds outside the validated set give no diagnostics', () => {
  assert.deepEqual(validateObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: 'nonsense' } }), []);
});
