// Gateway API mesh conformance, MESH-HTTP core (the suite's 7 tests, named as in conformance/tests/mesh), on the
// cluster-in-a-box through the real path: requests from a meshed client pod, captured by the node agent, HBONE to
// the namespace's waypoint, routed there, HBONE to the endpoint. Tolerances are the suite's (3 in a row within
// 30 s; weights within 5 points over 500 requests, up to 10 retries). See ../shared/spec/gateway-api-mesh.md.
import { ECHO_PARENT, MESH_NS, expectConsistent, expectWeights, useMesh, withConfig } from './suite.js';

const file = useMesh('mesh-http-core');
const route = (name: string, body: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${MESH_NS}}
spec:
  ${ECHO_PARENT}
${body}`;

file.test('MeshBasic', async (_t, mesh) => {
  await expectConsistent(mesh, [{ name: 'meshed client reaches the meshed server', request: { to: 'echo', path: '/' }, expect: { status: 200, namespace: MESH_NS } }]);
});

file.test('MeshHTTPRouteSimpleSameNamespace', async (_t, mesh) => {
  await withConfig(mesh, route('mesh-simple-same-namespace', `  rules:
    - backendRefs: [{name: echo-v1, port: 80}]
`), () => expectConsistent(mesh, [{ name: 'echo lands on echo-v1', request: { to: 'echo', path: '/' }, expect: { backend: 'echo-v1', namespace: MESH_NS } }]));
});

file.test('MeshTrafficSplit', async (_t, mesh) => {
  await withConfig(mesh, route('mesh-split', `  rules:
    - matches: [{path: {type: Exact, value: /v1}}]
      backendRefs: [{name: echo-v1, port: 80}]
    - matches: [{path: {type: Exact, value: /v2}}]
      backendRefs: [{name: echo-v2, port: 80}]
`), () => expectConsistent(mesh, [
    { name: '/v1', request: { to: 'echo', path: '/v1' }, expect: { backend: 'echo-v1' } },
    { name: '/v2', request: { to: 'echo', path: '/v2' }, expect: { backend: 'echo-v2' } },
  ]));
});

file.test('MeshHTTPRouteMatching', async (_t, mesh) => {
  await withConfig(mesh, route('mesh-matching', `  rules:
    - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
      backendRefs: [{name: echo-v1, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
      backendRefs: [{name: echo-v2, port: 80}]
`), () => expectConsistent(mesh, [
    { name: '/', request: { to: 'echo', path: '/' }, expect: { backend: 'echo-v1' } },
    { name: '/example', request: { to: 'echo', path: '/example' }, expect: { backend: 'echo-v1' } },
    { name: 'version: one', request: { to: 'echo', path: '/', headers: { version: 'one' } }, expect: { backend: 'echo-v1' } },
    { name: '/v2', request: { to: 'echo', path: '/v2' }, expect: { backend: 'echo-v2' } },
    { name: '/v2/example', request: { to: 'echo', path: '/v2/example' }, expect: { backend: 'echo-v2' } },
    { name: '/v2/', request: { to: 'echo', path: '/v2/' }, expect: { backend: 'echo-v2' } },
    { name: 'version: two', request: { to: 'echo', path: '/', headers: { version: 'two' } }, expect: { backend: 'echo-v2' } },
    { name: '/v2example (prefix is per segment)', request: { to: 'echo', path: '/v2example' }, expect: { backend: 'echo-v1' } },
    { name: '/foo/v2/example', request: { to: 'echo', path: '/foo/v2/example' }, expect: { backend: 'echo-v1' } },
  ]));
});

file.test('MeshHTTPRouteWeight', async (t, mesh) => {
  await withConfig(mesh, route('mesh-weighted-backends', `  rules:
    - backendRefs:
        - {name: echo-v1, port: 80, weight: 70}
        - {name: echo-v2, port: 80, weight: 30}
`), async () => {
    const { shares, runs } = await expectWeights(mesh, { to: 'echo', path: '/' }, { 'echo-v1': 0.7, 'echo-v2': 0.3 }, { diagnostic: (m) => t.diagnostic(m) });
    t.diagnostic(`weights seen over 500 requests: echo-v1 ${(shares['echo-v1']! * 100).toFixed(1)}%, echo-v2 ${(shares['echo-v2']! * 100).toFixed(1)}% (run ${runs})`);
  }, { waitWaypoint: true });
});

file.test('MeshHTTPRouteRequestHeaderModifier', async (_t, mesh) => {
  await withConfig(mesh, route('mesh-request-header-modifier', `  rules:
    - matches: [{path: {type: PathPrefix, value: /set}}]
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Header-Set, value: set-overwrites-values}]}}]
      backendRefs: [{name: echo, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /add}}]
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: X-Header-Add, value: add-appends-values}]}}]
      backendRefs: [{name: echo, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /remove}}]
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [X-Header-Remove]}}]
      backendRefs: [{name: echo, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /multiple}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: X-Header-Set-1, value: header-set-1}, {name: X-Header-Set-2, value: header-set-2}]
            add: [{name: X-Header-Add-1, value: header-add-1}, {name: X-Header-Add-2, value: header-add-2}, {name: X-Header-Add-3, value: header-add-3}]
            remove: [X-Header-Remove-1, X-Header-Remove-2]
      backendRefs: [{name: echo, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /case-insensitivity}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: X-Header-Set, value: header-set}]
            add: [{name: X-Header-Add, value: header-add}, {name: x-lowercase-add, value: lowercase-add}, {name: x-Mixedcase-ADD-1, value: mixedcase-add-1}, {name: X-mixeDcase-add-2, value: mixedcase-add-2}, {name: X-UPPERCASE-ADD, value: uppercase-add}]
            remove: [X-Header-Remove]
      backendRefs: [{name: echo, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'set overwrites', request: { to: 'echo', path: '/set', headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' } }, expect: { request: { path: '/set', headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } } } },
    { name: 'set without an existing value', request: { to: 'echo', path: '/set', headers: { 'Some-Other-Header': 'val' } }, expect: { request: { headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' } } } },
    { name: 'add appends', request: { to: 'echo', path: '/add', headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' } }, expect: { request: { headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value,add-appends-values' } } } },
    { name: 'add without an existing value', request: { to: 'echo', path: '/add', headers: { 'Some-Other-Header': 'val' } }, expect: { request: { headers: { 'X-Header-Add': 'add-appends-values' } } } },
    { name: 'remove', request: { to: 'echo', path: '/remove', headers: { 'X-Header-Remove': 'val', 'Some-Other-Header': 'val' } }, expect: { request: { headers: { 'Some-Other-Header': 'val' }, absentHeaders: ['X-Header-Remove'] } } },
    {
      name: 'multiple set, add and remove',
      request: { to: 'echo', path: '/multiple', headers: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' } },
      expect: { request: {
        headers: { 'X-Header-Set-1': 'header-set-1', 'X-Header-Set-2': 'header-set-2', 'X-Header-Add-1': 'header-add-1', 'X-Header-Add-2': 'add-val-2,header-add-2', 'X-Header-Add-3': 'header-add-3', 'Another-Header': 'another-header-val' },
        absentHeaders: ['X-Header-Remove-1', 'X-Header-Remove-2'],
      } },
    },
    {
      name: 'header names are case-insensitive',
      request: { to: 'echo', path: '/case-insensitivity', headers: { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' } },
      expect: { request: {
        headers: {
          'X-Header-Set': 'header-set', 'X-Header-Add': 'original-val-add,header-add', 'X-Lowercase-Add': 'lowercase-add', 'X-Mixedcase-Add-1': 'mixedcase-add-1',
          'X-Mixedcase-Add-2': 'mixedcase-add-2', 'X-Uppercase-Add': 'uppercase-add', 'Another-Header': 'another-header-val',
        },
        absentHeaders: ['x-header-remove'],
      } },
    },
  ]));
});

file.test('MeshHTTPRouteRedirectHostAndStatus', async (_t, mesh) => {
  await withConfig(mesh, route('mesh-redirect-host-and-status', `  rules:
    - matches: [{path: {type: PathPrefix, value: /hostname-redirect}}]
      filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
    - matches: [{path: {type: PathPrefix, value: /host-and-status}}]
      filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org, statusCode: 301}}]
`), () => expectConsistent(mesh, [
    { name: '/hostname-redirect -> 302 example.org', request: { to: 'echo', path: '/hostname-redirect' }, expect: { status: 302, redirect: { hostname: 'example.org', path: '/hostname-redirect' } } },
    { name: '/host-and-status -> 301 example.org', request: { to: 'echo', path: '/host-and-status' }, expect: { status: 301, redirect: { hostname: 'example.org', path: '/host-and-status' } } },
  ]));
});
