// The Gateway API's gateway-profile timeout and retry tests (HTTPRouteTimeoutRequest, HTTPRouteTimeoutBackendRequest,
// HTTPRouteRetry, HTTPRouteRetryWithTimeouts, HTTPRouteRetryConnectionError), run in mesh mode: the routes attach to
// Service echo-v1 (one pod, so the backend's fail-N-times counter sees every attempt) and requests come from the
// meshed client pod through the waypoint. The backend (apps/conformance-echo.ts) delays with `delay=`, fails the
// first N requests of a key with `fail=N&key=...` (code=, fail-delay=, fail-mode=reset).
import assert from 'node:assert/strict';
import { runEach } from './mesh.js';
import { MESH_NS, expectConsistent, useMesh, withConfig } from './suite.js';

const file = useMesh('mesh-timeout-retry');

const route = (name: string, body: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${MESH_NS}}
spec:
  parentRefs: [{group: "", kind: Service, name: echo-v1, port: 80}]
${body}`;
const req = (path: string) => ({ to: 'echo-v1', path });

file.test('HTTPRouteTimeoutRequest', async (_t, mesh) => {
  await withConfig(mesh, route('timeout-request', `  rules:
    - matches: [{path: {type: PathPrefix, value: /request-timeout}}]
      timeouts: {request: 500ms}
      backendRefs: [{name: echo-v1, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /disable-request-timeout}}]
      timeouts: {request: 0s}
      backendRefs: [{name: echo-v1, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'backend slower than timeouts.request -> 504', request: req('/request-timeout?delay=1s'), expect: { status: 504 } },
    { name: 'no delay -> 200', request: req('/request-timeout'), expect: { status: 200, backend: 'echo-v1' } },
    { name: 'request: 0s disables the timeout', request: req('/disable-request-timeout?delay=1s'), expect: { status: 200, backend: 'echo-v1' } },
  ]));
});

file.test('HTTPRouteTimeoutBackendRequest', async (_t, mesh) => {
  await withConfig(mesh, route('timeout-backend-request', `  rules:
    - matches: [{path: {type: PathPrefix, value: /backend-timeout}}]
      timeouts: {request: 5s, backendRequest: 500ms}
      backendRefs: [{name: echo-v1, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'backend slower than timeouts.backendRequest -> 504', request: req('/backend-timeout?delay=1s'), expect: { status: 504 } },
    { name: 'no delay -> 200', request: req('/backend-timeout'), expect: { status: 200, backend: 'echo-v1' } },
  ]));
});

file.test('HTTPRouteRetry', async (_t, mesh) => {
  await withConfig(mesh, route('retry', `  rules:
    - matches: [{path: {type: PathPrefix, value: /retry-500}}]
      retry: {codes: [500], attempts: 3, backoff: 10ms}
      backendRefs: [{name: echo-v1, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /retry-5xx}}]
      retry: {codes: [500, 502, 503, 504], attempts: 2, backoff: 10ms}
      backendRefs: [{name: echo-v1, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'codes [500], attempts 3: recovers after 2 failures', request: req('/retry-500?fail=2&key={uniq}'), expect: { status: 200, backend: 'echo-v1' } },
    { name: 'codes [500], attempts 3: recovers after 3 failures (3 retries)', request: req('/retry-500?fail=3&key={uniq}'), expect: { status: 200, backend: 'echo-v1' } },
    { name: 'codes [500], attempts 3: 4 failures exceed the attempts -> 500', request: req('/retry-500?fail=4&key={uniq}'), expect: { status: 500 } },
    { name: 'codes [500]: 503 is not retried', request: req('/retry-500?fail=1&code=503&key={uniq}'), expect: { status: 503 } },
    { name: 'codes [500..504], attempts 2: recovers after 1 failure (502)', request: req('/retry-5xx?fail=1&code=502&key={uniq}'), expect: { status: 200, backend: 'echo-v1' } },
    { name: 'codes [500..504], attempts 2: 3 failures surface 502', request: req('/retry-5xx?fail=3&code=502&key={uniq}'), expect: { status: 502 } },
    { name: 'codes [500..504], attempts 2: 3 failures surface 500', request: req('/retry-5xx?fail=3&code=500&key={uniq}'), expect: { status: 500 } },
  ]));
});

file.test('HTTPRouteRetryWithTimeouts', async (_t, mesh) => {
  await withConfig(mesh, route('retry-with-timeouts', `  rules:
    - matches: [{path: {type: PathPrefix, value: /retry-slow}}]
      timeouts: {backendRequest: 200ms}
      retry: {codes: [504], attempts: 2, backoff: 10ms}
      backendRefs: [{name: echo-v1, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /retry-capped}}]
      timeouts: {request: 400ms, backendRequest: 200ms}
      retry: {codes: [500, 504], attempts: 5, backoff: 10ms}
      backendRefs: [{name: echo-v1, port: 80}]
`), async () => {
    await expectConsistent(mesh, [
      { name: 'a slow first attempt (over backendRequest) is retried -> 200', request: req('/retry-slow?fail=1&fail-delay=1s&key={uniq}'), expect: { status: 200, backend: 'echo-v1' } },
      { name: 'every attempt slow: timeouts.request caps the retries -> 504', request: req('/retry-capped?fail=100&fail-delay=1s&key={uniq}'), expect: { status: 504 } },
    ]);
    // The overall request timeout bounds the whole exchange, retries included.
    const [r] = await runEach(mesh, [req('/retry-capped?fail=100&fail-delay=1s&key={uniq}')]);
    assert.equal(r!.status, 504);
    assert.ok(r!.ms < 1500, `504 came after ${r!.ms} ms; timeouts.request is 400ms`);
  });
});

file.test('HTTPRouteRetryConnectionError', async (_t, mesh) => {
  await withConfig(mesh, route('retry-connection-error', `  rules:
    - matches: [{path: {type: PathPrefix, value: /retry-reset}}]
      retry: {attempts: 3, backoff: 10ms}
      backendRefs: [{name: echo-v1, port: 80}]
`), () => expectConsistent(mesh, [
    { name: 'connection reset twice, then answers -> 200', request: req('/retry-reset?fail=2&fail-mode=reset&key={uniq}'), expect: { status: 200, backend: 'echo-v1' } },
  ]));
});
