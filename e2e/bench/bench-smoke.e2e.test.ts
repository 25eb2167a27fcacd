// The waypoint benchmark in a tiny configuration (one run of each test, 1 s windows, 200 req/s): not its speed, but
// that the JSON result carries every metric and that each scenario's requests took the intended path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireRoot, requireTools } from '../src/root.js';
import { listNetns } from '../src/netns.js';
import { FULL_OPTIONS, SCENARIOS, runWaypointBench, writeResult, type BenchResult, type MaxRun, type RateRun, type WaypointBenchOptions } from './bench.js';

const TINY: WaypointBenchOptions = {
  ...FULL_OPTIONS, reps: 1, rateReps: 1, maxConns: 4, maxWarmupS: 1, maxDurationS: 1, maxRequests: 20_000,
  rate: 200, rateConns: 4, rateWarmupMs: 300, rateDurationMs: 1000, disturbedLagP99Us: Number.MAX_SAFE_INTEGER, maxRetries: 0,
};

const finite = (x: unknown, what: string): void => assert.ok(typeof x === 'number' && Number.isFinite(x), `${what} = ${String(x)}`);

test('waypoint bench, tiny run: every metric in the JSON, each scenario served through its intended path', { timeout: 240_000 }, async () => {
  requireRoot();
  requireTools(['ip', 'iptables', 'nsenter', 'wrk', '/usr/sbin/nginx']);
  const dir = mkdtempSync(join(tmpdir(), 'ambit-waypoint-bench-'));
  try {
    const out = join(dir, 'result.json');
    const run = await runWaypointBench(TINY, (line) => process.stdout.write(`# ${line}\n`));
    writeResult(out, run);
    const result = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;

    for (const s of SCENARIOS) {
      const sum = result.summary[s]!;
      assert.ok(sum.max && sum.rate, `${s}: both tests summarized`);
      for (const [k, v] of Object.entries({ rps: sum.max.rps.median, p50Us: sum.max.p50Us.median, p99Us: sum.max.p99Us.median })) finite(v, `${s} max ${k}`);
      for (const [k, v] of Object.entries({ rps: sum.rate.rps.median, p50Us: sum.rate.p50Us.median, p99Us: sum.rate.p99Us.median, p999Us: sum.rate.p999Us.median, backend: sum.rate.backendCoresPer1k.median })) finite(v, `${s} rate ${k}`);
      if (s !== 'direct') {
        finite(sum.max.rpsPerCore.median, `${s} max req/s per core`);
        finite(sum.rate.coresPer1k.median, `${s} cores per 1000 req/s`);
        for (const g of sum.proxies) {
          finite(sum.max.rpsPerCoreBy[g]?.median, `${s} ${g} req/s per core`);
          finite(sum.rate.coresPer1kBy[g]?.median, `${s} ${g} cores per 1000 req/s`);
        }
      }
    }
    for (const [k, v] of Object.entries(result.ratios)) finite(v, `ratio ${k}`);
    assert.deepEqual(result.checks.map((c) => c.name.split(' ')[0]), ['waypoint', 'p99', 'waypoint'], 'the three targets are checked');
    for (const c of result.checks) finite(c.measured, c.name);
    finite(result.machine.nproc, 'machine.nproc');

    assert.deepEqual(result.problems, [], 'every run took its intended path and got all its answers');
    const runs = (s: string) => result.runs.filter((r) => r.scenario === s);
    for (const s of SCENARIOS) {
      const max = runs(s).find((r): r is MaxRun => r.test === 'max')!;
      const rate = runs(s).find((r): r is RateRun => r.test === 'rate')!;
      assert.ok(max && rate, `${s}: one max and one rate run`);
      assert.ok(max.requests > 0, `${s}: wrk got answers`);
      assert.deepEqual(max.errors, { connect: 0, read: 0, write: 0, status: 0, timeout: 0 }, `${s}: wrk errors`);
      assert.equal(rate.completed, rate.sent, `${s}: every fixed-rate request answered`);
      assert.deepEqual(Object.keys(rate.statuses), ['200'], `${s}: every answer 200`);
      for (const r of [max, rate]) {
        const answered = r.test === 'max' ? r.requests : r.completed;
        const conns = r.test === 'max' ? TINY.maxConns : TINY.rateConns;
        const e = r.evidence;
        const what = `${s} ${r.test}: ${JSON.stringify(e)}`;
        if (s === 'direct') assert.deepEqual([e.agentConnectionsAll, e.waypointRequestsAll, e.nginxLogLines], [0, 0, 0], what);
        if (s === 'l4') {
          assert.ok(e.mtlsConnections >= conns, `the destination agent accepted the client's connections over mTLS: ${what}`);
          assert.equal(e.waypointRequestsAll + e.nginxLogLines, 0, what);
        }
        if (s === 'waypoint') {
          assert.ok(e.waypointRequests >= answered, `the waypoint's istio_requests_total for backend-wp grew by every answered request: ${what}`);
          assert.equal(e.nginxLogLines, 0, what);
        }
        if (s === 'nginx') {
          assert.ok(e.nginxLogLines >= answered, `nginx logged every answered request: ${what}`);
          assert.equal(e.agentConnectionsAll + e.waypointRequestsAll, 0, what);
        }
        // Where the proxies' CPU went: the path's proxies worked, the others did not see the load.
        if (s === 'nginx') assert.ok(r.cpu.nginx!.cpuS > 0, `nginx used CPU: ${what}`);
        if (s === 'waypoint') assert.ok(r.cpu.waypoint!.cpuS > 0, `the waypoint used CPU: ${what}`);
      }
    }
    const left = listNetns().filter((n) => n === result.prefix || n.startsWith(`${result.prefix}-`));
    assert.deepEqual(left, [], 'the benchmark left network namespaces');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
