import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dr, echoParent, httpRoute, NS, startHarness, VIPS, vs, type Harness } from './harness.js';

let h: Harness;
before(async () => { h = await startHarness(); });
after(async () => { await h?.close(); });

const ECHO = `${VIPS.echo}:80`;

test('no route object: request passes through to the service endpoints (Istio\'s default LEAST_REQUEST spreads them)', async () => {
  h.applyConfig([], h.app.configStore.objects().size ? [...h.app.configStore.objects().keys()] : []);
  const pods = new Set<string>();
  // Sequential requests all see zero active requests, so LEAST_REQUEST's two random choices decide: 20 requests
  // reach both endpoints except with probability 2^-19.
  for (let i = 0; i < 20; i++) {
    const r = await h.request(ECHO, { path: `/hello?i=${i}` });
    assert.equal(r.status, 200);
    const b = r.json();
    assert.equal(b.path, `/hello?i=${i}`);
    assert.match(b.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
    assert.equal(b.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(b.headers['x-envoy-attempt-count'], '1');
    pods.add(b.pod);
  }
  assert.deepEqual([...pods].sort(), ['echo-v1-0', 'echo-v2-0']);
});

test('unknown authority answers 404 with response flag NR', async () => {
  const r = await h.request('10.96.9.9:80');
  assert.equal(r.status, 404);
  const line = h.logs.filter((l) => l.msg === 'request complete').at(-1)!;
  assert.equal(line.response_flags, 'NR');
  assert.equal(line.response_code, 404);
});

test('VirtualService matrix: uri exact/prefix/regex, headers, method, queryParams, withoutHeaders, first match wins', async () => {
  const rejected = h.applyConfig([
    dr('echo', { host: 'echo', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    vs('echo', {
      hosts: ['echo'],
      http: [
        { name: 'exact', match: [{ uri: { exact: '/exact' } }], route: [{ destination: { host: 'echo', subset: 'v2' } }] },
        { name: 'regex', match: [{ uri: { regex: '/re/[0-9]+' } }], route: [{ destination: { host: 'echo', subset: 'v2' } }] },
        { name: 'header', match: [{ headers: { 'x-user': { prefix: 'jason' } }, method: { exact: 'POST' } }], route: [{ destination: { host: 'echo', subset: 'v2' } }] },
        { name: 'query-or-present', match: [{ queryParams: { v: { exact: 'two' } } }, { headers: { 'x-two': {} } }], route: [{ destination: { host: 'echo', subset: 'v2' } }] },
        { name: 'without', match: [{ uri: { prefix: '/without' }, withoutHeaders: { 'x-skip': {} } }], route: [{ destination: { host: 'echo', subset: 'v2' } }] },
        { name: 'default', route: [{ destination: { host: 'echo', subset: 'v1' } }] },
      ],
    }),
  ]);
  assert.deepEqual(rejected, []);
  const pod = async (path: string, o: { method?: string; headers?: Record<string, string> } = {}) => (await h.request(ECHO, { path, ...o })).json().pod;
  assert.equal(await pod('/exact'), 'echo-v2-0');
  assert.equal(await pod('/exact/more'), 'echo-v1-0');
  assert.equal(await pod('/re/123'), 'echo-v2-0');
  assert.equal(await pod('/re/12a'), 'echo-v1-0', 'RE2 regex is a full match');
  assert.equal(await pod('/x', { method: 'POST', headers: { 'x-user': 'jason-1' } }), 'echo-v2-0');
  assert.equal(await pod('/x', { method: 'GET', headers: { 'x-user': 'jason-1' } }), 'echo-v1-0', 'AND within a match block');
  assert.equal(await pod('/x?v=two'), 'echo-v2-0');
  assert.equal(await pod('/x', { headers: { 'x-two': '' } }), 'echo-v2-0', 'OR across blocks, presence match');
  assert.equal(await pod('/without'), 'echo-v2-0');
  assert.equal(await pod('/without', { headers: { 'x-skip': '1' } }), 'echo-v1-0');
  for (let i = 0; i < 4; i++) assert.equal(await pod('/'), 'echo-v1-0', 'subset v1 only');
});

test('VirtualService rewrite, header operations, redirect and direct response', async () => {
  const rejected = h.applyConfig([
    vs('echo', {
      hosts: ['echo.mesh.svc.cluster.local'],
      http: [
        { match: [{ uri: { prefix: '/old' } }], rewrite: { uri: '/new', authority: 'rewritten.example' }, route: [{ destination: { host: 'echo-v1' }, headers: { request: { add: { 'x-dest': 'v1' } } } }],
          headers: { request: { set: { 'x-set': 'yes' }, remove: ['x-remove'] }, response: { set: { 'x-resp': 'set' }, remove: ['x-echo-set'] } } },
        { match: [{ uri: { exact: '/redirect' } }], redirect: { uri: '/elsewhere', authority: 'example.org', redirectCode: 308 } },
        { match: [{ uri: { exact: '/direct' } }], directResponse: { status: 418, body: { string: 'teapot' } } },
        { route: [{ destination: { host: 'echo' } }] },
      ],
    }),
  ]);
  assert.deepEqual(rejected, []);
  const r = await h.request(ECHO, { path: '/old/path?q=1', headers: { 'x-remove': 'gone', 'x-set': 'no' } });
  assert.equal(r.status, 200);
  const b = r.json();
  assert.equal(b.pod, 'echo-v1-0');
  assert.equal(b.path, '/new/path?q=1');
  assert.equal(b.host, 'rewritten.example');
  assert.equal(b.headers['x-set'], 'yes');
  assert.equal(b.headers['x-dest'], 'v1');
  assert.equal(b.headers['x-remove'], undefined);
  assert.equal(r.headers['x-resp'], 'set');
  assert.equal(r.headers['x-echo-set'], undefined);
  const red = await h.request(ECHO, { path: '/redirect?a=b' });
  assert.equal(red.status, 308);
  assert.equal(red.headers.location, 'http://example.org/elsewhere?a=b');
  const d = await h.request(ECHO, { path: '/direct' });
  assert.equal(d.status, 418);
  assert.equal(d.body.trim(), 'teapot');
});

test('VirtualService weights: 500 requests split 70/30 within 5 points', async () => {
  h.applyConfig([
    vs('echo', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo-v1' }, weight: 70 }, { destination: { host: 'echo-v2' }, weight: 30 }] }] }),
  ]);
  const counts = await countPods(500, () => h.request(ECHO));
  assert.ok(Math.abs(counts['echo-v1-0']! / 500 - 0.7) <= 0.05, JSON.stringify(counts));
  assert.ok(Math.abs(counts['echo-v2-0']! / 500 - 0.3) <= 0.05, JSON.stringify(counts));
});

async function countPods(n: number, send: () => Promise<{ json(): { pod: string } }>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  // Bounded concurrency: 20 in flight.
  let i = 0;
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (i < n) {
      i++;
      const pod = (await send()).json().pod;
      counts[pod] = (counts[pod] ?? 0) + 1;
    }
  }));
  return counts;
}

test('HTTPRoute mesh matching (GAMMA MeshHTTPRouteMatching) and precedence', async () => {
  h.applyConfig([], [...h.app.configStore.objects().keys()]);
  const rejected = h.applyConfig([
    httpRoute('matching', {
      parentRefs: [echoParent],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }, { headers: [{ name: 'version', value: 'one' }] }], backendRefs: [{ name: 'echo-v1', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/v2' } }, { headers: [{ name: 'version', value: 'two' }] }], backendRefs: [{ name: 'echo-v2', port: 80 }] },
      ],
    }),
    httpRoute('precedence', {
      parentRefs: [echoParent],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/p' }, method: 'POST' }], backendRefs: [{ name: 'echo-v2', port: 80 }] },
        { matches: [{ path: { type: 'Exact', value: '/v2/exact' } }], backendRefs: [{ name: 'echo-v1', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/q' }, queryParams: [{ name: 'animal', value: 'whale' }] }], backendRefs: [{ name: 'echo-v2', port: 80 }] },
      ],
    }, { created: '2026-01-02T00:00:00Z' }),
  ]);
  assert.deepEqual(rejected, []);
  const pod = async (path: string, headers: Record<string, string> = {}, method = 'GET') => (await h.request(ECHO, { path, headers, method })).json().pod;
  for (const p of ['/', '/example', '/v2example', '/foo/v2/example']) assert.equal(await pod(p), 'echo-v1-0', p);
  for (const p of ['/v2', '/v2/example', '/v2/']) assert.equal(await pod(p), 'echo-v2-0', p);
  assert.equal(await pod('/', { version: 'one' }), 'echo-v1-0');
  assert.equal(await pod('/', { version: 'two' }), 'echo-v2-0');
  assert.equal(await pod('/v2/exact'), 'echo-v1-0', 'exact beats a longer prefix');
  assert.equal(await pod('/p', {}, 'POST'), 'echo-v2-0', 'method match beats the catch-all');
  assert.equal(await pod('/q?animal=whale'), 'echo-v2-0');
  assert.equal(await pod('/q?animal=dolphin'), 'echo-v1-0');
});

test('HTTPRoute filters: header modifier, rewrite (prefix and full), redirect with status, port and scheme', async () => {
  h.applyConfig([], [...h.app.configStore.objects().keys()]);
  const rejected = h.applyConfig([
    httpRoute('filters', {
      parentRefs: [echoParent],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/set' } }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Header-Set', value: 'set-overwrites' }], add: [{ name: 'X-Header-Add', value: 'add-appends' }], remove: ['X-Header-Remove'] } }, { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-Resp', value: 'r' }] } }], backendRefs: [{ name: 'echo-v1', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/prefix/one' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/one' } } }], backendRefs: [{ name: 'echo-v1', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/strip-prefix' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'mydomain.example.com', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [{ name: 'echo-v1', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/full' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/one' } } }], backendRefs: [{ name: 'echo-v1', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/hostname-redirect' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org' } }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/host-and-status' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', statusCode: 301 } }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/original-prefix' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/replacement-prefix' } } }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/port' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { port: 8083 } }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/scheme' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] },
      ],
    }),
  ]);
  assert.deepEqual(rejected, []);
  const s = await h.request(ECHO, { path: '/set', headers: { 'x-header-set': 'old', 'x-header-add': 'a', 'X-Header-Remove': 'bye' } });
  const sb = s.json();
  assert.equal(sb.headers['x-header-set'], 'set-overwrites');
  assert.equal(sb.headers['x-header-add'], 'a,add-appends');
  assert.equal(sb.headers['x-header-remove'], undefined);
  assert.equal(s.headers['x-resp'], 'r');
  assert.equal((await h.request(ECHO, { path: '/prefix/one/two' })).json().path, '/one/two');
  const strip = (await h.request(ECHO, { path: '/strip-prefix/three' })).json();
  assert.equal(strip.path, '/three');
  assert.equal(strip.host, 'mydomain.example.com');
  assert.equal((await h.request(ECHO, { path: '/strip-prefix' })).json().path, '/');
  assert.equal((await h.request(ECHO, { path: '/full/one/two' })).json().path, '/one');
  const r1 = await h.request(ECHO, { path: '/hostname-redirect', host: 'echo' });
  assert.equal(r1.status, 302);
  assert.equal(r1.headers.location, 'http://example.org/hostname-redirect');
  assert.equal((await h.request(ECHO, { path: '/host-and-status' })).status, 301);
  assert.equal((await h.request(ECHO, { path: '/original-prefix/lemon', host: 'echo' })).headers.location, 'http://echo/replacement-prefix/lemon');
  assert.equal((await h.request(ECHO, { path: '/port', host: 'echo' })).headers.location, 'http://echo:8083/port');
  assert.equal((await h.request(ECHO, { path: '/scheme', host: 'echo' })).headers.location, 'https://echo/scheme');
});

test('HTTPRoute weights: 500 requests split 70/30 within 5 points', async () => {
  h.applyConfig([], [...h.app.configStore.objects().keys()]);
  h.applyConfig([httpRoute('weights', { parentRefs: [echoParent], rules: [{ backendRefs: [{ name: 'echo-v1', port: 80, weight: 70 }, { name: 'echo-v2', port: 80, weight: 30 }] }] })]);
  const counts = await countPods(500, () => h.request(ECHO));
  assert.ok(Math.abs(counts['echo-v1-0']! / 500 - 0.7) <= 0.05, JSON.stringify(counts));
  assert.ok(Math.abs(counts['echo-v2-0']! / 500 - 0.3) <= 0.05, JSON.stringify(counts));
});

test('HTTPRoute parentRef port applies only to that port; other services are untouched', async () => {
  h.applyConfig([], [...h.app.configStore.objects().keys()]);
  h.applyConfig([httpRoute('port', { parentRefs: [{ group: '', kind: 'Service', name: 'echo-v1', port: 80 }], rules: [{ filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-header-set', value: 'v1' }] } }], backendRefs: [{ name: 'echo-v1', port: 80 }] }] })]);
  assert.equal((await h.request(`${VIPS.echoV1}:80`)).headers['x-header-set'], 'v1');
  assert.equal((await h.request(`${VIPS.echoV1}:9000`, {})).headers['x-header-set'], undefined);
  assert.equal((await h.request(`${VIPS.echoV2}:80`)).headers['x-header-set'], undefined);
});

test('mesh consumer route applies only to clients in its namespace', async () => {
  h.applyConfig([], [...h.app.configStore.objects().keys()]);
  h.applyConfig([httpRoute('consumer', { parentRefs: [{ group: '', kind: 'Service', name: 'echo', namespace: NS, port: 80 }], rules: [{ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-consumer', value: 'yes' }] } }], backendRefs: [{ name: 'echo', namespace: NS, port: 80 }] }] }, { namespace: 'consumer' })]);
  assert.equal((await h.request(ECHO)).json().headers['x-consumer'], undefined, 'client in the producer namespace');
  const t = await h.tunnel(ECHO, 'spiffe://cluster.local/ns/consumer/sa/app');
  const body = await new Promise<string>((resolve, reject) => {
    t.write('GET / HTTP/1.1\r\nhost: echo\r\nconnection: close\r\n\r\n');
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no complete response in 10 s: ${text}`)), 10_000);
    t.on('data', (c: Buffer) => { text += c; if (text.includes('"pod"')) { clearTimeout(timer); resolve(text); } });
    t.on('error', reject);
  });
  t.destroy();
  assert.match(body, /"x-consumer":"yes"/);
});
