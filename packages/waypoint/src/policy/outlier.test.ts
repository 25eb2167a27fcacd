import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileOutlierDetection, createOutlierDetector } from './outlier.js';

const where = { object: 'DestinationRule default/reviews', field: 'spec.trafficPolicy.outlierDetection' };
const fail5xx = (d: ReturnType<typeof createOutlierDetector>, ep: string, n: number, now: number, status = 503) => {
  let last = false;
  for (let i = 0; i < n; i++) last = d.record(ep, { status }, now).ejected;
  return last;
};

test('Istio docs example: consecutive5xxErrors 7, interval 5m, baseEjectionTime 15m', () => {
  const s = compileOutlierDetection({ consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m', maxEjectionPercent: 100 }, where)!;
  assert.deepEqual(s, { consecutive5xxErrors: 7, consecutiveGatewayErrors: 0, intervalMs: 300_000, baseEjectionTimeMs: 900_000, maxEjectionTimeMs: 300_000, maxEjectionPercent: 100, minHealthPercent: 0 });
  const d = createOutlierDetector(s);
  d.setEndpoints(['a', 'b']);
  assert.equal(fail5xx(d, 'a', 6, 0), false);
  assert.equal(d.record('a', { status: 500 }, 0).ejected, true, 'the seventh consecutive 5xx ejects');
  assert.equal(d.isEjected('a', 1), true);
  assert.equal(d.isEjected('a', 900_000), false, 'ejected for one base ejection time (15 m exceeds the 300 s max_ejection_time, which then follows the base)');
});

test('a success resets the consecutive count; local-origin failures count as 5xx', () => {
  const d = createOutlierDetector(compileOutlierDetection({ consecutive5xxErrors: 3, maxEjectionPercent: 100 }, where)!);
  fail5xx(d, 'a', 2, 0);
  d.record('a', { status: 200 }, 0);
  assert.equal(fail5xx(d, 'a', 2, 0), false);
  assert.equal(d.record('a', { localOriginFailure: true }, 0).ejected, true);
});

test('ejection time grows with the number of ejections and decays while healthy', () => {
  const d = createOutlierDetector(compileOutlierDetection({ consecutive5xxErrors: 1, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 }, where)!);
  d.setEndpoints(['a', 'b']);
  assert.equal(d.record('a', { status: 500 }, 0).ejected, true);
  assert.equal(d.isEjected('a', 29_999), true);
  assert.equal(d.isEjected('a', 30_000), false);
  assert.equal(d.record('a', { status: 500 }, 30_000).ejected, true, 'second ejection right away: 2 x 30 s');
  assert.equal(d.isEjected('a', 89_999), true);
  assert.equal(d.isEjected('a', 90_000), false);
  // Healthy for two intervals: multiplier 2 -> 0, so the next ejection is 1 x 30 s again.
  assert.equal(d.record('a', { status: 500 }, 110_000).ejected, true);
  assert.equal(d.isEjected('a', 139_999), true);
  assert.equal(d.isEjected('a', 140_000), false);
});

test('maxEjectionPercent: with the default 10% and 3 endpoints nothing is ejected; 50% of 4 allows two', () => {
  const def = createOutlierDetector(compileOutlierDetection({ consecutive5xxErrors: 1 }, where)!);
  def.setEndpoints(['a', 'b', 'c']);
  assert.equal(def.record('a', { status: 500 }, 0).ejected, false);
  const d = createOutlierDetector(compileOutlierDetection({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }, where)!);
  d.setEndpoints(['a', 'b', 'c', 'd']);
  assert.equal(d.record('a', { status: 500 }, 0).ejected, true);
  assert.equal(d.record('b', { status: 500 }, 0).ejected, true);
  assert.equal(d.record('c', { status: 500 }, 0).ejected, false);
  assert.deepEqual(d.available(['a', 'b', 'c', 'd'], 1), ['c', 'd']);
});

test('consecutiveGatewayErrors counts 502/503/504 only; the deprecated consecutiveErrors maps to it', () => {
  const d = createOutlierDetector(compileOutlierDetection({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, maxEjectionPercent: 100 }, where)!);
  assert.equal(fail5xx(d, 'a', 5, 0, 500), false);
  d.record('a', { status: 502 }, 0);
  assert.equal(d.record('a', { status: 504 }, 0).ejected, true);
  const legacy = compileOutlierDetection({ consecutiveErrors: 3 }, where)!;
  assert.equal(legacy.consecutiveGatewayErrors, 3);
  assert.equal(legacy.consecutive5xxErrors, 0);
});

test('minHealthPercent: below it, ejections are ignored (panic); at 0 all-ejected leaves nothing', () => {
  const d = createOutlierDetector(compileOutlierDetection({ consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 50 }, where)!);
  const eps = [{ address: 'a' }, { address: 'b' }, { address: 'c' }];
  d.setEndpoints(['a', 'b', 'c']);
  d.record('a', { status: 500 }, 0);
  assert.deepEqual(d.available(eps, 1).map((e) => e.address), ['b', 'c']);
  d.record('b', { status: 500 }, 0);
  assert.deepEqual(d.available(eps, 1).map((e) => e.address), ['a', 'b', 'c'], '1 of 3 healthy < 50%: panic');
  const z = createOutlierDetector(compileOutlierDetection({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, where)!);
  z.setEndpoints(['a']);
  z.record('a', { status: 500 }, 0);
  assert.deepEqual(z.available(['a'], 1), []);
});

test('invalid outlierDetection names the field', () => {
  assert.equal(compileOutlierDetection(undefined, where), undefined);
  assert.throws(() => compileOutlierDetection({ maxEjectionPercent: 101 }, where), /DestinationRule default\/reviews: spec\.trafficPolicy\.outlierDetection\.maxEjectionPercent: must be an integer in 0\.\.100/);
  assert.throws(() => compileOutlierDetection({ interval: '5 minutes' }, where), /outlierDetection\.interval: invalid duration/);
});
