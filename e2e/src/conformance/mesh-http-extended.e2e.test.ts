// Gateway API mesh conformance, the extended MESH-HTTP tests and the MESH-GRPC tests listed in
// ../shared/spec/gateway-api-mesh.md, named as in the suite, on the cluster-in-a-box through the real path (meshed
// client pod -> node agent -> HBONE -> waypoint -> HBONE -> endpoint).
import assert from 'node:assert/strict';
import type { MeshExpectation } from './expect.js';
import { runEach } from './mesh.js';
import { CONSUMER_NS } from './manifests.js';
import { MESH_NS, expectConsistent, expectWeights, useMesh, withConfig } from './suite.js';

const file = useMesh('mesh-http-extended', { consumer: true });

const httpRoute = (name: string, parent: string, body: string, namespace = MESH_NS) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  parentRefs: [${parent}]
${body}`;
const svc = (name: string, port?: number, namespace?: string) =>
  `{group: "", kind: Service, name: ${name}${namespace ? `, namespace: ${namespace}` : ''}${port ? `, port: ${port}` : ''}}`;

file.test('MeshFrontend', async (_t, mesh) => {
  const podIp = await mesh.podIp('echo-v2');
  await withConfig(mesh, httpRoute('mesh-frontend', svc('echo-v2', 80), `  rules:
    - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}}]
      backendRefs: [{name: echo-v2, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'by service name: the route applies', request: { to: 'echo-v2', path: '/' }, expect: { backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'set' } } },
    { name: `by pod IP ${podIp}:8080: no route`, request: { to: `${podIp}:8080`, path: '/' }, expect: { backend: 'echo-v2', absentResponseHeaders: ['X-Header-Set'] } },
  ]));
});

file.test('MeshFrontendHostname', async (_t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-frontend-hostname', svc('echo-v2', 80), `  rules:
    - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}}]
      backendRefs: [{name: echo-v2, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'to echo-v2 with Host: echo-v1: matched by ClusterIP', request: { to: 'echo-v2', host: 'echo-v1', path: '/' }, expect: { backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'set' } } },
    { name: 'to echo-v1 with Host: echo-v2: not matched', request: { to: 'echo-v1', host: 'echo-v2', path: '/' }, expect: { backend: 'echo-v1', absentResponseHeaders: ['X-Header-Set'] } },
  ]));
});

file.test('MeshPorts', async (_t, mesh) => {
  const yaml = [
    httpRoute('mesh-ports-v1', svc('echo-v1', 80), `  rules:
    - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: v1}]}}]
      backendRefs: [{name: echo-v1, port: 80}]
`),
    httpRoute('mesh-ports-v2', svc('echo-v2'), `  rules:
    - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: v2}]}}]
      backendRefs: [{name: echo-v2, port: 80}]
`),
  ].join('---\n');
  await withConfig(mesh, yaml, () => expectConsistent(mesh, [
    { name: 'echo-v1:80 (the route\'s port)', request: { to: 'echo-v1', path: '/' }, expect: { backend: 'echo-v1', responseHeaders: { 'X-Header-Set': 'v1' } } },
    { name: 'echo-v1:8080 (another port)', request: { to: 'echo-v1:8080', path: '/' }, expect: { backend: 'echo-v1', absentResponseHeaders: ['X-Header-Set'] } },
    { name: 'echo-v2:80 (route without port)', request: { to: 'echo-v2', path: '/' }, expect: { backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'v2' } } },
    { name: 'echo-v2:8080 (route without port)', request: { to: 'echo-v2:8080', path: '/' }, expect: { backend: 'echo-v2', responseHeaders: { 'X-Header-Set': 'v2' } } },
  ]));
});

file.test('MeshConsumerRoute', async (_t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-consumer-route', svc('echo', 80, MESH_NS), `  rules:
    - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}}]
      backendRefs: [{name: echo, namespace: ${MESH_NS}, port: 80}]
`, CONSUMER_NS), async () => {
    await expectConsistent(mesh, [{ name: 'client in the consumer namespace gets the header', request: { to: `echo.${MESH_NS}`, path: '/' }, expect: { namespace: MESH_NS, responseHeaders: { 'X-Header-Set': 'set' } } }], 'consumer');
    await expectConsistent(mesh, [{ name: 'client in the producer namespace does not', request: { to: 'echo', path: '/' }, expect: { namespace: MESH_NS, absentResponseHeaders: ['X-Header-Set'] } }]);
  });
});

file.test('MeshHTTPRouteRewritePath', async (_t, mesh) => {
  const rule = (path: string, filter: string, extra = '') => `    - matches: [{path: {type: PathPrefix, value: ${path}}}]
      filters: [{type: URLRewrite, urlRewrite: {path: ${filter}}}${extra}]
      backendRefs: [{name: echo-v1, port: 80}]
`;
  const headers = `, {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Header-Set, value: set-overwrites-values}], add: [{name: X-Header-Add, value: header-val-1}], remove: [X-Header-Remove]}}`;
  await withConfig(mesh, httpRoute('mesh-rewrite-path', svc('echo', 80), `  rules:
${rule('/prefix/one', '{type: ReplacePrefixMatch, replacePrefixMatch: /one}')}${rule('/full/one', '{type: ReplaceFullPath, replaceFullPath: /one}')}${rule('/full/rewrite-path-and-modify-headers', '{type: ReplaceFullPath, replaceFullPath: /test}', headers)}${rule('/prefix/rewrite-path-and-modify-headers', '{type: ReplacePrefixMatch, replacePrefixMatch: /prefix}', headers)}${rule('/strip-prefix', '{type: ReplacePrefixMatch, replacePrefixMatch: /}')}`), () => expectConsistent(mesh, [
    { name: 'prefix /prefix/one -> /one', request: { to: 'echo', path: '/prefix/one/two' }, expect: { backend: 'echo-v1', request: { path: '/one/two' } } },
    { name: 'full path', request: { to: 'echo', path: '/full/one/two' }, expect: { backend: 'echo-v1', request: { path: '/one' } } },
    {
      name: 'full path with header changes',
      request: { to: 'echo', path: '/full/rewrite-path-and-modify-headers/test', headers: { 'X-Header-Add': 'header-val-2', 'X-Header-Set': 'original', 'X-Header-Remove': 'removed' } },
      expect: { backend: 'echo-v1', request: { path: '/test', headers: { 'X-Header-Set': 'set-overwrites-values', 'X-Header-Add': 'header-val-2,header-val-1' }, absentHeaders: ['X-Header-Remove'] } },
    },
    {
      name: 'prefix with header changes',
      request: { to: 'echo', path: '/prefix/rewrite-path-and-modify-headers/one', headers: { 'X-Header-Add': 'header-val-2', 'X-Header-Remove': 'removed' } },
      expect: { backend: 'echo-v1', request: { path: '/prefix/one', headers: { 'X-Header-Set': 'set-overwrites-values', 'X-Header-Add': 'header-val-2,header-val-1' }, absentHeaders: ['X-Header-Remove'] } },
    },
    { name: 'strip prefix', request: { to: 'echo', path: '/strip-prefix/three' }, expect: { backend: 'echo-v1', request: { path: '/three' } } },
    { name: 'strip the whole path', request: { to: 'echo', path: '/strip-prefix' }, expect: { backend: 'echo-v1', request: { path: '/' } } },
  ]));
});

const redirect = (path: string, fields: string) => `    - matches: [{path: {type: PathPrefix, value: ${path}}}]
      filters: [{type: RequestRedirect, requestRedirect: {${fields}}}]
`;
const redirectCase = (path: string, expect: MeshExpectation, name = path) => ({ name, request: { to: 'echo', path }, expect });

file.test('MeshHTTPRouteRedirectPath', async (_t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-redirect-path', svc('echo', 80), `  rules:
${redirect('/original-prefix', 'path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}')}${redirect('/full', 'path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}')}${redirect('/path-and-host', 'hostname: example.org, path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}')}${redirect('/path-and-status', 'path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}, statusCode: 301')}${redirect('/full-path-and-host', 'hostname: example.org, path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}')}${redirect('/full-path-and-status', 'path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}, statusCode: 301')}`), () => expectConsistent(mesh, [
    redirectCase('/original-prefix/lemon', { status: 302, redirect: { path: '/replacement-prefix/lemon' } }),
    redirectCase('/full/path/original', { status: 302, redirect: { path: '/full-path-replacement' } }),
    redirectCase('/path-and-host', { status: 302, redirect: { hostname: 'example.org', path: '/replacement-prefix' } }),
    redirectCase('/path-and-status', { status: 301, redirect: { path: '/replacement-prefix' } }),
    redirectCase('/full-path-and-host', { status: 302, redirect: { hostname: 'example.org', path: '/replacement-full' } }),
    redirectCase('/full-path-and-status', { status: 301, redirect: { path: '/replacement-full' } }),
  ]));
});

file.test('MeshHTTPRouteRedirectPort', async (_t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-redirect-port', svc('echo', 80), `  rules:
${redirect('/port', 'port: 8083')}${redirect('/port-and-host', 'hostname: example.org, port: 8083')}${redirect('/port-and-status', 'port: 8083, statusCode: 301')}${redirect('/port-and-host-and-status', 'hostname: example.org, port: 8083, statusCode: 301')}`), () => expectConsistent(mesh, [
    redirectCase('/port', { status: 302, redirect: { port: '8083', path: '/port' } }),
    redirectCase('/port-and-host', { status: 302, redirect: { hostname: 'example.org', port: '8083' } }),
    redirectCase('/port-and-status', { status: 301, redirect: { port: '8083' } }),
    redirectCase('/port-and-host-and-status', { status: 301, redirect: { hostname: 'example.org', port: '8083' } }),
  ]));
});

file.test('MeshHTTPRouteSchemeRedirect', async (_t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-scheme-redirect', svc('echo', 80), `  rules:
${redirect('/scheme-and-host', 'scheme: https, hostname: example.org')}${redirect('/scheme-and-status', 'scheme: https, statusCode: 301')}${redirect('/scheme-and-host-and-status', 'scheme: https, hostname: example.org, statusCode: 302')}${redirect('/scheme', 'scheme: https')}`), () => expectConsistent(mesh, [
    redirectCase('/scheme', { status: 302, redirect: { scheme: 'https', port: '', path: '/scheme' } }),
    redirectCase('/scheme-and-host', { status: 302, redirect: { scheme: 'https', hostname: 'example.org' } }),
    redirectCase('/scheme-and-status', { status: 301, redirect: { scheme: 'https' } }),
    redirectCase('/scheme-and-host-and-status', { status: 302, redirect: { scheme: 'https', hostname: 'example.org' } }),
  ]));
});

for (const code of [303, 307, 308] as const) {
  file.test(`MeshHTTPRoute${code}Redirect`, async (_t, mesh) => {
    await withConfig(mesh, httpRoute(`mesh-redirect-${code}`, svc('echo', 80), `  rules:
${redirect(`/redirect-${code}`, `hostname: example.org, statusCode: ${code}`)}`), () => expectConsistent(mesh, [
      redirectCase(`/redirect-${code}`, { status: code, redirect: { hostname: 'example.org', path: `/redirect-${code}` } }),
    ]));
  });
}

file.test('MeshHTTPRouteQueryParamMatching', async (_t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-query-param-matching', svc('echo', 80), `  rules:
    - matches: [{queryParams: [{name: animal, value: whale}]}]
      backendRefs: [{name: echo-v1, port: 80}]
    - matches: [{queryParams: [{name: animal, value: dolphin}]}]
      backendRefs: [{name: echo-v2, port: 80}]
    - matches: [{queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]}, {queryParams: [{name: ANIMAL, value: Whale}]}]
      backendRefs: [{name: echo-v1, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'animal=whale', request: { to: 'echo', path: '/?animal=whale' }, expect: { backend: 'echo-v1' } },
    { name: 'animal=dolphin', request: { to: 'echo', path: '/?animal=dolphin' }, expect: { backend: 'echo-v2' } },
    { name: 'animal=dolphin&color=blue (more params win)', request: { to: 'echo', path: '/?animal=dolphin&color=blue' }, expect: { backend: 'echo-v1' } },
    { name: 'color=blue&animal=dolphin (order does not matter)', request: { to: 'echo', path: '/?color=blue&animal=dolphin' }, expect: { backend: 'echo-v1' } },
    { name: 'ANIMAL=Whale (names are case-sensitive)', request: { to: 'echo', path: '/?ANIMAL=Whale' }, expect: { backend: 'echo-v1' } },
    { name: 'animal=dolphin&color=yellow', request: { to: 'echo', path: '/?animal=dolphin&color=yellow' }, expect: { backend: 'echo-v2' } },
    { name: 'animal=whale&otherparam=irrelevant', request: { to: 'echo', path: '/?animal=whale&otherparam=irrelevant' }, expect: { backend: 'echo-v1' } },
    { name: 'no matching param -> 404', request: { to: 'echo', path: '/?animal=legacy' }, expect: { status: 404 } },
  ]));
});

file.test('MeshHTTPRouteBackendRequestHeaderModifier', async (t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-backend-request-header-modifier', svc('echo', 80), `  rules:
    - matches: [{path: {type: PathPrefix, value: /v1}}]
      backendRefs:
        - name: echo-v1
          port: 80
          filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Header-Set, value: v1}], add: [{name: X-Header-Add, value: add-v1}], remove: [X-Header-Remove]}}]
    - matches: [{path: {type: PathPrefix, value: /split}}]
      backendRefs:
        - name: echo-v1
          port: 80
          filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Header-Set, value: v1}]}}]
        - name: echo-v2
          port: 80
          filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Header-Set, value: v2}]}}]
    - backendRefs: [{name: echo-v2, port: 80}]
`), async () => {
    await expectConsistent(mesh, [
      { name: 'backend filter on echo-v1', request: { to: 'echo', path: '/v1', headers: { 'X-Header-Add': 'original', 'X-Header-Remove': 'x' } }, expect: { backend: 'echo-v1', request: { headers: { 'X-Header-Set': 'v1', 'X-Header-Add': 'original,add-v1' }, absentHeaders: ['X-Header-Remove'] } } },
      { name: 'no filter on the other rule', request: { to: 'echo', path: '/other', headers: { 'X-Header-Remove': 'x' } }, expect: { backend: 'echo-v2', request: { headers: { 'X-Header-Remove': 'x' }, absentHeaders: ['X-Header-Set', 'X-Header-Add'] } } },
    ]);
    // One rule, two backends, each with its own filter: every answer carries the value of the backend that served it.
    const responses = await runEach(mesh, Array.from({ length: 40 }, () => ({ to: 'echo', path: '/split' })), { concurrency: 8 });
    const seen = { 'echo-v1': 0, 'echo-v2': 0 };
    for (const r of responses) {
      assert.equal(r.status, 200, `status ${r.status} ${r.error ?? ''}`);
      const backend = r.echo!.pod.startsWith('echo-v1') ? 'echo-v1' : 'echo-v2';
      seen[backend]++;
      assert.deepEqual(r.echo!.headers['X-Header-Set'], [backend === 'echo-v1' ? 'v1' : 'v2'], `${r.echo!.pod} saw ${JSON.stringify(r.echo!.headers['X-Header-Set'])}`);
    }
    t.diagnostic(`/split over 40 requests: ${JSON.stringify(seen)}`);
    assert.ok(seen['echo-v1'] > 0 && seen['echo-v2'] > 0, `both backends of the rule answered: ${JSON.stringify(seen)}`);
  });
});

file.test('MeshHTTPRouteNamedRule', async (_t, mesh) => {
  await withConfig(mesh, httpRoute('mesh-named-rule', svc('echo', 80), `  rules:
    - name: named-rule
      matches: [{path: {type: PathPrefix, value: /named}}]
      backendRefs: [{name: echo-v1, port: 80}]
    - backendRefs: [{name: echo-v2, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'the named rule routes', request: { to: 'echo', path: '/named' }, expect: { backend: 'echo-v1' } },
    { name: 'the unnamed rule routes', request: { to: 'echo', path: '/unnamed' }, expect: { backend: 'echo-v2' } },
  ]));
});

const grpcRoute = (name: string, body: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: ${name}, namespace: ${MESH_NS}}
spec:
  parentRefs: [${svc('echo', 7070)}]
${body}`;

file.test('MeshGRPCRouteWeight', async (t, mesh) => {
  await withConfig(mesh, grpcRoute('mesh-grpc-weight', `  rules:
    - backendRefs:
        - {name: echo-v1, port: 7070, weight: 70}
        - {name: echo-v2, port: 7070, weight: 30}
`), async () => {
    const { shares, runs } = await expectWeights(mesh, { to: 'echo:7070', grpc: true }, { 'echo-v1': 0.7, 'echo-v2': 0.3 }, { diagnostic: (m) => t.diagnostic(m) });
    t.diagnostic(`gRPC weights over 500 calls: echo-v1 ${(shares['echo-v1']! * 100).toFixed(1)}%, echo-v2 ${(shares['echo-v2']! * 100).toFixed(1)}% (run ${runs})`);
  }, { waitWaypoint: true });
});

file.test('MeshGRPCRouteRequestHeaderModifier', async (_t, mesh) => {
  await withConfig(mesh, grpcRoute('mesh-grpc-header-modifier', `  rules:
    - matches: [{method: {service: ambit.echo.Echo, method: Echo}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-header-set, value: set-overwrites-values}]
            add: [{name: x-header-add, value: add-appends-values}]
            remove: [x-header-remove]
      backendRefs: [{name: echo-v1, port: 7070}]
`), () => expectConsistent(mesh, [
    {
      name: 'metadata set, added and removed',
      request: { to: 'echo:7070', grpc: true, headers: { 'x-header-set': 'original', 'x-header-add': 'original', 'x-header-remove': 'gone' } },
      expect: { grpcStatus: 0, backend: 'echo-v1', request: { headers: { 'x-header-set': 'set-overwrites-values', 'x-header-add': 'original,add-appends-values' }, absentHeaders: ['x-header-remove'] } },
    },
  ]));
});
