import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@ambit/api';
import { compileAuthorizationPolicies, compileAuthorizationPolicy, createAuthorizationEngine, type RequestAttributes } from './authz.js';
import { PolicyConfigError } from './diagnostics.js';

const waypoint = { namespace: 'foo', name: 'waypoint' };
const gw = [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }];

function ap(name: string, spec: Record<string, unknown>, extra: Partial<KubeObject['metadata']> = {}): KubeObject {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'foo', ...extra }, spec: { targetRefs: gw, ...spec } };
}
function engine(...objs: KubeObject[]) {
  const r = compileAuthorizationPolicies(objs, { waypoint });
  assert.deepEqual(r.rejected, [], JSON.stringify(r.diagnostics));
  return r.engine;
}
const req = (over: Partial<RequestAttributes> = {}): RequestAttributes => ({
  sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/sleep', sourceIp: '10.0.0.5', destinationIp: '10.96.0.10', destinationPort: 8000,
  host: 'httpbin.foo.svc.cluster.local:8000', method: 'GET', path: '/info', headers: {}, ...over,
});

test('no policy: allow', () => {
  assert.deepEqual(engine().evaluate(req()), { decision: 'allow', reason: 'allowed: no policy applies' });
});

test('Istio docs example: ALLOW sleep or namespace test, GET /info* or POST /data, with a JWT issuer claim', () => {
  const e = engine(ap('httpbin', {
    action: 'ALLOW',
    rules: [{
      from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }, { source: { namespaces: ['test'] } }],
      to: [{ operation: { methods: ['GET'], paths: ['/info*'] } }, { operation: { methods: ['POST'], paths: ['/data'] } }],
      when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }],
    }],
  }));
  const auth = { principal: 'https://accounts.google.com/u1', audiences: [], claims: { iss: 'https://accounts.google.com', sub: 'u1' } };
  assert.deepEqual(e.evaluate(req({ auth })), { decision: 'allow', policy: 'foo/httpbin', reason: 'allowed by ALLOW policy foo/httpbin' });
  assert.equal(e.evaluate(req({ auth, path: '/info/x?debug=1' })).decision, 'allow', 'query string ignored, prefix match');
  assert.equal(e.evaluate(req({ auth, sourcePrincipal: 'spiffe://cluster.local/ns/test/sa/any', method: 'POST', path: '/data' })).decision, 'allow');
  assert.equal(e.evaluate(req({ auth, method: 'POST', path: '/info' })).decision, 'deny');
  assert.equal(e.evaluate(req({ auth, sourcePrincipal: 'spiffe://cluster.local/ns/other/sa/sleep' })).decision, 'deny');
  const noJwt = e.evaluate(req());
  assert.equal(noJwt.decision, 'deny');
  assert.match(noJwt.reason, /no ALLOW policy matched \(1 applicable: foo\/httpbin\)/);
});

test('empty ALLOW policy denies all; rules [{}] allows all', () => {
  const denyAll = engine(ap('deny-all', {}));
  assert.equal(denyAll.evaluate(req()).decision, 'deny');
  const allowAll = engine(ap('deny-all', {}), ap('allow-all', { rules: [{}] }));
  assert.deepEqual(allowAll.evaluate(req()), { decision: 'allow', policy: 'foo/allow-all', reason: 'allowed by ALLOW policy foo/allow-all' });
});

test('DENY is evaluated before ALLOW; a DENY without rules denies nothing', () => {
  const e = engine(
    ap('allow-all', { rules: [{}] }),
    ap('deny-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
    ap('deny-nothing', { action: 'DENY' }),
  );
  assert.deepEqual(e.evaluate(req({ method: 'DELETE' })), { decision: 'deny', policy: 'foo/deny-delete', reason: 'denied by DENY policy foo/deny-delete' });
  assert.equal(e.evaluate(req()).decision, 'allow');
});

test('Istio docs example: DENY requests not from namespace foo (notNamespaces) and to /admin unless header', () => {
  const e = engine(ap('deny', {
    action: 'DENY',
    rules: [
      { from: [{ source: { notNamespaces: ['foo'] } }] },
      { to: [{ operation: { paths: ['/admin*'] } }], when: [{ key: 'request.headers[X-Admin]', notValues: ['yes'] }] },
    ],
  }));
  assert.equal(e.evaluate(req()).decision, 'deny', 'default namespace is not foo');
  assert.equal(e.evaluate(req({ sourcePrincipal: undefined })).decision, 'deny', 'notNamespaces matches an absent identity');
  const fromFoo = { sourcePrincipal: 'spiffe://cluster.local/ns/foo/sa/a' };
  assert.equal(e.evaluate(req(fromFoo)).decision, 'allow');
  assert.equal(e.evaluate(req({ ...fromFoo, path: '/admin/users' })).decision, 'deny');
  assert.equal(e.evaluate(req({ ...fromFoo, path: '/admin/users', headers: { 'x-admin': 'yes' } })).decision, 'allow');
});

test('CUSTOM is denied with a clear reason and reported as unsupported', () => {
  const obj = ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{ to: [{ operation: { paths: ['/secure*'] } }] }] });
  const r = compileAuthorizationPolicies([obj], { waypoint });
  assert.deepEqual(r.diagnostics.map((d) => [d.severity, d.field]), [['unsupported', 'spec.action']]);
  assert.match(r.diagnostics[0]!.message, /CUSTOM action is not supported by Ambit/);
  const d = r.engine.evaluate(req({ path: '/secure/x' }));
  assert.equal(d.decision, 'deny');
  assert.match(d.reason, /CUSTOM action is not supported by Ambit \(provider "opa"\)/);
  assert.equal(r.engine.evaluate(req({ path: '/public' })).decision, 'allow', 'CUSTOM rules that do not match do not deny');
});

test('AUDIT marks matching requests without deciding', () => {
  const e = engine(ap('audit', { action: 'AUDIT', rules: [{ to: [{ operation: { paths: ['/headers'] } }] }] }));
  assert.deepEqual(e.evaluate(req({ path: '/headers' })), { decision: 'allow', reason: 'allowed: no ALLOW policy applies', audited: ['foo/audit'] });
  assert.equal(e.evaluate(req()).audited, undefined);
});

test('dry-run policies do not decide but report what they would have done', () => {
  const e = engine(ap('dry', { action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } }));
  assert.deepEqual(e.evaluate(req()), {
    decision: 'allow', reason: 'allowed: no ALLOW policy applies',
    dryRun: { decision: 'deny', policy: 'foo/dry', reason: 'denied by DENY policy foo/dry' },
  });
});

test('targetRefs: Gateway of another waypoint, Service, ServiceEntry, GatewayClass in the root namespace, selector', () => {
  const denyAll = { action: 'DENY', rules: [{}] };
  const objs: KubeObject[] = [
    ap('other-gw', { ...denyAll, targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'other' }] }),
    ap('svc', { ...denyAll, targetRefs: [{ kind: 'Service', group: '', name: 'httpbin' }] }),
    ap('se', { ...denyAll, targetRefs: [{ kind: 'ServiceEntry', group: 'networking.istio.io', name: 'ext' }] }),
    { kind: 'AuthorizationPolicy', metadata: { name: 'selector', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'httpbin' } }, ...denyAll } },
    { kind: 'AuthorizationPolicy', metadata: { name: 'nswide', namespace: 'foo' }, spec: denyAll },
  ];
  const e = engine(...objs);
  assert.equal(e.evaluate(req()).decision, 'allow', 'no policy targets this waypoint or the (unknown) service');
  assert.equal(e.evaluate(req({ destinationService: { kind: 'Service', namespace: 'foo', name: 'other' } })).decision, 'allow');
  assert.deepEqual(e.evaluate(req({ destinationService: { kind: 'Service', namespace: 'foo', name: 'httpbin' } })).policy, 'foo/svc');
  assert.deepEqual(e.evaluate(req({ destinationService: { kind: 'ServiceEntry', namespace: 'foo', name: 'ext' } })).policy, 'foo/se');
  assert.equal(e.evaluate(req({ destinationService: { kind: 'Service', namespace: 'bar', name: 'httpbin' } })).decision, 'allow', 'Service in another namespace');
  const classWide = (ns: string) => ({ kind: 'AuthorizationPolicy', metadata: { name: 'class', namespace: ns }, spec: { ...denyAll, targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }] } });
  assert.equal(engine(classWide('istio-system')).evaluate(req()).decision, 'deny');
  assert.equal(engine(classWide('foo')).evaluate(req()).decision, 'allow', 'GatewayClass only from the root namespace');
  assert.equal(engine(ap('single', { ...denyAll, targetRefs: undefined, targetRef: gw[0] })).evaluate(req()).decision, 'deny', 'deprecated targetRef');
});

test('principals, requestPrincipals and serviceAccounts with wildcards and presence', () => {
  const only = (source: Record<string, unknown>) => engine(ap('p', { rules: [{ from: [{ source }] }] }));
  assert.equal(only({ principals: ['*'] }).evaluate(req()).decision, 'allow');
  assert.equal(only({ principals: ['*'] }).evaluate(req({ sourcePrincipal: undefined })).decision, 'deny');
  assert.equal(only({ principals: ['cluster.local/ns/default/*'] }).evaluate(req()).decision, 'allow');
  assert.equal(only({ principals: ['*/sa/sleep'] }).evaluate(req()).decision, 'allow');
  assert.equal(only({ principals: ['cluster.local/ns/default/sa/sleep'] }).evaluate(req({ sourcePrincipal: 'cluster.local/ns/default/sa/sleep' })).decision, 'allow', 'scheme optional');
  assert.equal(only({ notPrincipals: ['cluster.local/ns/default/sa/sleep'] }).evaluate(req()).decision, 'deny');
  assert.equal(only({ serviceAccounts: ['default/sleep'] }).evaluate(req()).decision, 'allow');
  assert.equal(only({ notServiceAccounts: ['default/sleep'] }).evaluate(req()).decision, 'deny');
  const auth = { principal: 'https://issuer.example/alice', audiences: ['a'], claims: {} };
  assert.equal(only({ requestPrincipals: ['*'] }).evaluate(req()).decision, 'deny', 'no JWT');
  assert.equal(only({ requestPrincipals: ['*'] }).evaluate(req({ auth })).decision, 'allow');
  assert.equal(only({ requestPrincipals: ['https://issuer.example/*'] }).evaluate(req({ auth })).decision, 'allow');
  assert.equal(only({ notRequestPrincipals: ['*'] }).evaluate(req()).decision, 'allow');
  assert.equal(only({ namespaces: ['def*'] }).evaluate(req()).decision, 'allow');
});

test('ipBlocks, remoteIpBlocks and their not forms, IPv4 and IPv6', () => {
  const only = (source: Record<string, unknown>) => engine(ap('p', { rules: [{ from: [{ source }] }] }));
  assert.equal(only({ ipBlocks: ['10.0.0.0/24'] }).evaluate(req()).decision, 'allow');
  assert.equal(only({ ipBlocks: ['10.0.1.0/24', '10.0.0.5'] }).evaluate(req()).decision, 'allow');
  assert.equal(only({ notIpBlocks: ['10.0.0.0/8'] }).evaluate(req()).decision, 'deny');
  assert.equal(only({ ipBlocks: ['fd00::/8'] }).evaluate(req({ sourceIp: 'fd00::1' })).decision, 'allow');
  assert.equal(only({ ipBlocks: ['10.0.0.0/24'] }).evaluate(req({ sourceIp: '::ffff:10.0.0.7' })).decision, 'allow', 'IPv4-mapped');
  assert.equal(only({ remoteIpBlocks: ['192.168.0.0/16'] }).evaluate(req()).decision, 'deny', 'remote ip defaults to the source ip');
  assert.equal(only({ remoteIpBlocks: ['192.168.0.0/16'] }).evaluate(req({ remoteIp: '192.168.1.1' })).decision, 'allow');
  assert.equal(only({ notRemoteIpBlocks: ['192.168.0.0/16'] }).evaluate(req({ remoteIp: '192.168.1.1' })).decision, 'deny');
});

test('hosts are case-insensitive and an exact host matches any port; ports, methods, not forms', () => {
  const op = (operation: Record<string, unknown>) => engine(ap('p', { rules: [{ to: [{ operation }] }] }));
  assert.equal(op({ hosts: ['HTTPBIN.foo.svc.cluster.local'] }).evaluate(req()).decision, 'allow');
  assert.equal(op({ hosts: ['httpbin.foo.svc.cluster.local'] }).evaluate(req({ host: 'httpbin.foo.svc.cluster.local' })).decision, 'allow');
  assert.equal(op({ hosts: ['httpbin.foo'] }).evaluate(req()).decision, 'deny');
  assert.equal(op({ hosts: ['*.svc.cluster.local:8000'] }).evaluate(req()).decision, 'allow');
  assert.equal(op({ hosts: ['httpbin*'] }).evaluate(req()).decision, 'allow');
  assert.equal(op({ notHosts: ['httpbin.foo.svc.cluster.local'] }).evaluate(req()).decision, 'deny');
  assert.equal(op({ ports: ['8000'] }).evaluate(req()).decision, 'allow');
  assert.equal(op({ notPorts: ['8000'] }).evaluate(req()).decision, 'deny');
  assert.equal(op({ methods: ['GET', 'HEAD'] }).evaluate(req({ method: 'HEAD' })).decision, 'allow');
  assert.equal(op({ notMethods: ['GET'] }).evaluate(req()).decision, 'deny');
});

test('paths: exact, prefix, suffix, presence and templates {*} {**}', () => {
  const paths = (p: string[]) => engine(ap('p', { rules: [{ to: [{ operation: { paths: p } }] }] }));
  const dec = (p: string[], path: string) => paths(p).evaluate(req({ path })).decision;
  assert.equal(dec(['/info'], '/info'), 'allow');
  assert.equal(dec(['/info'], '/info/'), 'deny');
  assert.equal(dec(['*.html'], '/a/b.html'), 'allow');
  assert.equal(dec(['*'], '/anything'), 'allow');
  assert.equal(dec(['/foo/{*}'], '/foo/bar'), 'allow');
  assert.equal(dec(['/foo/{*}'], '/foo/bar/baz'), 'deny');
  assert.equal(dec(['/foo/{*}/baz'], '/foo/x/baz'), 'allow');
  assert.equal(dec(['/foo/{**}'], '/foo/bar/baz'), 'allow');
  assert.equal(dec(['/foo/{**}'], '/foo'), 'deny');
  assert.equal(dec(['/foo/{*}.txt'], '/foo/a.txt'), 'allow');
  assert.equal(dec(['/foo/{*}.txt'], '/foo/a.json'), 'deny');
});

test('when: headers, claims (nested, lists), audiences, presenter, ips, ports, sni, principals', () => {
  const when = (w: Record<string, unknown>) => engine(ap('p', { rules: [{ when: [w] }] }));
  const auth = { principal: 'iss/sub', audiences: ['bookstore', 'other'], presenter: 'web', claims: { groups: ['admin', 'dev'], realm: { role: 'owner' }, n: 5 } };
  const dec = (w: Record<string, unknown>, over: Partial<RequestAttributes> = {}) => when(w).evaluate(req({ auth, ...over })).decision;
  assert.equal(dec({ key: 'request.headers[User-Agent]', values: ['Mozilla/*'] }, { headers: { 'user-agent': 'Mozilla/5.0' } }), 'allow');
  assert.equal(dec({ key: 'request.headers[x-multi]', values: ['a,b'] }, { headers: { 'x-multi': ['a', 'b'] } }), 'allow');
  assert.equal(dec({ key: 'request.headers[x-missing]', notValues: ['*'] }), 'allow');
  assert.equal(dec({ key: 'request.auth.claims[groups]', values: ['admin'] }), 'allow');
  assert.equal(dec({ key: 'request.auth.claims[groups]', values: ['ops'] }), 'deny');
  assert.equal(dec({ key: 'request.auth.claims[realm][role]', values: ['owner'] }), 'allow');
  assert.equal(dec({ key: 'request.auth.claims[n]', values: ['5'] }), 'deny', 'only string claims match, as Envoy');
  assert.equal(dec({ key: 'request.auth.audiences', values: ['bookstore'] }), 'allow');
  assert.equal(dec({ key: 'request.auth.presenter', values: ['web'] }), 'allow');
  assert.equal(dec({ key: 'request.auth.principal', values: ['iss/sub'] }), 'allow');
  assert.equal(dec({ key: 'source.ip', values: ['10.0.0.0/16'] }), 'allow');
  assert.equal(dec({ key: 'remote.ip', values: ['10.0.0.0/16'] }, { remoteIp: '1.2.3.4' }), 'deny');
  assert.equal(dec({ key: 'destination.ip', values: ['10.96.0.0/12'] }), 'allow');
  assert.equal(dec({ key: 'destination.port', values: ['8000'] }), 'allow');
  assert.equal(dec({ key: 'destination.port', notValues: ['8000'] }), 'deny');
  assert.equal(dec({ key: 'connection.sni', values: ['*.example.com'] }, { sni: 'a.example.com' }), 'allow');
  assert.equal(dec({ key: 'source.namespace', values: ['default'] }), 'allow');
  assert.equal(dec({ key: 'source.principal', values: ['cluster.local/ns/default/sa/sleep'] }), 'allow');
  assert.equal(dec({ key: 'source.principal', values: ['cluster.local/ns/default/sa/sleep'] }, { auth: undefined, sourcePrincipal: undefined }), 'deny');
});

test('invalid policies are rejected naming object and field; lastGood keeps the previous version', () => {
  const bad = (spec: Record<string, unknown>, re: RegExp) => assert.throws(() => compileAuthorizationPolicy(ap('bad', spec)),
    (e: unknown) => e instanceof PolicyConfigError && re.test(e.message), JSON.stringify(spec));
  bad({ action: 'MAYBE' }, /AuthorizationPolicy foo\/bad: spec\.action: must be one of ALLOW, DENY, AUDIT, CUSTOM/);
  bad({ action: 'CUSTOM' }, /spec\.provider\.name: is required when action is CUSTOM/);
  bad({ rules: [{ from: [{}] }] }, /spec\.rules\[0\]\.from\[0\]\.source: must not be nil/);
  bad({ rules: [{ from: [{ source: {} }] }] }, /spec\.rules\[0\]\.from\[0\]\.source: must not be empty/);
  bad({ rules: [{ to: [{ operation: { ports: ['http'] } }] }] }, /spec\.rules\[0\]\.to\[0\]\.operation\.ports\[0\]: must be a port number/);
  bad({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] }, /ipBlocks\[0\]: "10\.0\.0\.0\/33" has an invalid prefix length/);
  bad({ rules: [{ when: [{ key: 'request.weather', values: ['sunny'] }] }] }, /spec\.rules\[0\]\.when\[0\]\.key: unknown condition key "request\.weather"/);
  bad({ rules: [{ when: [{ key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]'] }] }] }, /experimental\.envoy\.filters\.\* conditions .* not supported by Ambit/);
  bad({ rules: [{ when: [{ key: 'source.ip' }] }] }, /when\[0\]: at least one of values or notValues/);
  bad({ rules: [{ to: [{ operation: { paths: ['/a/{**}/b/{*}'] } }] }] }, /\{\*\*\} must be the last operator/);
  bad({ rules: [{ to: [{ operation: { paths: ['/a/{id}'] } }] }] }, /unsupported path template operator \{id\}/);
  bad({ selector: { matchLabels: { a: 'b' } } }, /spec\.selector: only one of targetRefs or selector/);
  bad({ targetRefs: [{ kind: 'Pod', name: 'x' }] }, /spec\.targetRefs\[0\]\.kind: must be Gateway, GatewayClass, Service or ServiceEntry/);
  bad({ targetRefs: [{ kind: 'Service', group: '', name: 'x', namespace: 'bar' }] }, /targetRefs\[0\]\.namespace: cross-namespace/);

  const good = compileAuthorizationPolicy(ap('p', { action: 'DENY', rules: [{}] }));
  const r = compileAuthorizationPolicies([ap('p', { action: 'DENY', rules: [{ when: [{ key: 'nope', values: ['x'] }] }] })], { waypoint, lastGood: new Map([['foo/p', good]]) });
  assert.deepEqual(r.rejected, ['foo/p']);
  assert.equal(r.diagnostics[0]!.severity, 'error');
  assert.equal(r.engine.evaluate(req()).decision, 'deny', 'the last good DENY stays in force');
  const none = compileAuthorizationPolicies([ap('p', { rules: 'x' })], { waypoint });
  assert.equal(none.engine.policies.length, 0);
});

test('createAuthorizationEngine refuses objects that were not compiled', () => {
  const fake = { key: 'a/b', namespace: 'a', name: 'b', action: 'ALLOW' as const, dryRun: false, diagnostics: [] };
  assert.throws(() => createAuthorizationEngine([fake], { waypoint }), /was not produced by compileAuthorizationPolicy/);
});
