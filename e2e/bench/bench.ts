// Waypoint benchmark on the embedded mesh (e2e/src/demo/embedded-mesh.ts: two node netns, the controller in embedded
// mode, one real node agent per node, pods captured through the real CNI plugin, a real waypoint pod), with its
// baselines in the same run (STYLE.md): the same backend program on node 2, the same client pod placement on node 1,
//
//   direct    client-plain ---------------------------------------------> backend-plain        (not enrolled)
//   l4        client-l4 -> agent n1 ==HBONE mTLS==> agent n2 -------------> backend-l4           (enrolled)
//   waypoint  client-wp -> agent n1 ==HBONE==> waypoint (n2) ==HBONE==> agent n2 -> backend-wp   (enrolled, use-waypoint)
//   nginx     client-plain -> nginx (n2, reverse proxy, keep-alive upstream) ---> backend-plain (not enrolled)
//
// Every client dials its Service's ClusterIP:8080 (kube-proxy-style DNAT on the nodes). Two tests per scenario, each
// repeated, scenario order rotated per repetition so drift falls on all of them:
//   max   closed loop, wrk (one thread, --max-conns keep-alive connections), bounded by duration and a request cap
//         (wrk's Lua stops the thread): req/s, and requests per CPU-second of the proxies in the path
//   rate  open loop at a fixed rate (1000 req/s), loadgen.ts: p50/p99, and the proxies' CPU-s per 1000 requests
//         (= cores per 1000 req/s)
// CPU is utime+stime from /proc of the agents, the waypoint, nginx (master + workers) and the scenario's backend.
// Each run also records where its requests went (waypoint istio_requests_total, the agents' mTLS connections, nginx's
// access log) and fails if a scenario did not take its intended path.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { DATAPLANE_MODE, LABELS, METRICS, REPORTER, type KubeObject } from '@ambit/api';
import { spread, type LatencySummary, type Spread } from '@ambit/bench-kit';
import { EmbeddedMesh, type MeshPod } from '../src/demo/embedded-mesh.js';
import { connectionSignals, diffMetrics, parseMetrics, type Sample } from '../src/demo/metrics.js';
import { waitFor } from '../src/wait.js';
import { accessLogCounter, NGINX_BIN, writeNginxConfig } from './nginx.js';
import { childPids, readGroupCpu, spentBetween, type CpuSpent } from './proc-cpu.js';
import { summarizeAreas, type CpuProfile, type ProfileAreas } from './profile-areas.js';

export const SCENARIOS = ['direct', 'l4', 'waypoint', 'nginx'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
/** Process groups whose CPU is read in every run. */
export type CpuGroup = 'agentN1' | 'agentN2' | 'waypoint' | 'nginx' | 'backend';

/** The issue's targets. The first is the figure Istio publishes for its Envoy waypoint. */
export const TARGETS = { waypointCoresPer1k: 0.25, p99AddedMs: 1, waypointVsNginxPerCore: 0.5 };

export interface WaypointBenchOptions {
  /** Repetitions of the max test; the rate test runs rateReps times (it is the noisiest). */
  reps: number;
  rateReps: number;
  scenarios: readonly ScenarioName[];
  maxConns: number;
  maxWarmupS: number;
  maxDurationS: number;
  /** Cap on requests of one wrk run (its Lua script stops there). */
  maxRequests: number;
  rate: number;
  rateConns: number;
  rateWarmupMs: number;
  rateDurationMs: number;
  bodyBytes: number;
  nginxWorkers: number;
  /** The mesh's log level; at warn the waypoint writes no per-request access line (Istio's default: no access log). */
  logLevel: string;
  /** A rate run whose generator fell behind by more than this at p99 was disturbed (other load): run again. */
  disturbedLagP99Us: number;
  maxRetries: number;
  /** Write a V8 CPU profile of the waypoint here (node --cpu-prof); its CPU numbers then include the profiler. */
  profileDir?: string;
  keepWorkDir?: boolean;
}

export const FULL_OPTIONS: WaypointBenchOptions = {
  reps: 3, rateReps: 5, scenarios: SCENARIOS, maxConns: 16, maxWarmupS: 1, maxDurationS: 5, maxRequests: 500_000,
  rate: 1000, rateConns: 10, rateWarmupMs: 1000, rateDurationMs: 5000, bodyBytes: 1024, nginxWorkers: 1, logLevel: 'warn',
  disturbedLagP99Us: 10_000, maxRetries: 2,
};

export interface PathEvidence {
  /** Waypoint istio_requests_total (reporter=waypoint) to this scenario's Service, and to any. */
  waypointRequests: number;
  waypointRequestsAll: number;
  /** Connections the destination agents accepted over mTLS for this scenario's Service. */
  mtlsConnections: number;
  /** Connections any agent opened or accepted (istio_tcp_connections_opened_total, every reporter). */
  agentConnectionsAll: number;
  nginxLogLines: number;
}

interface RunBase {
  scenario: ScenarioName; rep: number; cpu: Record<CpuGroup, CpuSpent | null>; evidence: PathEvidence;
  /** Set when the evidence does not show the intended path (or answers were not all 200): the run's numbers are suspect. */
  problem?: string;
}
export interface MaxRun extends RunBase {
  test: 'max'; requests: number; durationS: number; rps: number; p50Us: number; p99Us: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
}
export interface RateRun extends RunBase {
  test: 'rate'; rps: number; windowS: number; sent: number; completed: number; errors: number; statuses: Record<string, number>;
  latency: LatencySummary; lag: LatencySummary; loadgenCpuS: number;
}
export type BenchRun = MaxRun | RateRun;

export interface ScenarioSummary {
  proxies: CpuGroup[];
  max?: {
    rps: Spread; p50Us: Spread; p99Us: Spread; errors: number;
    /** Requests per CPU-second of all the proxies in the path, and of each proxy group. */
    rpsPerCore: Spread; rpsPerCoreBy: Partial<Record<CpuGroup, Spread>>;
  };
  rate?: {
    rps: Spread; p50Us: Spread; p99Us: Spread; p999Us: Spread; lagP99Us: Spread; errors: number;
    /** CPU-s per 1000 requests = cores per 1000 req/s, of the path's proxies together and each. */
    coresPer1k: Spread; coresPer1kBy: Partial<Record<CpuGroup, Spread>>;
    backendCoresPer1k: Spread; loadgenCoresPer1k: Spread;
  };
}

export interface TargetCheck { name: string; target: string; measured: number; met: boolean }

export interface BenchResult {
  bench: string; date: string; options: WaypointBenchOptions; machine: Record<string, unknown>; elapsedS: number;
  /** Prefix of the network namespaces the run created (all removed at its end). */
  prefix: string;
  targets: typeof TARGETS; summary: Partial<Record<ScenarioName, ScenarioSummary>>;
  ratios: Record<string, number>; checks: TargetCheck[];
  /** Runs whose path evidence or answers were wrong (empty in a valid result). */
  problems: string[];
  runs: BenchRun[]; discarded: RateRun[];
  profile?: ProfileAreas;
}

const PROXIES: Record<ScenarioName, CpuGroup[]> = { direct: [], l4: ['agentN1', 'agentN2'], waypoint: ['agentN1', 'waypoint', 'agentN2'], nginx: ['nginx'] };
/** The namespace, Service and client of each scenario (nginx shares direct's namespace, client and backend). */
const WIRING: Record<ScenarioName, { namespace: string; service: string; client: string; backend: string }> = {
  direct: { namespace: 'bench-plain', service: 'backend-plain', client: 'client-plain', backend: 'backend-plain' },
  l4: { namespace: 'bench-l4', service: 'backend-l4', client: 'client-l4', backend: 'backend-l4' },
  waypoint: { namespace: 'bench-wp', service: 'backend-wp', client: 'client-wp', backend: 'backend-wp' },
  nginx: { namespace: 'bench-plain', service: 'nginx', client: 'client-plain', backend: 'backend-plain' },
};
const APP_PORT = 8080;
const WAYPOINT = 'waypoint';
const LOADGEN = fileURLToPath(new URL('./loadgen.js', import.meta.url));
const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));
/** Counts answers per wrk thread and stops it at the cap; prints wrk's own summary as one JSON line. */
const WRK_LUA = `local n = 0
local cap = 0
function init(args) cap = tonumber(args[1]) end
function response(status, headers, body)
  n = n + 1
  if n >= cap then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function clockTicks(): number {
  return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
}

export function machineInfo(): Record<string, unknown> {
  let commit = 'unknown';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* not a checkout */ }
  // nginx -v prints to stderr.
  const nginx = spawnSync(NGINX_BIN, ['-v'], { encoding: 'utf8' }).stderr?.trim() || 'unknown';
  let wrk = 'unknown';
  try { wrk = execFileSync('wrk', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim(); } catch (err) { wrk = String((err as { stdout?: string }).stdout ?? '').split('\n')[0]!.trim() || wrk; }
  return {
    nproc: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, kernel: os.release(), arch: os.arch(),
    totalMemGB: +(os.totalmem() / 2 ** 30).toFixed(1), commit, nginx, wrk, loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the mesh and its pods

function manifests(bodyBytes: number): KubeObject[] {
  const objects: KubeObject[] = [];
  const namespaces: Record<string, Record<string, string>> = {
    'bench-plain': {}, 'bench-l4': { [LABELS.dataplaneMode]: DATAPLANE_MODE.ambient }, 'bench-wp': { [LABELS.dataplaneMode]: DATAPLANE_MODE.ambient },
  };
  for (const [name, labels] of Object.entries(namespaces)) {
    const suffix = name.slice('bench-'.length);
    objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    for (const sa of ['client', 'backend']) objects.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: name } });
    objects.push(deployment(name, `client-${suffix}`, 'client', { image: 'registry.k8s.io/pause' }));
    objects.push(deployment(name, `backend-${suffix}`, 'backend', {
      image: 'ambit/bench-backend', args: ['--port', String(APP_PORT), '--body-bytes', String(bodyBytes)], ports: [{ containerPort: APP_PORT }],
    }));
    objects.push(service(name, `backend-${suffix}`));
  }
  return objects;
}

function deployment(namespace: string, name: string, serviceAccountName: string, container: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace, labels: { app: name } },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { serviceAccountName, containers: [{ name, ...container }] } } },
  };
}

function service(namespace: string, name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector: { app: name }, ports: [{ name: 'http', port: APP_PORT, targetPort: APP_PORT }] } };
}

function writeYaml(dir: string, file: string, objects: KubeObject[]): string {
  const path = join(dir, file);
  writeFileSync(path, objects.map((o) => stringify(o)).join('---\n'));
  return path;
}

interface Bed {
  mesh: EmbeddedMesh;
  clients: Record<ScenarioName, MeshPod>;
  vips: Record<ScenarioName, string>;
  groups: Record<CpuGroup, Partial<Record<ScenarioName, number[]>> | number[]>;
  nginxLog: () => number;
  wrkScript: string;
  tck: number;
}

async function setUp(o: WaypointBenchOptions, log: (line: string) => void): Promise<Bed> {
  const mesh = await EmbeddedMesh.start({
    nodes: 2, placement: (d) => (d.startsWith('client-') ? 1 : 2), logLevel: o.logLevel, keepWorkDir: o.keepWorkDir ?? false,
    images: {
      'ambit/bench-backend': { entrypoint: [process.execPath, BACKEND], requires: [BACKEND] },
      nginx: { entrypoint: [NGINX_BIN], requires: [NGINX_BIN] },
    },
  }, (what) => log(`  ${what}`));
  try {
    const dir = mesh.workDir;
    await mesh.deploy(writeYaml(dir, 'bench-apps.yaml', manifests(o.bodyBytes)), (what) => log(`  ${what}`));
    const pod = (namespace: string, app: string): MeshPod => {
      const p = mesh.podsOf(namespace, { app })[0];
      if (!p) throw new Error(`no pod ${namespace}/${app}`);
      return p;
    };
    const backendPlain = pod('bench-plain', 'backend-plain');
    const nginx = writeNginxConfig({ dir: join(dir, 'nginx'), port: APP_PORT, upstream: `${backendPlain.netns.ip}:${APP_PORT}`, workers: o.nginxWorkers });
    await mesh.deploy(writeYaml(dir, 'bench-nginx.yaml', [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'nginx', namespace: 'bench-plain' } },
      deployment('bench-plain', 'nginx', 'nginx', { image: 'nginx:1.22', args: nginx.args, ports: [{ containerPort: APP_PORT }] }),
      service('bench-plain', 'nginx'),
    ]), (what) => log(`  ${what}`));
    log('  enrolling bench-l4 and bench-wp through the CNI plugin');
    await mesh.enroll('bench-l4');
    await mesh.enroll('bench-wp');
    const gatewayYaml = writeYaml(dir, 'bench-waypoint.yaml', [{
      apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: WAYPOINT, namespace: 'bench-wp', labels: { [LABELS.waypointFor]: 'service' } },
      spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
    }]);
    const [gateway] = mesh.apply(gatewayYaml);
    log('  starting the waypoint pod on node-2');
    const wp = await mesh.startWaypoint(gateway!, 2, o.profileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] } : {});
    mesh.labelNamespace('bench-wp', { [LABELS.useWaypoint]: WAYPOINT });
    await mesh.waitServicesUseWaypoint('bench-wp', ['backend-wp']);

    const nginxPod = pod('bench-plain', 'nginx');
    const nginxMaster = nginxPod.process!.pid;
    const nginxPids = [nginxMaster];
    await waitFor(() => {
      nginxPids.splice(1, nginxPids.length, ...childPids(nginxMaster));
      return nginxPids.length === 1 + o.nginxWorkers;
    }, { timeoutMs: 10_000, intervalMs: 100, message: `nginx (pid ${nginxMaster}) to run ${o.nginxWorkers} worker(s)` });
    const clients = {} as Record<ScenarioName, MeshPod>;
    const vips = {} as Record<ScenarioName, string>;
    const backends: Partial<Record<ScenarioName, number[]>> = {};
    for (const s of SCENARIOS) {
      const w = WIRING[s];
      clients[s] = pod(w.namespace, w.client);
      vips[s] = mesh.service(w.namespace, w.service).spec.clusterIP as string;
      backends[s] = [pod(w.namespace, w.backend).process!.pid];
    }
    const wrkScript = join(dir, 'bench-wrk.lua');
    writeFileSync(wrkScript, WRK_LUA);
    return {
      mesh, clients, vips, wrkScript, tck: clockTicks(), nginxLog: accessLogCounter(nginx.accessLog),
      groups: { agentN1: [mesh.agentProcess(1).pid], agentN2: [mesh.agentProcess(2).pid], waypoint: [wp.process!.pid], nginx: nginxPids, backend: backends },
    };
  } catch (err) {
    await mesh.close().catch(() => undefined);
    throw err;
  }
}

function groupPids(bed: Bed, scenario: ScenarioName): Array<[CpuGroup, number[]]> {
  return (Object.entries(bed.groups) as Array<[CpuGroup, Bed['groups'][CpuGroup]]>)
    .map(([g, v]) => [g, Array.isArray(v) ? v : v[scenario] ?? []]);
}

// ---------------------------------------------------------------------------------------------------------------
// path evidence

interface Scrape { waypoint: Sample[]; agents: Sample[]; nginxLines: number }

async function scrape(bed: Bed): Promise<Scrape> {
  return { waypoint: parseMetrics(await bed.mesh.waypointMetrics()), agents: parseMetrics(await bed.mesh.agentMetrics()), nginxLines: bed.nginxLog() };
}

/**
 * nginx's access log is buffered and flushed at least every second: before counting (before and after an nginx run),
 * wait until what nginx still holds is written, i.e. the count stays the same across a flush interval.
 */
async function settleNginxLog(bed: Bed): Promise<void> {
  let last = bed.nginxLog();
  for (let i = 0; i < 5; i++) {
    await sleep(1200);
    const now = bed.nginxLog();
    if (now === last) return;
    last = now;
  }
}

async function scrapeBefore(bed: Bed, scenario: ScenarioName): Promise<Scrape> {
  if (scenario === 'nginx') await settleNginxLog(bed);
  return await scrape(bed);
}

async function evidenceSince(bed: Bed, scenario: ScenarioName, before: Scrape): Promise<PathEvidence> {
  if (scenario === 'nginx') await settleNginxLog(bed);
  const after = await scrape(bed);
  const wp = diffMetrics(before.waypoint, after.waypoint).filter((s) => s.name === METRICS.requestsTotal && s.labels.reporter === REPORTER.waypoint);
  const agents = diffMetrics(before.agents, after.agents);
  const service = WIRING[scenario].service;
  return {
    waypointRequests: wp.filter((s) => s.labels.destination_service_name === service).reduce((n, s) => n + s.value, 0),
    waypointRequestsAll: wp.reduce((n, s) => n + s.value, 0),
    mtlsConnections: connectionSignals(agents).find((c) => c.service === service)?.mutualTls ?? 0,
    agentConnectionsAll: agents.filter((s) => s.name === METRICS.tcpConnectionsOpened).reduce((n, s) => n + s.value, 0),
    nginxLogLines: after.nginxLines - before.nginxLines,
  };
}

/** Why a run's evidence does not show its intended path (undefined: it does). `answered` = requests it completed. */
export function pathProblem(scenario: ScenarioName, e: PathEvidence, answered: number, conns: number): string | undefined {
  const wants = ({
    direct: [[e.agentConnectionsAll === 0, 'no agent connection'], [e.waypointRequestsAll === 0, 'no waypoint request'], [e.nginxLogLines === 0, 'no nginx log line']],
    l4: [[e.mtlsConnections >= conns, `>= ${conns} mTLS connections accepted by the destination agent`], [e.waypointRequestsAll === 0, 'no waypoint request'], [e.nginxLogLines === 0, 'no nginx log line']],
    // The waypoint's own upstream connections are pooled (opened in the warm-up): the client's are the agents' part.
    waypoint: [[e.waypointRequests >= answered, `>= ${answered} waypoint requests to backend-wp`], [e.agentConnectionsAll >= conns, `>= ${conns} agent connections (the client's, captured)`], [e.nginxLogLines === 0, 'no nginx log line']],
    nginx: [[e.nginxLogLines >= answered, `>= ${answered} nginx access log lines`], [e.agentConnectionsAll === 0, 'no agent connection'], [e.waypointRequestsAll === 0, 'no waypoint request']],
  } satisfies Record<ScenarioName, Array<[boolean, string]>>)[scenario];
  const missing = wants.filter(([ok]) => !ok).map(([, what]) => what);
  return missing.length ? `${scenario}: wanted ${missing.join(', ')}; saw ${JSON.stringify(e)}` : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// the two tests

const non2xx = (statuses: Record<string, number>): number => Object.entries(statuses).filter(([c]) => !c.startsWith('2')).reduce((n, [, k]) => n + k, 0);

function lastJson(stdout: string): Record<string, unknown> {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  return line ? (JSON.parse(line) as Record<string, unknown>) : {};
}

async function wrk(bed: Bed, scenario: ScenarioName, o: WaypointBenchOptions, seconds: number): Promise<Record<string, number>> {
  const url = `http://${bed.vips[scenario]}:${APP_PORT}/`;
  const argv = ['wrk', '-t1', `-c${o.maxConns}`, `-d${seconds}s`, '--timeout', '5s', '-s', bed.wrkScript, url, '--', String(o.maxRequests)];
  const r = await bed.mesh.topo.execIn(bed.clients[scenario].netns, argv, { timeoutMs: seconds * 1000 + 15_000 });
  const out = lastJson(r.stdout);
  if (r.code !== 0 || out.requests === undefined) throw new Error(`wrk on ${scenario} failed (exit ${r.code ?? r.signal}): ${r.stdout.slice(-800)} ${r.stderr.slice(-800)}`);
  return out as Record<string, number>;
}

async function runMax(bed: Bed, scenario: ScenarioName, rep: number, o: WaypointBenchOptions): Promise<MaxRun> {
  if (o.maxWarmupS > 0) await wrk(bed, scenario, o, o.maxWarmupS);
  const before = await scrapeBefore(bed, scenario);
  const groups = groupPids(bed, scenario);
  const cpu0 = groups.map(([, pids]) => readGroupCpu(pids, bed.tck));
  const w = await wrk(bed, scenario, o, o.maxDurationS);
  const cpu1 = groups.map(([, pids]) => readGroupCpu(pids, bed.tck));
  const cpu = Object.fromEntries(groups.map(([g, pids], i) => [g, pids.length ? spentBetween(cpu0[i]!, cpu1[i]!) : null])) as Record<CpuGroup, CpuSpent | null>;
  const requests = w.requests!;
  const evidence = await evidenceSince(bed, scenario, before);
  const errors = { connect: w.connect!, read: w.read!, write: w.write!, status: w.status!, timeout: w.timeout! };
  const failed = Object.values(errors).reduce((a, b) => a + b, 0);
  const problem = pathProblem(scenario, evidence, requests - failed, o.maxConns) ?? (failed ? `${scenario}: wrk errors ${JSON.stringify(errors)}` : undefined);
  const durationS = w.durationUs! / 1e6;
  return {
    test: 'max', scenario, rep, requests, durationS, rps: requests / durationS, p50Us: w.p50Us!, p99Us: w.p99Us!, errors, cpu, evidence,
    ...(problem ? { problem } : {}),
  };
}

async function runRate(bed: Bed, scenario: ScenarioName, rep: number, o: WaypointBenchOptions): Promise<RateRun> {
  const groups = groupPids(bed, scenario).filter(([, pids]) => pids.length);
  const deadlineMs = o.rateWarmupMs + o.rateDurationMs + 20_000;
  const argv = [process.execPath, LOADGEN, '--host', bed.vips[scenario], '--port', String(APP_PORT), '--authority', `${bed.vips[scenario]}:${APP_PORT}`,
    '--rate', String(o.rate), '--conns', String(o.rateConns), '--warmup-ms', String(o.rateWarmupMs), '--duration-ms', String(o.rateDurationMs),
    '--max-requests', String(Math.ceil((o.rate * (o.rateWarmupMs + o.rateDurationMs)) / 1000) + o.rate),
    '--deadline-ms', String(deadlineMs), '--clk-tck', String(bed.tck), ...groups.flatMap(([g, pids]) => ['--cpu', `${g}=${pids.join(',')}`])];
  const before = await scrapeBefore(bed, scenario);
  const r = await bed.mesh.topo.execIn(bed.clients[scenario].netns, argv, { timeoutMs: deadlineMs + 5000 });
  const out = lastJson(r.stdout);
  if (out.event !== 'result') throw new Error(`loadgen on ${scenario} failed (exit ${r.code ?? r.signal}): ${String(out.message ?? '')} ${r.stderr.slice(-1500)}`);
  const completed = out.completed as number;
  const evidence = await evidenceSince(bed, scenario, before);
  const statuses = out.statuses as Record<string, number>;
  const problem = pathProblem(scenario, evidence, completed, o.rateConns)
    ?? (non2xx(statuses) || (out.errors as number) || (out.brokenConns as number)
      ? `${scenario}: answers ${JSON.stringify(statuses)}, ${String(out.errors)} unanswered, ${String(out.brokenConns)} connection(s) broke ${JSON.stringify(out.broken)}` : undefined);
  const measured = out.cpu as Partial<Record<CpuGroup, CpuSpent>>;
  const cpu = Object.fromEntries((['agentN1', 'agentN2', 'waypoint', 'nginx', 'backend'] as const).map((g) => [g, measured[g] ?? null])) as Record<CpuGroup, CpuSpent | null>;
  return {
    test: 'rate', scenario, rep, rps: out.rps as number, windowS: out.windowS as number, sent: out.sent as number, completed,
    errors: out.errors as number, statuses, latency: out.latency as LatencySummary, lag: out.lag as LatencySummary,
    loadgenCpuS: out.loadgenCpuS as number, cpu, evidence, ...(problem ? { problem } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// summary

const sumCpu = (r: BenchRun, groups: readonly CpuGroup[]): number => groups.reduce((n, g) => n + (r.cpu[g]?.cpuS ?? NaN), 0);

export function summarize(runs: readonly BenchRun[], scenarios: readonly ScenarioName[]): Partial<Record<ScenarioName, ScenarioSummary>> {
  const out: Partial<Record<ScenarioName, ScenarioSummary>> = {};
  for (const s of scenarios) {
    const proxies = PROXIES[s];
    const summary: ScenarioSummary = { proxies };
    const max = runs.filter((r): r is MaxRun => r.test === 'max' && r.scenario === s);
    if (max.length) {
      const perCore = (r: MaxRun, groups: readonly CpuGroup[]): number => (groups.length ? r.requests / sumCpu(r, groups) : NaN);
      summary.max = {
        rps: spread(max.map((r) => r.rps)), p50Us: spread(max.map((r) => r.p50Us)), p99Us: spread(max.map((r) => r.p99Us)),
        errors: max.reduce((n, r) => n + r.errors.connect + r.errors.read + r.errors.write + r.errors.status + r.errors.timeout, 0),
        rpsPerCore: spread(max.map((r) => perCore(r, proxies))),
        rpsPerCoreBy: Object.fromEntries(proxies.map((g) => [g, spread(max.map((r) => perCore(r, [g])))])),
      };
    }
    const rate = runs.filter((r): r is RateRun => r.test === 'rate' && r.scenario === s);
    if (rate.length) {
      const per1k = (r: RateRun, groups: readonly CpuGroup[]): number => (groups.length ? sumCpu(r, groups) / (r.completed / 1000) : 0);
      summary.rate = {
        rps: spread(rate.map((r) => r.rps)), p50Us: spread(rate.map((r) => r.latency.p50Us)), p99Us: spread(rate.map((r) => r.latency.p99Us)),
        p999Us: spread(rate.map((r) => r.latency.p999Us)), lagP99Us: spread(rate.map((r) => r.lag.p99Us)),
        errors: rate.reduce((n, r) => n + r.errors + non2xx(r.statuses), 0),
        coresPer1k: spread(rate.map((r) => per1k(r, proxies))),
        coresPer1kBy: Object.fromEntries(proxies.map((g) => [g, spread(rate.map((r) => per1k(r, [g])))])),
        backendCoresPer1k: spread(rate.map((r) => per1k(r, ['backend']))),
        loadgenCoresPer1k: spread(rate.map((r) => r.loadgenCpuS / (r.completed / 1000))),
      };
    }
    out[s] = summary;
  }
  return out;
}

export function ratiosOf(s: Partial<Record<ScenarioName, ScenarioSummary>>): Record<string, number> {
  const m = (x: Spread | undefined): number => x?.median ?? NaN;
  const wp = s.waypoint;
  const l4 = s.l4;
  const nginx = s.nginx;
  const direct = s.direct;
  return {
    /** The waypoint process alone vs nginx (one proxy each): requests per CPU-second at max rate. */
    waypointVsNginxRpsPerCore: m(wp?.max?.rpsPerCoreBy.waypoint) / m(nginx?.max?.rpsPerCore),
    /** The whole waypoint path (two agents + waypoint) vs nginx. */
    waypointPathVsNginxRpsPerCore: m(wp?.max?.rpsPerCore) / m(nginx?.max?.rpsPerCore),
    waypointVsL4RpsPerCore: m(wp?.max?.rpsPerCore) / m(l4?.max?.rpsPerCore),
    waypointVsL4MaxRps: m(wp?.max?.rps) / m(l4?.max?.rps),
    waypointVsNginxMaxRps: m(wp?.max?.rps) / m(nginx?.max?.rps),
    waypointVsL4CoresPer1k: m(wp?.rate?.coresPer1k) / m(l4?.rate?.coresPer1k),
    waypointVsNginxCoresPer1k: m(wp?.rate?.coresPer1kBy.waypoint) / m(nginx?.rate?.coresPer1k),
    waypointP99AddedMs: (m(wp?.rate?.p99Us) - m(direct?.rate?.p99Us)) / 1000,
    l4P99AddedMs: (m(l4?.rate?.p99Us) - m(direct?.rate?.p99Us)) / 1000,
    nginxP99AddedMs: (m(nginx?.rate?.p99Us) - m(direct?.rate?.p99Us)) / 1000,
    waypointP99AddedOverL4Ms: (m(wp?.rate?.p99Us) - m(l4?.rate?.p99Us)) / 1000,
  };
}

export function checkTargets(s: Partial<Record<ScenarioName, ScenarioSummary>>, ratios: Record<string, number>, rate: number): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const wpCores = s.waypoint?.rate?.coresPer1kBy.waypoint?.median;
  if (wpCores !== undefined) checks.push({ name: 'waypoint CPU cores per 1000 req/s (waypoint process)', target: `<= ${TARGETS.waypointCoresPer1k}`, measured: wpCores, met: wpCores <= TARGETS.waypointCoresPer1k });
  const added = ratios.waypointP99AddedMs!;
  if (Number.isFinite(added)) checks.push({ name: `p99 added by the waypoint path at ${rate} req/s (vs direct)`, target: `<= ${TARGETS.p99AddedMs} ms`, measured: added, met: added <= TARGETS.p99AddedMs });
  const vsNginx = ratios.waypointVsNginxRpsPerCore!;
  if (Number.isFinite(vsNginx)) checks.push({ name: 'waypoint req/s per core vs nginx', target: `>= ${TARGETS.waypointVsNginxPerCore}x`, measured: vsNginx, met: vsNginx >= TARGETS.waypointVsNginxPerCore });
  return checks;
}

// ---------------------------------------------------------------------------------------------------------------
// report

const f0 = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(0) : '-');
const f2 = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(2) : '-');
const f3 = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(3) : '-');
const ms = (us: number | undefined): string => (us !== undefined && Number.isFinite(us) ? (us / 1000).toFixed(2) : '-');
const mid = (s: Spread | undefined, fmt: (n: number) => string): string => (s ? `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})` : '-');

function table(title: string, header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (cells: string[]): string => cells.map((c, i) => (i ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [`\n${title}`, pad(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(pad)].join('\n');
}

export function describeRun(r: BenchRun): string {
  const cpu = (['agentN1', 'agentN2', 'waypoint', 'nginx', 'backend'] as const).filter((g) => r.cpu[g]).map((g) => `${g} ${f2(r.cpu[g]!.cpuS)}s`).join(' ');
  const e = r.evidence;
  const path = `wp req ${e.waypointRequests}, mTLS conns ${e.mtlsConnections}, agent conns ${e.agentConnectionsAll}, nginx lines ${e.nginxLogLines}`;
  const problem = r.problem ? `\n      PROBLEM ${r.problem}` : '';
  if (r.test === 'max') return `max   ${r.scenario.padEnd(8)} rep ${r.rep}: ${f0(r.rps)} req/s p50 ${ms(r.p50Us)} p99 ${ms(r.p99Us)} ms; CPU ${cpu}; ${path}${problem}`;
  return `rate  ${r.scenario.padEnd(8)} rep ${r.rep}: ${f0(r.rps)} req/s p50 ${ms(r.latency.p50Us)} p99 ${ms(r.latency.p99Us)} ms lag p99 ${ms(r.lag.p99Us)} ms; CPU ${cpu}; ${path}${problem}`;
}

export function renderReport(res: BenchResult): string {
  const o = res.options;
  const s = res.summary;
  const names = o.scenarios;
  const out: string[] = [];
  const groupCell = (by: Partial<Record<CpuGroup, Spread>>, g: CpuGroup, fmt: (n: number) => string): string => (by[g] ? fmt(by[g]!.median) : '-');
  out.push(table(`Max rate: wrk, 1 thread, ${o.maxConns} keep-alive connections, ${o.maxDurationS} s per run, ${o.reps} run(s): median (min-max); per core = requests / CPU-s of the proxies`,
    ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'path req/s per core', 'agent n1', 'waypoint', 'agent n2', 'nginx'],
    names.map((n) => {
      const m = s[n]?.max;
      if (!m) return [n, '-', '-', '-', '-', '-', '-', '-', '-', '-'];
      return [n, mid(m.rps, f0), ms(m.p50Us.median), ms(m.p99Us.median), String(m.errors), mid(m.rpsPerCore, f0),
        groupCell(m.rpsPerCoreBy, 'agentN1', f0), groupCell(m.rpsPerCoreBy, 'waypoint', f0), groupCell(m.rpsPerCoreBy, 'agentN2', f0), groupCell(m.rpsPerCoreBy, 'nginx', f0)];
    })));
  out.push(table(`Fixed rate: ${o.rate} req/s open loop, ${o.rateConns} keep-alive connections, ${o.rateDurationMs / 1000} s per run, ${o.rateReps} run(s): latency ms median (min-max); CPU = cores per 1000 req/s`,
    ['scenario', 'req/s', 'p50', 'p99', 'p99.9', 'gen lag p99', 'errors', 'path cores/1k', 'agent n1', 'waypoint', 'agent n2', 'nginx', 'backend'],
    names.map((n) => {
      const r = s[n]?.rate;
      if (!r) return [n, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-'];
      return [n, f0(r.rps.median), mid(r.p50Us, ms), mid(r.p99Us, ms), ms(r.p999Us.median), ms(r.lagP99Us.median), String(r.errors), n === 'direct' ? '-' : mid(r.coresPer1k, f3),
        groupCell(r.coresPer1kBy, 'agentN1', f3), groupCell(r.coresPer1kBy, 'waypoint', f3), groupCell(r.coresPer1kBy, 'agentN2', f3), groupCell(r.coresPer1kBy, 'nginx', f3), f3(r.backendCoresPer1k.median)];
    })));
  const ra = res.ratios;
  out.push(table('Ratios (medians)', ['ratio', 'value'], [
    ['waypoint process vs nginx, req/s per core', `${f2(ra.waypointVsNginxRpsPerCore)}x`],
    ['waypoint path (agents + waypoint) vs nginx, req/s per core', `${f2(ra.waypointPathVsNginxRpsPerCore)}x`],
    ['waypoint path vs L4 path, req/s per core', `${f2(ra.waypointVsL4RpsPerCore)}x`],
    ['waypoint vs L4, max req/s', `${f2(ra.waypointVsL4MaxRps)}x`],
    ['waypoint vs nginx, max req/s', `${f2(ra.waypointVsNginxMaxRps)}x`],
    ['waypoint path vs L4 path, cores per 1000 req/s', `${f2(ra.waypointVsL4CoresPer1k)}x`],
    ['waypoint process vs nginx, cores per 1000 req/s', `${f2(ra.waypointVsNginxCoresPer1k)}x`],
    [`p99 added at ${o.rate} req/s vs direct: L4 / waypoint / nginx (ms)`, `${f2(ra.l4P99AddedMs)} / ${f2(ra.waypointP99AddedMs)} / ${f2(ra.nginxP99AddedMs)}`],
  ]));
  out.push(table('Targets', ['target', 'wanted', 'measured', 'met'], res.checks.map((c) => [c.name, c.target, f3(c.measured), c.met ? 'yes' : 'NO'])));
  if (res.problems.length) out.push(`\nPROBLEMS (these runs did not take their intended path or lost answers; their numbers are suspect):\n${res.problems.map((p) => `  ${p}`).join('\n')}`);
  if (res.profile) {
    const p = res.profile;
    out.push(table(`Waypoint CPU profile (node --cpu-prof, whole run): ${f0(p.busyMs)} ms busy, ${f0(p.idleMs)} ms idle; share of busy time by area`,
      ['area', 'busy %', 'ms'], p.areas.map((a) => [a.name, a.busyPct.toFixed(1), f0(a.ms)])));
    out.push(table('Waypoint CPU profile: top functions by self time', ['function', 'busy %', 'ms'], p.functions.map((a) => [a.name, a.busyPct.toFixed(1), f0(a.ms)])));
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// main

/** Runs the whole benchmark (mesh up, every scenario's runs, mesh down) and returns the result; writes nothing. */
export async function runWaypointBench(o: WaypointBenchOptions, log: (line: string) => void = () => {}): Promise<BenchResult> {
  const started = performance.now();
  const machine = machineInfo();
  log(`waypoint bench: ${String(machine.nproc)} x ${String(machine.cpuModel)}, node ${String(machine.node)}, load ${(machine.loadavgAtStart as number[]).join(' ')}`);
  if (o.profileDir) mkdirSync(o.profileDir, { recursive: true });
  const bed = await setUp(o, log);
  log(`mesh ready in ${((performance.now() - started) / 1000).toFixed(1)} s (work dir ${bed.mesh.workDir})`);
  const runs: BenchRun[] = [];
  const discarded: RateRun[] = [];
  let profile: ProfileAreas | undefined;
  try {
    // Scenario order rotates per repetition, so drift (other load on the machine, warm-up) falls on all of them.
    const order = (rep: number): ScenarioName[] => o.scenarios.map((_, i) => o.scenarios[(i + rep - 1) % o.scenarios.length]!);
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const s of order(rep)) {
        const r = await runMax(bed, s, rep, o);
        runs.push(r);
        log(describeRun(r));
      }
    }
    for (let rep = 1; rep <= o.rateReps; rep++) {
      for (const s of order(rep)) {
        let r = await runRate(bed, s, rep, o);
        for (let retry = 0; r.lag.p99Us > o.disturbedLagP99Us && retry < o.maxRetries; retry++) {
          log(`${describeRun(r)}  <- disturbed (generator lag p99 > ${o.disturbedLagP99Us / 1000} ms), run again`);
          discarded.push(r);
          r = await runRate(bed, s, rep, o);
        }
        runs.push(r);
        log(describeRun(r));
      }
    }
    if (o.profileDir) {
      // --cpu-prof writes its file when the process exits: stop the waypoint gracefully (SIGTERM -> drain -> exit 0).
      await bed.mesh.waypointPod!.process!.stop(15_000);
      const file = await waitFor(() => readdirSync(o.profileDir!).find((f) => f.endsWith('.cpuprofile')), { timeoutMs: 10_000, intervalMs: 100, message: `a .cpuprofile in ${o.profileDir}` });
      profile = summarizeAreas(JSON.parse(readFileSync(join(o.profileDir, file), 'utf8')) as CpuProfile, 25);
    }
  } finally {
    await bed.mesh.close();
  }
  const summary = summarize(runs, o.scenarios);
  const ratios = ratiosOf(summary);
  const checks = checkTargets(summary, ratios, o.rate);
  return {
    bench: 'waypoint (embedded mesh: direct, L4, waypoint, nginx)', date: new Date().toISOString(), options: o,
    machine: { ...machine, loadavgAtEnd: os.loadavg().map((x) => +x.toFixed(2)) }, elapsedS: (performance.now() - started) / 1000, prefix: bed.mesh.topo.prefix,
    targets: TARGETS, summary, ratios, checks, problems: runs.filter((r) => r.problem).map((r) => `${r.test} rep ${r.rep}: ${r.problem!}`),
    runs, discarded, ...(profile ? { profile } : {}),
  };
}

export function writeResult(path: string, result: BenchResult): void {
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
}
