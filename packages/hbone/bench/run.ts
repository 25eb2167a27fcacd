// HBONE benchmark with its baselines in the same run (STYLE.md): direct TCP, a plain node:tls forwarder pair and
// an HBONE client+server pair, all on 127.0.0.1, each forwarder its own process so CPU is attributable per side.
// A plain-TCP Node forwarder pair runs as a reference row: it shows what two Node hops cost before any crypto.
//
//   load generator --> app                                                (direct)
//   load generator --> tcp-client --TCP--> tcp-server --> app               (tcp: reference, no TLS)
//   load generator --> tls-client --TLS 1.3 mTLS--> tls-server --> app      (tls: one TLS conn per TCP conn)
//   load generator --> hbone-client --HBONE (h2 CONNECT, mTLS)--> hbone-server --> app   (hbone: pooled)
//
// Tests per path: bulk (1 GiB over one connection), closed-loop 1 KB request/response rate over 1 and 50
// connections, open-loop 1 KB request/response at a fixed 1000 req/s over 1 and 50 connections with p50/p99 and
// the CPU each forwarder spent in the measured window. Every test is repeated (default 3 times) with the path order
// rotated each repetition; medians, spread and ratios to direct TCP are printed and written as JSON.
//
// usage: node dist/bench/run.js [--quick] [--reps N] [--out FILE] [--profile] [--tests bulk,max,fixed]
//   --profile  forwarders run with --cpu-prof; profiles land in bench/results/profiles/
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority, type CertifiedKey } from '@ambit/pki';
import type { Credentials } from '../src/index.js';
import { BenchChild, cpuDelta, type CpuDelta, type CpuSample } from './ipc.js';
import type { BulkParams, BulkResult, RrParams, RrResult } from './loadgen.js';
import type { ProxyRole, ProxyStart } from './proxy.js';
import { median, spread, type Spread } from '@ambit/bench-kit';

const SERVER_ID = 'spiffe://cluster.local/ns/bench/sa/server';
const CLIENT_ID = 'spiffe://cluster.local/ns/bench/sa/client';
const TRUST_DOMAIN = 'cluster.local';
const PATHS = ['direct', 'tcp', 'tls', 'hbone'] as const;
type PathName = (typeof PATHS)[number];
const SIDES = ['client', 'server', 'app', 'loadgen'] as const;
type Side = (typeof SIDES)[number];
const FIXED_RATE = 1000;
const CONN_COUNTS = [1, 50] as const;
const TARGETS = { hboneBulkVsTls: 0.6, coresPerSideAt1000: 0.05, p99AddedMs: 0.3 };

// ---------------------------------------------------------------------------------------------------------------
// options

const argv = process.argv.slice(2);
function flagValue(name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}
const quick = argv.includes('--quick');
const profile = argv.includes('--profile');
const reps = Number(flagValue('--reps') ?? (quick ? 1 : 3));
const onlyTests = new Set((flagValue('--tests') ?? 'bulk,max,fixed').split(','));
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const outFile = flagValue('--out') ?? `${resultsDir}${quick ? 'quick' : 'latest'}.json`;
if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps wants a positive integer');
const config = quick
  ? { reps, bulkBytes: 128 << 20, chunkBytes: 256 << 10, maxWarmupMs: 300, maxDurationMs: 1000, fixedWarmupMs: 300, fixedDurationMs: 1000, requestBytes: 1024 }
  : { reps, bulkBytes: 1 << 30, chunkBytes: 256 << 10, maxWarmupMs: 500, maxDurationMs: 2500, fixedWarmupMs: 1000, fixedDurationMs: 4000, requestBytes: 1024 };

// ---------------------------------------------------------------------------------------------------------------
// processes

const children: BenchChild[] = [];
function spawn(name: string, script: string, args: string[] = [], execArgv: string[] = []): BenchChild {
  const c = BenchChild.spawn(name, new URL(script, import.meta.url), args, execArgv);
  children.push(c);
  return c;
}
function killAll(): void { for (const c of children) c.kill(); }
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { killAll(); process.exit(130); });

interface PathSetup { name: PathName; port: number; client?: BenchChild; server?: BenchChild }

function credentialsOf(c: CertifiedKey): Credentials {
  return { identity: c.identity, keyPem: c.keyPem, certChainPem: c.certChainPem, rootsPem: c.rootsPem };
}

async function startProxy(role: ProxyRole, p: ProxyStart): Promise<{ child: BenchChild; port: number }> {
  const child = spawn(role, './proxy.js', [role], profile ? ['--cpu-prof', `--cpu-prof-dir=${resultsDir}profiles`, `--cpu-prof-name=${role}.cpuprofile`] : []);
  const { port } = await child.call<{ port: number }>('start', p);
  return { child, port };
}

// ---------------------------------------------------------------------------------------------------------------
// measurements

type CpuBySide = Record<Side, CpuDelta | null>;

interface BulkRun { test: 'bulk'; path: PathName; rep: number; gbitPerS: number; seconds: number; bytes: number; cpu: CpuBySide }
interface RrRun { test: 'max' | 'fixed'; path: PathName; rep: number; conns: number; result: RrResult; cpu: CpuBySide }
type Run = BulkRun | RrRun;

type Snapshot = Array<CpuSample | null>;
function sampleSides(path: PathSetup, app: BenchChild): Promise<Snapshot> {
  return Promise.all([path.client?.cpu() ?? null, path.server?.cpu() ?? null, app.cpu()]);
}
function bySide(a: Snapshot, b: Snapshot, loadgen: CpuDelta): CpuBySide {
  const d = (i: number) => (a[i] && b[i] ? cpuDelta(a[i]!, b[i]!) : null);
  return { client: d(0), server: d(1), app: d(2), loadgen };
}

async function runBulk(path: PathSetup, app: BenchChild, loadgen: BenchChild, rep: number, bytes = config.bulkBytes): Promise<BulkRun> {
  const before = await sampleSides(path, app);
  const r = await loadgen.call<BulkResult>('bulk', { port: path.port, bytes, chunkBytes: config.chunkBytes, timeoutMs: 120_000 } satisfies BulkParams, 130_000);
  const after = await sampleSides(path, app);
  return { test: 'bulk', path: path.name, rep, gbitPerS: r.gbitPerS, seconds: r.seconds, bytes: r.bytes, cpu: bySide(before, after, r.loadgenCpu) };
}

async function runRr(path: PathSetup, app: BenchChild, loadgen: BenchChild, rep: number, test: 'max' | 'fixed', conns: number): Promise<RrRun> {
  let start: Promise<Snapshot> | undefined;
  let end: Promise<Snapshot> | undefined;
  const onWindow = (what: unknown) => {
    if (what === 'start') start = sampleSides(path, app);
    else end = sampleSides(path, app);
  };
  loadgen.events.on('window', onWindow);
  try {
    const params: RrParams = {
      port: path.port, conns, size: config.requestBytes,
      ...(test === 'fixed'
        ? { rate: FIXED_RATE, warmupMs: config.fixedWarmupMs, durationMs: config.fixedDurationMs }
        : { warmupMs: config.maxWarmupMs, durationMs: config.maxDurationMs }),
    };
    const result = await loadgen.call<RrResult>('rr', params, params.warmupMs + params.durationMs + 20_000);
    if (!start || !end) throw new Error('load generator did not report its measuring window');
    return { test, path: path.name, rep, conns, result, cpu: bySide(await start, await end, result.loadgenCpu) };
  } finally {
    loadgen.events.off('window', onWindow);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// summary

/** One process's spending, normalized per unit of work (per 1000 requests, or per GiB); medians over the runs. */
interface SideCost {
  cpuS: Spread;
  userS: number;
  systemS: number;
  /** Event loop busy running callbacks; the rest of cpuS was spent off the main loop (GC threads, epoll, ...). */
  loopActiveS: number;
  gcMs: number;
  gcCount: number;
}

interface RrSummary {
  rps: Spread;
  p50Us: Spread;
  p99Us: Spread;
  p999Us: Spread;
  /** open loop only: how late the generator sent against its schedule (p99). */
  lagP99Us: Spread | null;
  errors: number;
  /** Per 1000 completed requests; at 1000 req/s, CPU-s per 1000 requests is also the cores used. */
  costPer1k: Record<Side, SideCost | null>;
}
interface PathSummary {
  bulkGbitPerS: Spread;
  bulkCostPerGiB: Record<Side, SideCost | null>;
  max: Record<string, RrSummary>;
  fixed: Record<string, RrSummary>;
}

function sideCost(deltas: Array<CpuDelta | null>, units: number[]): SideCost | null {
  if (deltas.some((d) => d === null)) return null;
  const ds = deltas as CpuDelta[];
  const per = (f: (d: CpuDelta) => number) => ds.map((d, i) => f(d) / units[i]!);
  return {
    cpuS: spread(per((d) => d.cpuS)), userS: median(per((d) => d.userS)), systemS: median(per((d) => d.systemS)),
    loopActiveS: median(per((d) => d.loopActiveS)), gcMs: median(per((d) => d.gcMs)), gcCount: median(per((d) => d.gcCount)),
  };
}

function summarize(runs: Run[]): Record<PathName, PathSummary> {
  const out = {} as Record<PathName, PathSummary>;
  for (const path of PATHS) {
    const bulk = runs.filter((r): r is BulkRun => r.test === 'bulk' && r.path === path);
    const rr = (test: 'max' | 'fixed', conns: number): RrSummary => {
      const rs = runs.filter((r): r is RrRun => r.test === test && r.path === path && r.conns === conns);
      const kreq = rs.map((r) => r.result.completed / 1000);
      return {
        rps: spread(rs.map((r) => r.result.rps)),
        p50Us: spread(rs.map((r) => r.result.latency.p50Us)),
        p99Us: spread(rs.map((r) => r.result.latency.p99Us)),
        p999Us: spread(rs.map((r) => r.result.latency.p999Us)),
        lagP99Us: test === 'fixed' ? spread(rs.map((r) => r.result.lag?.p99Us ?? NaN)) : null,
        errors: rs.reduce((n, r) => n + r.result.errors, 0),
        costPer1k: Object.fromEntries(SIDES.map((s) => [s, sideCost(rs.map((r) => r.cpu[s]), kreq)])) as Record<Side, SideCost | null>,
      };
    };
    const gib = bulk.map((r) => r.bytes / 2 ** 30);
    out[path] = {
      bulkGbitPerS: spread(bulk.map((r) => r.gbitPerS)),
      bulkCostPerGiB: Object.fromEntries(SIDES.map((s) => [s, sideCost(bulk.map((r) => r.cpu[s]), gib)])) as Record<Side, SideCost | null>,
      max: Object.fromEntries(CONN_COUNTS.map((c) => [`c${c}`, rr('max', c)])),
      fixed: Object.fromEntries(CONN_COUNTS.map((c) => [`c${c}`, rr('fixed', c)])),
    };
  }
  return out;
}

interface TargetCheck { name: string; target: string; measured: string; met: boolean; tlsForComparison: string }

function checkTargets(s: Record<PathName, PathSummary>): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const bulkRatio = s.hbone.bulkGbitPerS.median / s.tls.bulkGbitPerS.median;
  checks.push({ name: 'HBONE bulk vs plain TLS', target: `>= ${TARGETS.hboneBulkVsTls * 100}%`, measured: `${(bulkRatio * 100).toFixed(0)}%`, met: bulkRatio >= TARGETS.hboneBulkVsTls, tlsForComparison: '-' });
  for (const c of CONN_COUNTS) {
    for (const side of ['client', 'server'] as const) {
      const v = s.hbone.fixed[`c${c}`]!.costPer1k[side]?.cpuS.median ?? NaN;
      const t = s.tls.fixed[`c${c}`]!.costPer1k[side]?.cpuS.median ?? NaN;
      checks.push({ name: `HBONE ${side} CPU at 1000 req/s, ${c} conn`, target: `<= ${TARGETS.coresPerSideAt1000} core`, measured: `${v.toFixed(3)} core`, met: v <= TARGETS.coresPerSideAt1000, tlsForComparison: `${t.toFixed(3)} core` });
    }
    const added = (p: PathName) => (s[p].fixed[`c${c}`]!.p99Us.median - s.direct.fixed[`c${c}`]!.p99Us.median) / 1000;
    checks.push({ name: `HBONE p99 added at 1000 req/s, ${c} conn`, target: `<= ${TARGETS.p99AddedMs} ms`, measured: `${added('hbone').toFixed(2)} ms`, met: added('hbone') <= TARGETS.p99AddedMs, tlsForComparison: `${added('tls').toFixed(2)} ms` });
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------------------------
// printing

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const f3 = (n: number) => (Number.isFinite(n) ? n.toFixed(3) : '-');
const k = (n: number) => (Number.isFinite(n) ? `${(n / 1000).toFixed(1)}k` : '-');
const ms = (us: number) => (Number.isFinite(us) ? `${(us / 1000).toFixed(2)}` : '-');
const range = (s: Spread, fmt: (n: number) => string) => `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-');
const label = (p: PathName) => (p === 'tcp' ? 'tcp (ref)' : p);

function table(title: string, header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [`\n${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function render(s: Record<PathName, PathSummary>, checks: TargetCheck[]): string {
  const d = s.direct;
  const out: string[] = [];
  out.push(table('Bulk, one connection, load generator -> app: Gbit/s median (min-max); CPU-s per GiB per forwarder',
    ['path', 'Gbit/s', 'vs direct', 'vs TLS', 'client CPU-s/GiB', 'server CPU-s/GiB'],
    PATHS.map((p) => [label(p), range(s[p].bulkGbitPerS, f2), ratio(s[p].bulkGbitPerS.median, d.bulkGbitPerS.median),
      ratio(s[p].bulkGbitPerS.median, s.tls.bulkGbitPerS.median), f2(s[p].bulkCostPerGiB.client?.cpuS.median ?? NaN), f2(s[p].bulkCostPerGiB.server?.cpuS.median ?? NaN)])));
  out.push(table('1 KB request/response, closed loop: req/s median (min-max); p50/p99 ms',
    ['path', 'c=1 req/s', 'vs direct', 'p50/p99', 'c=50 req/s', 'vs direct', 'p50/p99'],
    PATHS.map((p) => {
      const a = s[p].max.c1!;
      const b = s[p].max.c50!;
      return [label(p), range(a.rps, k), ratio(a.rps.median, d.max.c1!.rps.median), `${ms(a.p50Us.median)}/${ms(a.p99Us.median)}`,
        range(b.rps, k), ratio(b.rps.median, d.max.c50!.rps.median), `${ms(b.p50Us.median)}/${ms(b.p99Us.median)}`];
    })));
  for (const c of CONN_COUNTS) {
    out.push(table(`Fixed ${FIXED_RATE} req/s open loop, ${c} connection${c > 1 ? 's' : ''}: latency ms; CPU = CPU-s per 1000 req = cores at 1000 req/s`,
      ['path', 'req/s', 'p50', 'p99', 'p99 (min-max)', 'p99 added', 'p99.9', 'client CPU', 'server CPU', 'app CPU', 'gen lag p99', 'errors'],
      PATHS.map((p) => {
        const r = s[p].fixed[`c${c}`]!;
        return [label(p), f1(r.rps.median), ms(r.p50Us.median), ms(r.p99Us.median), `${ms(r.p99Us.min)}-${ms(r.p99Us.max)}`,
          p === 'direct' ? '-' : ms(r.p99Us.median - d.fixed[`c${c}`]!.p99Us.median), ms(r.p999Us.median),
          f3(r.costPer1k.client?.cpuS.median ?? NaN), f3(r.costPer1k.server?.cpuS.median ?? NaN), f3(r.costPer1k.app?.cpuS.median ?? NaN),
          ms(r.lagP99Us?.median ?? NaN), String(r.errors)];
      })));
  }
  const rows: string[][] = [];
  for (const c of CONN_COUNTS) {
    for (const p of PATHS) {
      for (const side of ['client', 'server', 'app'] as const) {
        const x = s[p].fixed[`c${c}`]!.costPer1k[side];
        if (!x) continue;
        const us = (v: number) => (v * 1000).toFixed(0); // CPU-s per 1000 req -> µs per request
        rows.push([`c=${c} ${label(p)} ${side}`, us(x.cpuS.median), us(x.userS), us(x.systemS), us(x.loopActiveS), (x.gcMs).toFixed(2), f1(x.gcCount)]);
      }
    }
  }
  out.push(table(`Where the CPU goes at ${FIXED_RATE} req/s: µs per request (median); loop = wall time the event loop was busy (above CPU when preempted); GC per 1000 req`,
    ['process', 'CPU µs', 'user µs', 'sys µs', 'loop wall µs', 'GC ms', 'GCs'], rows));
  out.push(table('Targets (TLS = the plain node:tls pair on the same test, for comparison)', ['target', 'wanted', 'HBONE', 'met', 'TLS'],
    checks.map((c) => [c.name, c.target, c.measured, c.met ? 'yes' : 'NO', c.tlsForComparison])));
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// machine

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  let commit = 'unknown';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* not a checkout */ }
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    node: process.version,
    v8: process.versions.v8,
    openssl: process.versions.openssl,
    kernel: `${os.type()} ${os.release()}`,
    arch: process.arch,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
    commit,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineInfo();
  console.log(`hbone bench${quick ? ' (--quick)' : ''}: ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, ${machine.kernel}, load ${(machine.loadavgAtStart as number[]).join(' ')}`);

  const ca = await CertificateAuthority.create({ trustDomain: TRUST_DOMAIN });
  const serverCreds = credentialsOf(await ca.issueWorkloadCertificate(SERVER_ID));
  const clientCreds = credentialsOf(await ca.issueWorkloadCertificate(CLIENT_ID));

  const app = spawn('app', './app.js');
  const loadgen = spawn('loadgen', './loadgen.js');
  const { port: appPort } = await app.call<{ port: number }>('start');
  const base = { serverIdentity: SERVER_ID, trustDomain: TRUST_DOMAIN, appPort };
  const tcpServer = await startProxy('tcp-server', { ...base, credentials: serverCreds });
  const tcpClient = await startProxy('tcp-client', { ...base, credentials: clientCreds, upstreamPort: tcpServer.port });
  const tlsServer = await startProxy('tls-server', { ...base, credentials: serverCreds });
  const tlsClient = await startProxy('tls-client', { ...base, credentials: clientCreds, upstreamPort: tlsServer.port });
  const hboneServer = await startProxy('hbone-server', { ...base, credentials: serverCreds });
  const hboneClient = await startProxy('hbone-client', { ...base, credentials: clientCreds, upstreamPort: hboneServer.port });
  const proxies = [tcpClient, tcpServer, tlsClient, tlsServer, hboneClient, hboneServer];
  const paths: Record<PathName, PathSetup> = {
    direct: { name: 'direct', port: appPort },
    tcp: { name: 'tcp', port: tcpClient.port, client: tcpClient.child, server: tcpServer.child },
    tls: { name: 'tls', port: tlsClient.port, client: tlsClient.child, server: tlsServer.child },
    hbone: { name: 'hbone', port: hboneClient.port, client: hboneClient.child, server: hboneServer.child },
  };

  // Warm-up, not recorded: JIT, TLS handshakes, the pooled HBONE connection.
  for (const p of PATHS) {
    await runBulk(paths[p], app, loadgen, -1, 64 << 20);
    await loadgen.call<RrResult>('rr', { port: paths[p].port, conns: 50, size: config.requestBytes, warmupMs: 200, durationMs: 500 } satisfies RrParams);
  }

  const runs: Run[] = [];
  const tests: Array<{ test: 'bulk' | 'max' | 'fixed'; conns: number }> = [
    { test: 'bulk' as const, conns: 1 },
    ...CONN_COUNTS.map((conns) => ({ test: 'max' as const, conns })),
    ...CONN_COUNTS.map((conns) => ({ test: 'fixed' as const, conns })),
  ].filter((t) => onlyTests.has(t.test));
  for (let rep = 0; rep < reps; rep++) {
    const order = PATHS.map((_, i) => PATHS[(i + rep) % PATHS.length]!);
    for (const t of tests) {
      for (const p of order) {
        const r = t.test === 'bulk' ? await runBulk(paths[p], app, loadgen, rep) : await runRr(paths[p], app, loadgen, rep, t.test, t.conns);
        runs.push(r);
        console.log(`  rep ${rep + 1}/${reps} ${describe(r)}`);
      }
    }
  }

  const counters = await Promise.all(proxies.map(async (x) => [x.child.name, await x.child.call('counters')] as const));
  const summary = summarize(runs);
  const checks = checkTargets(summary);
  console.log(render(summary, checks));
  const result = {
    schema: 1,
    startedAt: new Date(started).toISOString(),
    durationS: +((Date.now() - started) / 1000).toFixed(1),
    quick,
    machine: { ...machine, loadavgAtEnd: os.loadavg().map((x) => +x.toFixed(2)) },
    config: { ...config, fixedRate: FIXED_RATE, connCounts: CONN_COUNTS, targets: TARGETS },
    proxyCounters: Object.fromEntries(counters),
    summary,
    ratios: {
      bulkVsDirect: Object.fromEntries(PATHS.map((p) => [p, summary[p].bulkGbitPerS.median / summary.direct.bulkGbitPerS.median])),
      hboneBulkVsTls: summary.hbone.bulkGbitPerS.median / summary.tls.bulkGbitPerS.median,
      maxRpsVsDirect: Object.fromEntries(PATHS.map((p) => [p, Object.fromEntries(CONN_COUNTS.map((c) => [`c${c}`, summary[p].max[`c${c}`]!.rps.median / summary.direct.max[`c${c}`]!.rps.median]))])),
      fixedP99AddedUs: Object.fromEntries(PATHS.map((p) => [p, Object.fromEntries(CONN_COUNTS.map((c) => [`c${c}`, summary[p].fixed[`c${c}`]!.p99Us.median - summary.direct.fixed[`c${c}`]!.p99Us.median]))])),
    },
    targets: checks,
    runs,
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${outFile} (${result.durationS} s)`);
  // Orderly exit so --cpu-prof output gets written; anything still alive afterwards is killed.
  await Promise.all(children.map((c) => c.stop()));
}

function describe(r: Run): string {
  const cpu = (c: CpuBySide) => (c.client === null ? `app ${f2(c.app?.cpuS ?? NaN)}s` : `cpu client ${f2(c.client.cpuS)}s server ${f2(c.server?.cpuS ?? NaN)}s app ${f2(c.app?.cpuS ?? NaN)}s`);
  if (r.test === 'bulk') return `bulk        ${r.path.padEnd(6)} ${f2(r.gbitPerS)} Gbit/s  ${cpu(r.cpu)}`;
  const x = r.result;
  return `${r.test.padEnd(5)} c=${String(r.conns).padEnd(3)} ${r.path.padEnd(6)} ${f1(x.rps)} req/s  p50 ${ms(x.latency.p50Us)} p99 ${ms(x.latency.p99Us)} ms  ${cpu(r.cpu)}${x.errors ? `  errors ${x.errors}` : ''}`;
}

main().then(
  () => { killAll(); process.exit(0); },
  (err: Error) => { console.error(err.stack ?? err); killAll(); process.exit(1); },
);
