// The waypoint benchmark's command line (root): `npm run bench -w @ambit/e2e`, or
//   node e2e/dist/bench/run.js [--quick] [--reps N] [--rate-reps N] [--scenarios direct,l4,waypoint,nginx]
//                              [--conns N] [--duration-s N] [--rate N] [--rate-duration-ms N] [--nginx-workers N]
//                              [--profile] [--keep] [--out FILE]
// Prints a table per test, the ratios and the targets, and writes the JSON result to e2e/bench/baseline-<date>.json
// (--quick and --profile write quick-<date>.json / profile-<date>.json next to it, so a baseline is only ever a full
// run as shipped). --profile: the waypoint runs under `node --cpu-prof` and a summary of what dominates is printed;
// its CPU numbers include the profiler's cost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FULL_OPTIONS, SCENARIOS, renderReport, runWaypointBench, writeResult, type ScenarioName, type WaypointBenchOptions } from './bench.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false }, profile: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false },
    reps: { type: 'string' }, 'rate-reps': { type: 'string' }, scenarios: { type: 'string' }, conns: { type: 'string' }, 'duration-s': { type: 'string' },
    rate: { type: 'string' }, 'rate-duration-ms': { type: 'string' }, 'nginx-workers': { type: 'string' }, 'log-level': { type: 'string' }, out: { type: 'string' },
  },
});

function positive(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} wants a positive integer, got ${v}`);
  return n;
}

const base: WaypointBenchOptions = values.quick
  ? { ...FULL_OPTIONS, reps: 1, rateReps: 1, maxDurationS: 2, rateWarmupMs: 500, rateDurationMs: 2000 }
  : FULL_OPTIONS;
const scenarios = (values.scenarios?.split(',') ?? [...SCENARIOS]) as ScenarioName[];
const unknown = scenarios.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
if (unknown.length) throw new Error(`--scenarios: unknown ${unknown.join(', ')} (known: ${SCENARIOS.join(', ')})`);
const profileDir = values.profile ? mkdtempSync(join(tmpdir(), 'ambit-waypoint-prof-')) : undefined;
const reps = positive('reps', values.reps, base.reps);
const options: WaypointBenchOptions = {
  ...base, scenarios, reps,
  // The rate test is the noisiest: a full run repeats it at least 5 times.
  rateReps: positive('rate-reps', values['rate-reps'], values.quick ? reps : Math.max(reps, FULL_OPTIONS.rateReps)),
  maxConns: positive('conns', values.conns, base.maxConns),
  maxDurationS: positive('duration-s', values['duration-s'], base.maxDurationS),
  rate: positive('rate', values.rate, base.rate),
  rateDurationMs: positive('rate-duration-ms', values['rate-duration-ms'], base.rateDurationMs),
  nginxWorkers: positive('nginx-workers', values['nginx-workers'], base.nginxWorkers),
  logLevel: values['log-level'] ?? base.logLevel,
  keepWorkDir: values.keep,
  ...(profileDir ? { profileDir } : {}),
};
const day = new Date().toISOString().slice(0, 10);
const kind = values.profile ? 'profile' : values.quick ? 'quick' : 'baseline';
const out = values.out ?? fileURLToPath(new URL(`../../bench/${kind}-${day}.json`, import.meta.url));

try {
  const result = await runWaypointBench(options, (line) => console.log(line));
  console.log(renderReport(result));
  writeResult(out, result);
  console.log(`\n${result.runs.length} runs in ${result.elapsedS.toFixed(0)} s; wrote ${out}`);
  if (result.problems.length) process.exitCode = 1;
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
}
