// LEAST_REQUEST with live active-request counts. The harness's random source alternates low/high, so Envoy's power
// of two choices always compares the two endpoints (in either order) and the choice depends on load alone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dr, startHarness, VIPS, waitFor, type Harness } from './harness.js';

let h: Harness;
let flip = 0;
before(async () => { h = await startHarness({ random: () => ((flip++ % 2) === 0 ? 0.1 : 0.6) }); });
after(async () => { await h?.close(); });

const ECHO = `${VIPS.echo}:80`;

test('LEAST_REQUEST: while one endpoint holds a slow request, new requests go to the other; two overlapping requests take different endpoints', async () => {
  assert.deepEqual(h.applyConfig([dr('echo', { host: 'echo', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } })]), []);
  const total = (): number => h.endpoints.reduce((n, e) => n + e.seen.length, 0);
  const before = total();
  const slow = h.request(ECHO, { path: '/slow?delay=700' });
  await waitFor(() => total() > before, 5000, 'the slow request to reach an endpoint');
  const busy = h.endpoints.find((e) => e.seen.at(-1)?.path === '/slow?delay=700')!.name;
  const picks: string[] = [];
  for (let i = 0; i < 6; i++) picks.push((await h.request(ECHO, { path: `/lr-${i}` })).json().pod);
  assert.ok(!picks.includes(busy), `no request went to the busy endpoint ${busy} (got ${picks.join(',')})`);
  assert.equal((await slow).status, 200);
  // Two slow requests started together: the second sees the first one active and takes the other endpoint.
  const first = h.request(ECHO, { path: '/pair?delay=300&n=1' });
  await waitFor(() => h.endpoints.some((e) => e.seen.at(-1)?.path === '/pair?delay=300&n=1'), 5000, 'the first slow request to arrive');
  const second = h.request(ECHO, { path: '/pair?delay=300&n=2' });
  const pods = [(await first).json().pod, (await second).json().pod];
  assert.notEqual(pods[0], pods[1]);
});
