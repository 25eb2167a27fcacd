import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileLoadBalancer, compileTrafficPolicy, createLoadBalancer, DEFAULT_LOAD_BALANCER, resolveTrafficPolicy, type LbPick } from './load-balancer.js';
import { DEFAULT_CONNECTION_POOL } from './connection-pool.js';
import { PolicyConfigError } from './diagnostics.js';

const where = { object: 'DestinationRule default/bookinfo-ratings', field: 'spec.trafficPolicy.loadBalancer' };
const eps = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'].map((address) => ({ address }));
const addr = (p: LbPick<{ address: string }>) => (p.kind === 'endpoint' ? p.endpoint.address : p.kind);
const seq = (...v: number[]) => { let i = 0; return () => v[i++ % v.length]!; };

test('default is LEAST_REQUEST; ROUND_ROBIN rotates; weights interleave smoothly', () => {
  assert.equal(compileLoadBalancer(undefined, where), DEFAULT_LOAD_BALANCER);
  assert.equal(DEFAULT_LOAD_BALANCER.kind, 'LEAST_REQUEST');
  const rr = createLoadBalancer(compileLoadBalancer({ simple: 'ROUND_ROBIN' }, where));
  assert.deepEqual([1, 2, 3, 4].map(() => addr(rr.pick(eps))), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.1:80']);
  const w = createLoadBalancer({ kind: 'ROUND_ROBIN' });
  const weighted = [{ address: 'a', weight: 2 }, { address: 'b', weight: 1 }];
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => addr(w.pick(weighted))), ['a', 'b', 'a', 'a', 'b', 'a']);
});

test('LEAST_REQUEST picks the less loaded of two random choices; RANDOM is weighted', () => {
  const lr = createLoadBalancer({ kind: 'LEAST_REQUEST' }, { random: seq(0.1, 0.9) });
  const load: Record<string, number> = { '10.0.0.1:80': 5, '10.0.0.3:80': 1 };
  assert.equal(addr(lr.pick(eps, { activeRequests: (a) => load[a] ?? 0 })), '10.0.0.3:80');
  const rnd = createLoadBalancer(compileLoadBalancer({ simple: 'RANDOM' }, where), { random: seq(0.7) });
  assert.equal(addr(rnd.pick([{ address: 'a', weight: 1 }, { address: 'b', weight: 3 }])), 'b');
  assert.equal(compileLoadBalancer({ simple: 'LEAST_CONN' }, where).kind, 'LEAST_REQUEST');
});

test('PASSTHROUGH sends to the original destination; no endpoints gives none; exclude avoids previous hosts', () => {
  assert.deepEqual(createLoadBalancer(compileLoadBalancer({ simple: 'PASSTHROUGH' }, where)).pick(eps), { kind: 'passthrough' });
  assert.deepEqual(createLoadBalancer({ kind: 'ROUND_ROBIN' }).pick([]), { kind: 'none' });
  const rr = createLoadBalancer({ kind: 'ROUND_ROBIN' });
  for (let i = 0; i < 4; i++) assert.notEqual(addr(rr.pick(eps, { exclude: new Set(['10.0.0.1:80']) })), '10.0.0.1:80');
  assert.equal(addr(rr.pick([eps[0]!], { exclude: new Set(['10.0.0.1:80']) })), '10.0.0.1:80', 'the only endpoint is used anyway');
});

test('consistent hash on a header is sticky and moves few keys when an endpoint is added', () => {
  const lb = createLoadBalancer(compileLoadBalancer({ consistentHash: { httpHeaderName: 'x-user' } }, where));
  const before = new Map<string, string>();
  for (let u = 0; u < 300; u++) before.set(`u${u}`, addr(lb.pick(eps, { headers: { 'x-user': `u${u}` } })));
  for (let u = 0; u < 300; u++) assert.equal(addr(lb.pick(eps, { headers: { 'x-user': `u${u}` } })), before.get(`u${u}`));
  const counts = new Map<string, number>();
  for (const v of before.values()) counts.set(v, (counts.get(v) ?? 0) + 1);
  for (const e of eps) assert.ok((counts.get(e.address) ?? 0) > 50, `each endpoint owns a share: ${[...counts]}`);
  const grown = [...eps, { address: '10.0.0.4:80' }];
  let moved = 0;
  for (let u = 0; u < 300; u++) {
    const now = addr(lb.pick(grown, { headers: { 'x-user': `u${u}` } }));
    if (now !== before.get(`u${u}`)) { moved++; assert.equal(now, '10.0.0.4:80', 'keys only move to the new endpoint'); }
  }
  assert.ok(moved > 30 && moved < 130, `about a quarter of the keys move, got ${moved}/300`);
});

test('consistent hash on source IP and query parameter; missing key falls back to a random endpoint', () => {
  const ip = createLoadBalancer(compileLoadBalancer({ consistentHash: { useSourceIp: true } }, where));
  assert.equal(addr(ip.pick(eps, { sourceIp: '10.1.2.3' })), addr(ip.pick(eps, { sourceIp: '10.1.2.3' })));
  const q = createLoadBalancer(compileLoadBalancer({ consistentHash: { httpQueryParameterName: 'user', ringHash: { minimumRingSize: 256 } } }, where), { random: seq(0) });
  assert.equal(addr(q.pick(eps, { path: '/a?user=7' })), addr(q.pick(eps, { path: '/b?x=1&user=7' })));
  assert.equal(addr(q.pick(eps, { path: '/a' })), addr(q.pick(eps, { path: '/b' })), 'random with the same draw lands on the same point');
});

test('httpCookie: generates the cookie when absent (Set-Cookie) and then sticks to it', () => {
  const lb = createLoadBalancer(compileLoadBalancer({ consistentHash: { httpCookie: { name: 'user', path: '/', ttl: '3600s' } } }, where));
  const first = lb.pick(eps, { sourceIp: '10.9.9.9', headers: {} });
  assert.ok(first.kind === 'endpoint' && first.setCookie);
  const m = /^user="([0-9a-f]{16})"; Max-Age=3600; Path=\/; HttpOnly$/.exec(first.setCookie!);
  assert.ok(m, first.setCookie);
  const again = lb.pick(eps, { headers: { cookie: `a=b; user="${m![1]}"` } });
  assert.deepEqual(again, { kind: 'endpoint', endpoint: first.endpoint });
  const noTtl = createLoadBalancer(compileLoadBalancer({ consistentHash: { httpCookie: { name: 'user' } } }, where), { random: seq(0.5) });
  const p = noTtl.pick(eps, {});
  assert.ok(p.kind === 'endpoint' && p.setCookie === undefined, 'without ttl no cookie is generated');
});

test('resolveTrafficPolicy: Istio docs example with a subset override and port-level settings that do not inherit', () => {
  const dr = {
    kind: 'DestinationRule', metadata: { name: 'bookinfo-ratings', namespace: 'default' },
    spec: {
      host: 'ratings.prod.svc.cluster.local',
      trafficPolicy: {
        loadBalancer: { simple: 'LEAST_REQUEST' },
        connectionPool: { tcp: { maxConnections: 100 } },
        outlierDetection: { consecutive5xxErrors: 7 },
        portLevelSettings: [{ port: { number: 80 }, loadBalancer: { simple: 'RANDOM' } }],
      },
      subsets: [{
        name: 'testversion', labels: { version: 'v3' },
        trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' }, portLevelSettings: [{ port: { number: 9080 }, tls: { mode: 'SIMPLE' } }] },
      }],
    },
  };
  const top = resolveTrafficPolicy(dr);
  assert.deepEqual(top.loadBalancer, { simple: 'LEAST_REQUEST' });
  assert.equal(top.fields.connectionPool, 'spec.trafficPolicy.connectionPool');
  const p80 = resolveTrafficPolicy(dr, undefined, 80);
  assert.deepEqual(p80.loadBalancer, { simple: 'RANDOM' });
  assert.equal(p80.connectionPool, undefined, 'port-level settings replace all four fields');
  assert.equal(p80.fields.loadBalancer, 'spec.trafficPolicy.portLevelSettings[0].loadBalancer');
  const sub = resolveTrafficPolicy(dr, 'testversion');
  assert.deepEqual(sub.loadBalancer, { simple: 'ROUND_ROBIN' });
  assert.deepEqual(sub.connectionPool, { tcp: { maxConnections: 100 } }, 'unset subset fields inherit the top level');
  const sub80 = resolveTrafficPolicy(dr, 'testversion', 80);
  assert.deepEqual([sub80.loadBalancer, sub80.connectionPool], [{ simple: 'ROUND_ROBIN' }, undefined], 'top port-level, then subset fields');
  const sub9080 = resolveTrafficPolicy(dr, 'testversion', 9080);
  assert.deepEqual([sub9080.loadBalancer, sub9080.tls, sub9080.outlierDetection], [undefined, { mode: 'SIMPLE' }, undefined]);
  assert.equal(resolveTrafficPolicy(dr, 'nope').subsetMissing, true);

  const compiled = compileTrafficPolicy(dr, 'testversion');
  assert.equal(compiled.loadBalancer.kind, 'ROUND_ROBIN');
  assert.equal(compiled.connectionPool.maxConnections, 100);
  assert.equal(compiled.outlierDetection?.consecutive5xxErrors, 7);
  assert.deepEqual(compileTrafficPolicy(dr, 'testversion', 80).connectionPool, DEFAULT_CONNECTION_POOL);
  const bad = { ...dr, spec: { ...dr.spec, subsets: [{ name: 'testversion', trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } }] } };
  assert.throws(() => compileTrafficPolicy(bad, 'testversion'), (e: unknown) => e instanceof PolicyConfigError &&
    /DestinationRule default\/bookinfo-ratings: spec\.subsets\[0\]\.trafficPolicy\.loadBalancer\.simple: must be ROUND_ROBIN/.test(e.message));
});

test('invalid loadBalancer names the field', () => {
  const bad = (lb: unknown, re: RegExp) => assert.throws(() => compileLoadBalancer(lb, where), re);
  bad({ simple: 'ROUND_ROBIN', consistentHash: { useSourceIp: true } }, /only one of simple or consistentHash/);
  bad({ consistentHash: {} }, /consistentHash: exactly one of httpHeaderName/);
  bad({ consistentHash: { httpCookie: { ttl: '10s' } } }, /consistentHash\.httpCookie\.name: is required/);
  bad({ consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 0 } } }, /ringHash\.minimumRingSize: must be an integer/);
});
