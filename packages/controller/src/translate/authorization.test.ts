import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipStringify } from '../xds/ip.js';
import { translateAuthorizationPolicy } from './authorization.js';
import { authorizationPolicy, contextWith, service, waypointGateway } from './test-fixtures.js';

const { ctx } = contextWith([]);

test('scope: GLOBAL for a selectorless policy in the root namespace, NAMESPACE elsewhere, WORKLOAD_SELECTOR with a selector', () => {
  assert.equal(translateAuthorizationPolicy(authorizationPolicy('istio-system', 'mesh-wide', {}), ctx).authorization?.scope, 'GLOBAL');
  assert.equal(translateAuthorizationPolicy(authorizationPolicy('shop', 'ns-wide', {}), ctx).authorization?.scope, 'NAMESPACE');
  const sel = translateAuthorizationPolicy(authorizationPolicy('shop', 'cart', { selector: { matchLabels: { app: 'cart' } } }), ctx);
  assert.equal(sel.authorization?.scope, 'WORKLOAD_SELECTOR');
  assert.deepEqual(sel.selector, { app: 'cart' });
  assert.equal(translateAuthorizationPolicy(authorizationPolicy('istio-system', 'root-sel', { selector: { matchLabels: { app: 'x' } } }), ctx).authorization?.scope, 'WORKLOAD_SELECTOR');
});

test('an ALLOW policy with no rules allows nothing (zero groups); an empty rule allows everything (one empty group)', () => {
  assert.deepEqual(translateAuthorizationPolicy(authorizationPolicy('shop', 'deny-all', {}), ctx).authorization?.groups, []);
  assert.deepEqual(translateAuthorizationPolicy(authorizationPolicy('shop', 'allow-all', { rules: [{}] }), ctx).authorization?.groups, [{ rules: [] }]);
});

test('from/to/when become AND-ed rules of OR-ed matches, with Istio wildcards and service accounts', () => {
  const t = translateAuthorizationPolicy(authorizationPolicy('shop', 'cart', {
    action: 'ALLOW',
    selector: { matchLabels: { app: 'cart' } },
    rules: [{
      from: [
        { source: { principals: ['cluster.local/ns/shop/sa/web', '*/sa/admin', 'spiffe-prefix*'], namespaces: ['*'] } },
        { source: { ipBlocks: ['10.1.0.0/16', '10.2.3.4'], notIpBlocks: ['10.1.2.0/24'], serviceAccounts: ['frontend', 'ops/robot'] } },
      ],
      to: [{ operation: { ports: ['8080', '9090'], notPorts: ['15000'] } }],
      when: [{ key: 'source.namespace', values: ['shop'] }, { key: 'destination.port', notValues: ['22'] }],
    }],
  }), ctx);
  assert.deepEqual(t.conditions, [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel' }]);
  const a = t.authorization!;
  assert.equal(a.name, 'cart');
  assert.equal(a.namespace, 'shop');
  assert.equal(a.action, 'ALLOW');
  const [to, from, when1, when2] = a.groups![0]!.rules!;
  assert.deepEqual(to, { matches: [{ destination_ports: [8080, 9090], not_destination_ports: [15000] }] });
  assert.deepEqual(from!.matches![0], {
    principals: [{ exact: 'cluster.local/ns/shop/sa/web' }, { suffix: '/sa/admin' }, { prefix: 'spiffe-prefix' }],
    namespaces: [{ presence: {} }],
  });
  const ipMatch = from!.matches![1]!;
  assert.deepEqual(ipMatch.source_ips!.map((p) => `${ipStringify(p.address!)}/${p.length}`), ['10.1.0.0/16', '10.2.3.4/32']);
  assert.deepEqual(ipMatch.not_source_ips!.map((p) => `${ipStringify(p.address!)}/${p.length}`), ['10.1.2.0/24']);
  assert.deepEqual(ipMatch.service_accounts, [{ namespace: 'shop', serviceAccount: 'frontend' }, { namespace: 'ops', serviceAccount: 'robot' }]);
  assert.deepEqual(when1, { matches: [{ namespaces: [{ exact: 'shop' }] }] });
  assert.deepEqual(when2, { matches: [{ not_destination_ports: [22] }] });
});

test('ALLOW with HTTP attributes: the rules using them are dropped and ZtunnelAccepted says which fields', () => {
  const t = translateAuthorizationPolicy(authorizationPolicy('shop', 'api', {
    selector: { matchLabels: { app: 'api' } },
    rules: [
      { from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }], to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }] },
      { from: [{ source: { namespaces: ['ops'] } }] },
      { when: [{ key: 'request.headers[x-user]', values: ['admin'] }] },
    ],
  }), ctx);
  assert.equal(t.authorization!.groups!.length, 1, 'only the L4 rule is left');
  assert.deepEqual(t.authorization!.groups![0], { rules: [{ matches: [{ namespaces: [{ exact: 'ops' }] }] }] });
  const c = t.conditions[0]!;
  assert.equal(c.type, 'ZtunnelAccepted');
  assert.equal(c.status, 'True');
  assert.equal(c.reason, 'UnsupportedValue');
  assert.match(c.message, /found: methods, paths, request\.headers\[x-user\]/);
  assert.match(c.message, /ALLOW/);
});

test('ALLOW whose only rule is L7 allows nothing', () => {
  const t = translateAuthorizationPolicy(authorizationPolicy('shop', 'get-only', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }), ctx);
  assert.deepEqual(t.authorization!.groups, []);
});

test('DENY with HTTP attributes keeps its L4 parts; an L7-only match is sent empty (ztunnel never matches it)', () => {
  const t = translateAuthorizationPolicy(authorizationPolicy('shop', 'no-delete', {
    action: 'DENY',
    rules: [
      { to: [{ operation: { methods: ['DELETE'], ports: ['8080'] } }] },
      { from: [{ source: { requestPrincipals: ['*'] } }] },
    ],
  }), ctx);
  assert.deepEqual(t.authorization!.groups, [
    { rules: [{ matches: [{ destination_ports: [8080] }] }] },
    { rules: [{ matches: [{}] }] },
  ]);
  assert.equal(t.conditions[0]!.reason, 'UnsupportedValue');
  assert.match(t.conditions[0]!.message, /found: methods, requestPrincipals/);
});

test('CUSTOM and AUDIT are not sent to ztunnel and get ZtunnelAccepted False', () => {
  for (const action of ['CUSTOM', 'AUDIT']) {
    const t = translateAuthorizationPolicy(authorizationPolicy('shop', 'ext', { action, provider: { name: 'opa' }, rules: [{}] }), ctx);
    assert.equal(t.authorization, undefined);
    assert.deepEqual(t.conditions.map((c) => [c.type, c.status, c.reason]), [['ZtunnelAccepted', 'False', 'UnsupportedValue']]);
    assert.match(t.conditions[0]!.message, new RegExp(action));
  }
});

test('targetRef policies belong to the waypoint: no Authorization, a WaypointAccepted condition', () => {
  const { ctx: c } = contextWith([
    waypointGateway('shop', 'waypoint'),
    service('shop', 'cart', { clusterIP: '10.96.1.1', labels: { 'istio.io/use-waypoint': 'waypoint' } }),
    service('shop', 'plain', { clusterIP: '10.96.1.2' }),
  ]);
  const gw = translateAuthorizationPolicy(authorizationPolicy('shop', 'l7', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }), c);
  assert.equal(gw.authorization, undefined);
  assert.deepEqual(gw.conditions, [{ type: 'WaypointAccepted', status: 'True', reason: 'Accepted', message: 'bound to shop/waypoint' }]);
  const svc = translateAuthorizationPolicy(authorizationPolicy('shop', 'svc', { targetRefs: [{ kind: 'Service', group: '', name: 'cart' }] }), c);
  assert.equal(svc.conditions[0]!.status, 'True');
  const unbound = translateAuthorizationPolicy(authorizationPolicy('shop', 'svc2', { targetRef: { kind: 'Service', group: '', name: 'plain' } }), c);
  assert.deepEqual([unbound.conditions[0]!.status, unbound.conditions[0]!.reason], ['False', 'AncestorNotBound']);
  const missing = translateAuthorizationPolicy(authorizationPolicy('shop', 'svc3', { targetRefs: [{ kind: 'Gateway', name: 'nope' }] }), c);
  assert.deepEqual([missing.conditions[0]!.status, missing.conditions[0]!.reason], ['False', 'TargetNotFound']);
});

test('dry-run policies are not sent unless enabled, then sent with dry_run', () => {
  const p = authorizationPolicy('shop', 'try', { action: 'DENY', rules: [{}] }, { 'istio.io/dry-run': 'true' });
  assert.deepEqual(translateAuthorizationPolicy(p, ctx), { conditions: [] });
  const { ctx: enabled } = contextWith([], { clusterId: 'Kubernetes', enableDryRunAuthorizationPolicy: true });
  assert.equal(translateAuthorizationPolicy(p, enabled).authorization?.dry_run, true);
});

test('a value that cannot be converted rejects the policy with the field named (never a weakened policy)', () => {
  const bad = authorizationPolicy('shop', 'bad', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8', '10.0.0.300'] } }] }] });
  assert.throws(() => translateAuthorizationPolicy(bad, ctx), /AuthorizationPolicy shop\/bad: spec\.rules\[0\]\.from\[0\]\.source\.ipBlocks\[1\]: "10\.0\.0\.300" is not an IP address or CIDR/);
  const badPort = authorizationPolicy('shop', 'bad-port', { rules: [{ to: [{ operation: { ports: ['http'] } }] }] });
  assert.throws(() => translateAuthorizationPolicy(badPort, ctx), /spec\.rules\[0\]\.to\[0\]\.operation\.ports\[0\]: "http" is not a port number/);
});
