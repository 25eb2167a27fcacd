// The demo on the cluster-in-a-box (npm run demo -- --kubernetes) as a test: helm install, kubectl apply of the user's
// YAML, kubectl label, ambitctl waypoint apply, the same configuration files; every step's check must pass, the
// numbers must say what the steps claim, and the teardown (helm uninstall, cluster stop) must leave no namespaces.
// Bounded: fixed request counts at a fixed rate (about 1,300 requests), each wait has a deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createConsole } from './console.js';
import type { ConnectionSignals, ServiceSignals } from './metrics.js';
import { runKubernetesDemo } from './kubernetes-demo.js';
import { listNetns } from '../netns.js';
import { requireRoot } from '../root.js';

test('kubernetes demo: helm-installed mesh captures bookinfo, mTLS on every hop, ambitctl waypoint routes 90/10 then v3, fault and deny path checked, clean teardown', { timeout: 290_000 }, async () => {
  requireRoot('the kubernetes demo');
  let output = '';
  const sink = new Writable({ write(chunk, _enc, done) { output += String(chunk); done(); } });
  const ui = createConsole(sink, { color: false });
  const started = Date.now();
  const result = await runKubernetesDemo(ui, {});
  process.stdout.write(output.replace(/^/gm, '# '));
  process.stdout.write(`# the kubernetes demo took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  assert.deepEqual(result.failures, [], `failed checks:\n${result.failures.join('\n')}`);

  const plain = result.measurements.plain as { plainHops: string[] };
  assert.ok(plain.plainHops.length > 0, 'no plain HTTP seen on the node link before enrollment');
  const mtls = result.measurements.mtls as { services: ConnectionSignals[]; hbonePackets: number };
  // ratings is called only by reviews v2 and v3; which versions the agents picked before the waypoint is chance.
  const called = result.measurements.ratingsCalled ? ['productpage', 'details', 'reviews', 'ratings'] : ['productpage', 'details', 'reviews'];
  for (const svc of called) {
    const row = mtls.services.find((s) => s.service === svc);
    assert.ok(row && row.opened > 0 && row.mutualTls === row.opened, `${svc}: ${JSON.stringify(row)}`);
  }
  assert.ok(mtls.hbonePackets > 0);
  const waypoint = result.measurements.waypoint as ServiceSignals[];
  assert.deepEqual(waypoint.map((s) => s.service).filter((s) => ['productpage', 'details', 'reviews', 'ratings'].includes(s)).sort(), ['details', 'productpage', 'ratings', 'reviews']);
  const split = result.measurements.split as { v1: number; v2: number; v3: number; v2Share: number };
  assert.equal(split.v3, 0);
  assert.ok(split.v1 + split.v2 >= 200, `only ${split.v1 + split.v2} requests in the split step`);
  assert.ok(split.v2Share >= 0.04 && split.v2Share <= 0.16, `v2 share ${split.v2Share}`);
  assert.equal((result.measurements.promote as Record<string, number>).v3, 120);
  const fault = result.measurements.fault as { ratingsErrorRate: number; ratingsRequests: number };
  assert.ok(Math.abs(fault.ratingsErrorRate - 0.5) <= 0.15 && fault.ratingsRequests >= 100, JSON.stringify(fault));
  const deny = result.measurements.deny as { health: Record<string, number>; productpage: Record<string, number> };
  assert.deepEqual(Object.keys(deny.health), ['403']);
  assert.deepEqual(Object.keys(deny.productpage), ['200']);

  assert.match(output, /ambitctl waypoint apply -n bookinfo --enroll-namespace --wait/);
  assert.match(output, /\[\d+\] Clean up/);
  const left = listNetns().filter((n) => n === result.prefix || n.startsWith(`${result.prefix}-`));
  assert.deepEqual(left, [], 'the demo left network namespaces');
});
