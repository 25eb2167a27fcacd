import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@ambit/api';
import { compileObject, type CompiledPiece } from './compile.js';
import { indexConfig } from './index-config.js';
import { matchString } from './fields.js';
import { redirectLocation, rewritePath, selectRoute, type RequestFacts } from './router.js';

const OPTS = { domainSuffix: 'cluster.local', gatewayName: 'waypoint', gatewayNamespace: 'mesh' };
const facts = (path: string, extra: Partial<RequestFacts> = {}): RequestFacts => ({
  method: 'GET', path, query: new URLSearchParams(), authority: 'echo', scheme: 'http', port: 80, headers: {}, ...extra,
});
const route = (name: string, spec: object, created = '2026-01-01T00:00:00Z'): KubeObject =>
  ({ kind: 'HTTPRoute', metadata: { name, namespace: 'mesh', creationTimestamp: created }, spec });

test('Gateway API PathPrefix matches whole path elements', () => {
  const m = { kind: 'pathPrefix', value: '/v2' } as const;
  assert.equal(matchString(m, '/v2'), true);
  assert.equal(matchString(m, '/v2/x'), true);
  assert.equal(matchString(m, '/v2example'), false);
  assert.equal(matchString({ kind: 'pathPrefix', value: '/v2/' }, '/v2'), true);
});

test('ReplacePrefixMatch is element-wise; Envoy prefix rewrite is a plain replacement', () => {
  const gw = { path: { kind: 'pathPrefix', value: '/strip-prefix' } as const, headers: [], queryParams: [] };
  assert.equal(rewritePath({ kind: 'prefix', matched: '/strip-prefix', value: '/' }, '/strip-prefix/three', gw), '/three');
  assert.equal(rewritePath({ kind: 'prefix', matched: '/strip-prefix', value: '/' }, '/strip-prefix', gw), '/');
  assert.equal(rewritePath({ kind: 'prefix', matched: '/prefix/one', value: '/one' }, '/prefix/one/two', { ...gw, path: { kind: 'pathPrefix', value: '/prefix/one' } }), '/one/two');
  const vs = { path: { kind: 'prefix', value: '/old' } as const, headers: [], queryParams: [] };
  assert.equal(rewritePath({ kind: 'prefix', matched: '', value: '/new' }, '/oldish', vs), '/newish');
});

test('redirect Location keeps the request port unless the host changes; scheme redirect drops the port', () => {
  assert.equal(redirectLocation({ status: 302, authority: 'example.org' }, facts('/a', { authority: 'echo:8080' }), undefined, '?x=1'), 'http://example.org/a?x=1');
  assert.equal(redirectLocation({ status: 302, port: 8083 }, facts('/a'), undefined, ''), 'http://echo:8083/a');
  assert.equal(redirectLocation({ status: 302, scheme: 'https', portFromScheme: true }, facts('/a', { authority: 'echo:80' }), undefined, ''), 'https://echo/a');
});

test('HTTPRoute precedence across routes: exact > longest prefix > method > headers > query params > oldest', () => {
  const pieces = new Map<string, CompiledPiece>();
  const parentRefs = [{ group: '', kind: 'Service', name: 'echo', port: 80 }];
  const be = (name: string) => [{ name, port: 80 }];
  pieces.set('a', compileObject(route('young', { parentRefs, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/a' } }], backendRefs: be('young') }] }, '2026-02-01T00:00:00Z'), OPTS));
  pieces.set('b', compileObject(route('old', { parentRefs, rules: [
    { matches: [{ path: { type: 'PathPrefix', value: '/a' } }], backendRefs: be('old') },
    { matches: [{ path: { type: 'PathPrefix', value: '/a' }, headers: [{ name: 'h', value: '1' }] }], backendRefs: be('header') },
    { matches: [{ path: { type: 'Exact', value: '/a/b' } }], backendRefs: be('exact') },
    { matches: [{ path: { type: 'PathPrefix', value: '/a/b' } }], backendRefs: be('longer') },
  ] }), OPTS));
  const table = indexConfig(pieces, 1).routesFor({ hostname: 'echo.mesh.svc.cluster.local', namespace: 'mesh', name: 'echo' }, 80)!;
  const target = (f: RequestFacts): string => {
    const m = selectRoute(table, f)!;
    return m.route.action.kind === 'forward' ? m.route.action.destinations[0]!.host.split('.')[0]! : '';
  };
  assert.equal(target(facts('/a/b')), 'exact');
  assert.equal(target(facts('/a/b/c')), 'longer');
  assert.equal(target(facts('/a', { headers: { h: '1' } })), 'header');
  assert.equal(target(facts('/a')), 'old', 'the oldest route wins a tie');
});

test('compile errors name the field', () => {
  assert.throws(() => compileObject({ kind: 'VirtualService', metadata: { name: 'r', namespace: 'mesh' }, spec: { hosts: ['r'], http: [{ route: [{ destination: { host: 'a' }, weight: 60 }, { destination: { host: 'b' }, weight: 60 }] }] } }, OPTS),
    /spec\.http\[0\]\.route: weights must sum to 100, got 120/);
  assert.throws(() => compileObject(route('x', { parentRefs: [{ group: '', kind: 'Service', name: 'echo' }], rules: [{ filters: [{ type: 'CORS' }], backendRefs: [{ name: 'a', port: 80 }] }] }), OPTS),
    /spec\.rules\[0\]\.filters\[0\]\.type: filter CORS is not supported/);
  assert.throws(() => compileObject(route('x', { parentRefs: [{ group: '', kind: 'Service', name: 'echo' }], rules: [{ backendRefs: [{ name: 'a' }] }] }), OPTS),
    /spec\.rules\[0\]\.backendRefs\[0\]\.port: is required/);
});
