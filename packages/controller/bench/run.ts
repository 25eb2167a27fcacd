// Controller scale benchmark (ARCHITECTURE.md "Scale and failure"): a synthetic cluster (default 1000 Services,
// 2000 Pods, 20 namespaces) translated by the controller's data path and served over delta ADS (gRPC+TLS, loopback)
// to 100 real agent xDS clients, with its baselines in the same run:
//   controller x1    the same full sync to a single agent (what fan-out costs),
//   replay x100      the same response bytes replayed by a server with no controller logic, to the same 100 agents
//                    (what moving the bytes and applying them costs on this machine); also pushes the same pod
//                    changes without debounce.
// Each run starts fresh processes: controller (its CPU and RSS alone), replay server, and the agents in `--fleets`
// processes. Medians of `--runs` runs, the order of the 100-agent phases alternating between runs.
//
// usage: node dist/bench/run.js [--services 1000] [--pods 2000] [--agents 100] [--runs 3] [--changes 50]
//        [--fleets 2] [--namespaces N] [--debounce-ms 100] [--client ztunnel|light] [--out FILE] [--baseline] [--profile]
//   --client    ztunnel (default): the node agent's real xDS client; light: a bare grpc-js delta client that only
//               keeps names and versions (see agents.ts), to show the controller's share when agents share its CPU
//   --baseline  also write bench/results/baseline-<date>.json (the committed reference run)
//   --profile   the controller of run 1 runs with --cpu-prof; the profile lands in bench/results/profiles/
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '@ambit/api';
import { spread, summarizeUs, type LatencySummary, type Spread } from '@ambit/bench-kit';
import { CertificateAuthority } from '@ambit/pki';
import { issueServingCertificate } from '../src/index.js';
import type { ChangeResult, ControllerLoadResult, MemoryReport, StoreDigest } from './controller.js';
import type { AgentKind, FleetStartParams, FleetSyncResult, SeenEvent } from './agents.js';
import { BenchProcess, cpuSecondsBetween } from './rpc.js';
import { defaultNamespaces, planChanges, type PodChange, type SceneSize } from './scene.js';

const CONTROLLER = new URL('./controller.js', import.meta.url);
const REPLAY = new URL('./replay-server.js', import.meta.url);
const FLEET = new URL('./agents.js', import.meta.url);
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/** The issue's targets (istiod: 1 vCPU, 1.5 GB at this size). */
const TARGETS = { fullSyncMs: 5000, incrementalP99Ms: 200, steadyRssMB: 500 };

// ---------------------------------------------------------------------------------------------------------------
// options

interface Options {
  size: SceneSize;
  agents: number;
  client: AgentKind;
  fleets: number;
  runs: number;
  changes: number;
  debounceMs: number;
  /** Pause after every agent saw a change, before the next one. */
  gapMs: number;
  syncTimeoutMs: number;
  changeTimeoutMs: number;
  out: string;
  baseline: boolean;
  profile: boolean;
  maxMinutes: number;
}

function parseOptions(argv: string[]): Options {
  const known = new Set(['--services', '--pods', '--agents', '--fleets', '--runs', '--changes', '--namespaces', '--debounce-ms',
    '--gap-ms', '--sync-timeout-s', '--change-timeout-ms', '--out', '--max-minutes', '--client']);
  const flags = new Set(['--baseline', '--profile']);
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (flags.has(a)) { values.set(a, 'true'); continue; }
    if (!known.has(a)) throw new Error(`unknown option ${a}; see the usage at the top of bench/run.ts`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    values.set(a, v);
  }
  const int = (name: string, dflt: number, min = 1): number => {
    const raw = values.get(name);
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
    return n;
  };
  const services = int('--services', 1000);
  const agents = int('--agents', 100);
  const size: SceneSize = { services, pods: int('--pods', 2000), namespaces: int('--namespaces', defaultNamespaces(services)), nodes: agents };
  const runs = int('--runs', 3);
  const full = services === 1000 && size.pods === 2000 && agents === 100;
  const client = values.get('--client') ?? 'ztunnel';
  if (client !== 'ztunnel' && client !== 'light') throw new Error(`--client must be ztunnel or light, got "${client}"`);
  return {
    size, agents, runs, client,
    fleets: Math.min(agents, int('--fleets', 2)),
    changes: Math.min(size.pods, int('--changes', 50)),
    debounceMs: int('--debounce-ms', 100, 0),
    gapMs: int('--gap-ms', 25, 0),
    syncTimeoutMs: int('--sync-timeout-s', 60) * 1000,
    changeTimeoutMs: int('--change-timeout-ms', 10_000),
    out: values.get('--out') ?? join(resultsDir, `${full ? 'latest' : 'custom'}${client === 'light' ? '-light' : ''}.json`),
    baseline: values.has('--baseline'),
    profile: values.has('--profile'),
    maxMinutes: int('--max-minutes', 15),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// phases

interface SyncMeasurement {
  agents: number;
  /** First client started -> last agent holding the full set (includes TCP+TLS handshakes and stream setup). */
  syncMs: number;
  /** Per agent: start -> first response applied. */
  firstResponseMs: LatencySummary;
  /** Per agent: start -> full set held. */
  agentSyncMs: LatencySummary;
  serverCpuS: number;
  fleetCpuS: number;
  /** Agents whose held names and versions equal the controller's store (must be all). */
  agentsComplete: number;
  streams: number;
  /** Distinct client sockets at the server: each agent its own connection (controller only). */
  distinctPeers: number | null;
  /** Warnings logged so far, by message: the server's (controller only) and the agents' (stream ended, ...). */
  serverWarnings: Record<string, number>;
  agentWarnings: Record<string, number>;
}

interface ChangesMeasurement {
  changes: number;
  /** Per change: change in the index (or in the replay server) -> the last of the agents applied it. */
  allAgentsMs: LatencySummary;
  /** Every (change, agent) delivery. */
  perAgentMs: LatencySummary;
  /** Index update + translation, or the replay's re-encode, per change. */
  changeWorkMs: LatencySummary;
  serverCpuMsPerChange: number;
  fleetCpuMsPerChange: number;
}

interface Fleets { procs: BenchProcess[]; sizes: number[] }

const live = new Set<BenchProcess>();
/** The agent xDS client's warning when a stream ends (it then reconnects with backoff). */
const STREAM_ENDED = 'xDS stream ended; keeping the last known state and reconnecting';

function spawn(name: string, script: URL, execArgv: string[] = []): BenchProcess {
  const p = BenchProcess.start(name, script, execArgv);
  live.add(p);
  return p;
}

async function stopProcess(p: BenchProcess): Promise<void> {
  await p.stop();
  live.delete(p);
}

async function startFleets(count: number, procs: number): Promise<Fleets> {
  const sizes = Array.from({ length: procs }, (_, j) => Math.floor(count / procs) + (j < count % procs ? 1 : 0));
  // The agents dial 127.0.0.1; node warns (DEP0123) that an IP is sent as TLS server name. Not ours to fix here.
  const fleet = sizes.map((_, j) => spawn(`agents-${j}`, FLEET, ['--no-deprecation']));
  await Promise.all(fleet.map((f) => f.calibrateClock()));
  return { procs: fleet, sizes };
}

async function stopFleets(f: Fleets): Promise<void> {
  await Promise.all(f.procs.map(async (p) => {
    await p.call('stop').catch(() => undefined);
    await stopProcess(p);
  }));
}

const toUs = (xs: number[]): number[] => xs.map((x) => x * 1000);

async function agentWarnings(f: Fleets): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const w of await Promise.all(f.procs.map((p) => p.call<Record<string, number>>('warnings')))) {
    for (const [k, v] of Object.entries(w)) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

function sameDigest(a: StoreDigest, b: StoreDigest): boolean {
  return [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL].every((t) => {
    const x = a[t as keyof StoreDigest];
    const y = b[t as keyof StoreDigest];
    return x.count === y.count && x.digest === y.digest;
  });
}

async function countComplete(f: Fleets, expected: StoreDigest): Promise<number> {
  const all = (await Promise.all(f.procs.map((p) => p.call<StoreDigest[]>('digest', null, 60_000)))).flat();
  return all.filter((d) => sameDigest(d, expected)).length;
}

async function fullSync(
  o: Options, server: BenchProcess, port: number, rootPem: string, dir: string, agents: number, expected: StoreDigest, isController: boolean,
): Promise<{ fleets: Fleets; m: SyncMeasurement }> {
  const fleets = await startFleets(agents, Math.min(o.fleets, agents));
  const expect = { addresses: expected[ADDRESS_TYPE_URL].count, authorizations: expected[AUTHORIZATION_TYPE_URL].count };
  const hostPort = `127.0.0.1:${port}`;
  const base = { kind: o.client, hostPort, rootPem, dir, expect, timeoutMs: o.syncTimeoutMs };
  await Promise.all(fleets.procs.map((p) => p.call('warmup', { ...base, first: 0, count: 1 } satisfies FleetStartParams, o.syncTimeoutMs + 10_000)));
  await waitForStreams(server, 0);
  const s0 = await server.sample();
  const f0 = await Promise.all(fleets.procs.map((p) => p.sample()));
  let first = 0;
  const results = await Promise.all(fleets.procs.map((p, j) => {
    const params: FleetStartParams = { ...base, first, count: fleets.sizes[j]! };
    first += fleets.sizes[j]!;
    return p.call<FleetSyncResult>('start', params, o.syncTimeoutMs + 10_000);
  }));
  const s1 = await server.sample();
  const f1 = await Promise.all(fleets.procs.map((p) => p.sample()));
  const startedAt = Math.min(...results.map((r, j) => fleets.procs[j]!.toLocalMs(r.startedAt)));
  const rel = (j: number, xs: number[]): number[] => xs.map((x) => fleets.procs[j]!.toLocalMs(x) - startedAt);
  const synced = results.flatMap((r, j) => rel(j, r.syncedAt));
  const firstResponse = results.flatMap((r, j) => rel(j, r.firstResponseAt));
  const conns = await server.call<{ streams: number; distinctPeers?: number; warnings?: Record<string, number> }>('connections');
  return {
    fleets,
    m: {
      agents,
      syncMs: Math.max(...synced),
      firstResponseMs: summarizeUs(toUs(firstResponse)),
      agentSyncMs: summarizeUs(toUs(synced)),
      serverCpuS: cpuSecondsBetween(s0, s1),
      fleetCpuS: f0.reduce((sum, a, j) => sum + cpuSecondsBetween(a, f1[j]!), 0),
      agentsComplete: await countComplete(fleets, expected),
      streams: conns.streams,
      distinctPeers: isController ? conns.distinctPeers ?? 0 : null,
      serverWarnings: conns.warnings ?? {},
      agentWarnings: await agentWarnings(fleets),
    },
  };
}

/** Polls the server until it has `n` streams (the warm-up agents' streams are gone), for at most 10 s. */
async function waitForStreams(server: BenchProcess, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { streams } = await server.call<{ streams: number }>('connections');
    if (streams === n) return;
    if (Date.now() > deadline) throw new Error(`${server.name} still has ${streams} streams, expected ${n}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

function waitSeen(p: BenchProcess, seq: number, timeoutMs: number): Promise<SeenEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${p.name}: not every agent applied change ${seq} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = p.on('seen', (data) => {
      const e = data as SeenEvent;
      if (e.seq !== seq) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

async function runChanges(o: Options, server: BenchProcess, fleets: Fleets, plan: PodChange[]): Promise<ChangesMeasurement> {
  const allAgents: number[] = [];
  const perAgent: number[] = [];
  const work: number[] = [];
  const s0 = await server.sample();
  const f0 = await Promise.all(fleets.procs.map((p) => p.sample()));
  for (const c of plan) {
    const seen = fleets.procs.map((p) => waitSeen(p, c.seq, o.changeTimeoutMs));
    await Promise.all(fleets.procs.map((p) => p.call('arm', { seq: c.seq, expect: c.expect })));
    const r = await server.call<ChangeResult>('change', c);
    const events = await Promise.all(seen);
    const t0 = server.toLocalMs(r.t0);
    const lat = events.flatMap((e, j) => e.at.map((at) => fleets.procs[j]!.toLocalMs(at) - t0));
    allAgents.push(Math.max(...lat));
    perAgent.push(...lat);
    work.push(r.translateMs);
    if (o.gapMs > 0) await new Promise((res) => setTimeout(res, o.gapMs));
  }
  const s1 = await server.sample();
  const f1 = await Promise.all(fleets.procs.map((p) => p.sample()));
  return {
    changes: plan.length,
    allAgentsMs: summarizeUs(toUs(allAgents)),
    perAgentMs: summarizeUs(toUs(perAgent)),
    changeWorkMs: summarizeUs(toUs(work)),
    serverCpuMsPerChange: (cpuSecondsBetween(s0, s1) * 1000) / plan.length,
    fleetCpuMsPerChange: (f0.reduce((sum, a, j) => sum + cpuSecondsBetween(a, f1[j]!), 0) * 1000) / plan.length,
  };
}

interface RunResult {
  run: number;
  order: string[];
  objects: number;
  resources: { addresses: number; authorizations: number };
  translate: { ms: number; cpuS: number };
  controllerOneAgent: SyncMeasurement;
  controller: {
    sync: SyncMeasurement; changes: ChangesMeasurement; agentsCompleteAfterChanges: number; nacks: number;
    memory: MemoryReport; memoryAfterLoad: MemoryReport;
    /** Warnings by message at the end of the phase. */
    warnings: { controller: Record<string, number>; agents: Record<string, number> };
  };
  replay: { sync: SyncMeasurement; changes: ChangesMeasurement };
  clockRttMs: Record<string, number>;
}

async function runOnce(o: Options, run: number, tls: { certPem: string; keyPem: string }, rootPem: string, dir: string): Promise<RunResult> {
  const prof = o.profile && run === 0
    ? ['--cpu-prof', `--cpu-prof-dir=${join(resultsDir, 'profiles')}`, '--cpu-prof-name=controller.cpuprofile'] : [];
  const ctl = spawn('controller', CONTROLLER, prof);
  const replay = spawn('replay', REPLAY);
  try {
    const loaded = await ctl.call<ControllerLoadResult>('load', { size: o.size, debounceMs: o.debounceMs, tls }, 120_000);
    const memoryAfterLoad = await ctl.call<MemoryReport>('memory');
    const files = await ctl.call<Record<string, string>>('snapshot', { dir }, 60_000);
    const { port: replayPort } = await replay.call<{ port: number }>('start', { files, tls }, 60_000);
    await ctl.calibrateClock();
    await replay.calibrateClock();
    const plan = planChanges(o.size, o.changes);
    const expected = loaded.digest;

    const one = await fullSync(o, ctl, loaded.port, rootPem, dir, 1, expected, true);
    await stopFleets(one.fleets);

    const order = run % 2 === 0 ? ['replay', 'controller'] : ['controller', 'replay'];
    let controller: RunResult['controller'] | undefined;
    let replayResult: RunResult['replay'] | undefined;
    for (const phase of order) {
      if (phase === 'controller') {
        const { fleets, m } = await fullSync(o, ctl, loaded.port, rootPem, dir, o.agents, expected, true);
        const changes = await runChanges(o, ctl, fleets, plan);
        // Every agent must now hold exactly what the store holds (the changed pods included).
        const after = await ctl.call<StoreDigest>('digest');
        const agentsCompleteAfterChanges = await countComplete(fleets, after);
        const { nacks, warnings } = await ctl.call<{ nacks: number; warnings: Record<string, number> }>('warnings');
        const agentWarns = await agentWarnings(fleets);
        // Steady state: agents connected, nothing changing.
        await new Promise((res) => setTimeout(res, 1000));
        const memory = await ctl.call<MemoryReport>('memory');
        await stopFleets(fleets);
        controller = { sync: m, changes, agentsCompleteAfterChanges, nacks, memory, memoryAfterLoad, warnings: { controller: warnings, agents: agentWarns } };
      } else {
        const { fleets, m } = await fullSync(o, replay, replayPort, rootPem, dir, o.agents, expected, false);
        const changes = await runChanges(o, replay, fleets, plan);
        await stopFleets(fleets);
        replayResult = { sync: m, changes };
      }
      console.log(`  run ${run + 1}/${o.runs} ${phase.padEnd(10)} full sync ${f0(phase === 'controller' ? controller!.sync.syncMs : replayResult!.sync.syncMs)} ms, `
        + `change p99 ${f1((phase === 'controller' ? controller!.changes : replayResult!.changes).allAgentsMs.p99Us / 1000)} ms`);
    }
    return {
      run, order, objects: loaded.objects,
      resources: { addresses: expected[ADDRESS_TYPE_URL].count, authorizations: expected[AUTHORIZATION_TYPE_URL].count },
      translate: { ms: loaded.translateMs, cpuS: loaded.translateCpuS },
      controllerOneAgent: one.m,
      controller: controller!,
      replay: replayResult!,
      clockRttMs: { controller: ctl.clockRttMs, replay: replay.clockRttMs },
    };
  } finally {
    await ctl.call('close').catch(() => undefined);
    await replay.call('close').catch(() => undefined);
    await stopProcess(ctl);
    await stopProcess(replay);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// summary and report

function summarize(o: Options, runs: RunResult[]) {
  const s = (f: (r: RunResult) => number): Spread => spread(runs.map(f));
  const summary = {
    translateMs: s((r) => r.translate.ms),
    translateCpuS: s((r) => r.translate.cpuS),
    fullSync: {
      controllerMs: s((r) => r.controller.sync.syncMs),
      controllerOneAgentMs: s((r) => r.controllerOneAgent.syncMs),
      replayMs: s((r) => r.replay.sync.syncMs),
      controllerCpuS: s((r) => r.controller.sync.serverCpuS),
      controllerOneAgentCpuS: s((r) => r.controllerOneAgent.serverCpuS),
      replayCpuS: s((r) => r.replay.sync.serverCpuS),
      agentFleetCpuS: s((r) => r.controller.sync.fleetCpuS),
      agentP50Ms: s((r) => r.controller.sync.agentSyncMs.p50Us / 1000),
      firstResponseP50Ms: s((r) => r.controller.sync.firstResponseMs.p50Us / 1000),
    },
    incremental: {
      controllerP50Ms: s((r) => r.controller.changes.allAgentsMs.p50Us / 1000),
      controllerP99Ms: s((r) => r.controller.changes.allAgentsMs.p99Us / 1000),
      controllerPerAgentP99Ms: s((r) => r.controller.changes.perAgentMs.p99Us / 1000),
      replayP50Ms: s((r) => r.replay.changes.allAgentsMs.p50Us / 1000),
      replayP99Ms: s((r) => r.replay.changes.allAgentsMs.p99Us / 1000),
      translateP50Ms: s((r) => r.controller.changes.changeWorkMs.p50Us / 1000),
      controllerCpuMsPerChange: s((r) => r.controller.changes.serverCpuMsPerChange),
      replayCpuMsPerChange: s((r) => r.replay.changes.serverCpuMsPerChange),
      agentFleetCpuMsPerChange: s((r) => r.controller.changes.fleetCpuMsPerChange),
    },
    memory: {
      afterLoadRssMB: s((r) => r.controller.memoryAfterLoad.rssMB),
      steadyRssMB: s((r) => r.controller.memory.rssMB),
      peakRssMB: s((r) => r.controller.memory.maxRssMB),
      steadyHeapUsedMB: s((r) => r.controller.memory.heapUsedMB),
    },
  };
  const ratio = (a: Spread, b: Spread): number => a.median / b.median;
  const ratios = {
    fullSyncVsReplay: ratio(summary.fullSync.controllerMs, summary.fullSync.replayMs),
    fullSyncVsOneAgent: ratio(summary.fullSync.controllerMs, summary.fullSync.controllerOneAgentMs),
    fullSyncCpuVsReplay: ratio(summary.fullSync.controllerCpuS, summary.fullSync.replayCpuS),
    fullSyncCpuPerAgentVsOneAgent: summary.fullSync.controllerCpuS.median / o.agents / summary.fullSync.controllerOneAgentCpuS.median,
    incrementalP99VsReplay: ratio(summary.incremental.controllerP99Ms, summary.incremental.replayP99Ms),
    incrementalP99MinusDebounceMs: summary.incremental.controllerP99Ms.median - o.debounceMs,
    changeCpuVsReplay: ratio(summary.incremental.controllerCpuMsPerChange, summary.incremental.replayCpuMsPerChange),
  };
  const targets = [
    { metric: `full sync of ${o.agents} agents (ms)`, value: summary.fullSync.controllerMs.median, target: TARGETS.fullSyncMs },
    { metric: 'incremental p99, one pod change to all agents (ms)', value: summary.incremental.controllerP99Ms.median, target: TARGETS.incrementalP99Ms },
    { metric: 'controller RSS, steady state (MB)', value: summary.memory.steadyRssMB.median, target: TARGETS.steadyRssMB },
  ].map((t) => ({ ...t, met: t.value < t.target }));
  const correctness = {
    agentsExpected: o.agents,
    everyAgentHeldEverythingAfterSync: runs.every((r) => r.controller.sync.agentsComplete === o.agents && r.controllerOneAgent.agentsComplete === 1),
    everyAgentHeldEverythingAfterChanges: runs.every((r) => r.controller.agentsCompleteAfterChanges === o.agents),
    replayAgentsHeldEverything: runs.every((r) => r.replay.sync.agentsComplete === o.agents),
    oneConnectionPerAgent: runs.every((r) => r.controller.sync.distinctPeers === o.agents && r.controller.sync.streams === o.agents),
    nacks: runs.reduce((n, r) => n + r.controller.nacks, 0),
    /** Agent streams that ended and reconnected during the controller phases (0 on a healthy run). */
    agentStreamsEnded: runs.reduce((n, r) => n + (r.controller.warnings.agents[STREAM_ENDED] ?? 0), 0),
  };
  return { summary, ratios, targets, correctness };
}

const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');

function render(o: Options, r: ReturnType<typeof summarize>): string {
  const { summary: s, ratios } = r;
  const rows: [string, Spread, (x: number) => string, string][] = [
    ['index load + translate (ms)', s.translateMs, f0, ''],
    [`full sync, ${o.agents} agents, controller (ms)`, s.fullSync.controllerMs, f0, `< ${TARGETS.fullSyncMs}`],
    [`full sync, ${o.agents} agents, replay baseline (ms)`, s.fullSync.replayMs, f0, ''],
    ['full sync, 1 agent, controller (ms)', s.fullSync.controllerOneAgentMs, f0, ''],
    [`  controller CPU, ${o.agents} agents (s)`, s.fullSync.controllerCpuS, f2, ''],
    [`  replay CPU, ${o.agents} agents (s)`, s.fullSync.replayCpuS, f2, ''],
    ['  controller CPU, 1 agent (s)', s.fullSync.controllerOneAgentCpuS, f2, ''],
    [`  agent fleet CPU, ${o.agents} agents (s)`, s.fullSync.agentFleetCpuS, f2, ''],
    ['one pod change -> all agents p50 (ms)', s.incremental.controllerP50Ms, f1, ''],
    ['one pod change -> all agents p99 (ms)', s.incremental.controllerP99Ms, f1, `< ${TARGETS.incrementalP99Ms}`],
    ['  replay baseline p50 (ms)', s.incremental.replayP50Ms, f1, ''],
    ['  replay baseline p99 (ms)', s.incremental.replayP99Ms, f1, ''],
    ['  translate per change (ms)', s.incremental.translateP50Ms, f2, ''],
    ['  controller CPU per change (ms)', s.incremental.controllerCpuMsPerChange, f1, ''],
    ['  replay CPU per change (ms)', s.incremental.replayCpuMsPerChange, f1, ''],
    ['controller RSS after load, no agents (MB)', s.memory.afterLoadRssMB, f0, ''],
    ['controller RSS steady, agents connected (MB)', s.memory.steadyRssMB, f0, `< ${TARGETS.steadyRssMB}`],
    ['controller peak RSS (MB)', s.memory.peakRssMB, f0, ''],
  ];
  const lines = [`${'metric'.padEnd(48)} ${'median'.padStart(9)} ${'min - max'.padStart(19)}  target`];
  for (const [name, sp, fmt, target] of rows) {
    lines.push(`${name.padEnd(48)} ${fmt(sp.median).padStart(9)} ${`${fmt(sp.min)} - ${fmt(sp.max)}`.padStart(19)}  ${target}`);
  }
  lines.push('', 'ratios (medians):');
  lines.push(`  full sync controller / replay ${f2(ratios.fullSyncVsReplay)}, controller ${o.agents} agents / 1 agent ${f2(ratios.fullSyncVsOneAgent)}`);
  lines.push(`  full sync CPU controller / replay ${f2(ratios.fullSyncCpuVsReplay)}, controller CPU per agent at ${o.agents} / at 1 ${f2(ratios.fullSyncCpuPerAgentVsOneAgent)}`);
  lines.push(`  change p99 controller / replay ${f2(ratios.incrementalP99VsReplay)}; p99 minus the ${o.debounceMs} ms debounce ${f1(ratios.incrementalP99MinusDebounceMs)} ms; CPU per change controller / replay ${f2(ratios.changeCpuVsReplay)}`);
  lines.push('', 'targets:');
  for (const t of r.targets) lines.push(`  ${t.met ? 'met   ' : 'MISSED'} ${t.metric}: ${f1(t.value)} (target < ${t.target})`);
  const c = r.correctness;
  lines.push('', `correctness: every agent held every resource after sync ${c.everyAgentHeldEverythingAfterSync}, after changes ${c.everyAgentHeldEverythingAfterChanges}; `
    + `replay ${c.replayAgentsHeldEverything}; one TLS connection per agent ${c.oneConnectionPerAgent}; NACKs ${c.nacks}; agent streams ended ${c.agentStreamsEnded}`);
  return lines.join('\n');
}

function machineInfo(): Record<string, unknown> {
  let commit = 'unknown';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* not a checkout */ }
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown', cpus: cpus.length, node: process.version, kernel: `${os.type()} ${os.release()}`,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)), commit,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const machine = machineInfo();
  const watchdog = setTimeout(() => {
    console.error(`controller bench: still running after ${o.maxMinutes} min; stopping`);
    for (const p of live) p.kill();
    process.exit(1);
  }, o.maxMinutes * 60_000);
  watchdog.unref();
  console.log(`controller bench: ${o.size.services} services, ${o.size.pods} pods, ${o.size.namespaces} namespaces, ${o.agents} agents in ${o.fleets} process(es), `
    + `${o.client} clients, ${o.runs} run(s), ${o.changes} changes, debounce ${o.debounceMs} ms`);
  console.log(`machine: ${String(machine.cpus)} x ${String(machine.cpuModel)}, node ${String(machine.node)}, load ${(machine.loadavgAtStart as number[]).join(' ')}`);

  const dir = mkdtempSync(join(os.tmpdir(), 'ambit-controller-bench-'));
  try {
    const ca = await CertificateAuthority.create();
    const serving = await issueServingCertificate(ca, { ipAddresses: ['127.0.0.1'] });
    const tls = { certPem: serving.certPem, keyPem: serving.keyPem };
    const runs: RunResult[] = [];
    for (let run = 0; run < o.runs; run++) runs.push(await runOnce(o, run, tls, ca.rootCertPem, dir));

    const report = summarize(o, runs);
    console.log(`\n${render(o, report)}`);
    const result = {
      schema: 1,
      startedAt: new Date(started).toISOString(),
      durationS: +((Date.now() - started) / 1000).toFixed(1),
      machine: { ...machine, loadavgAtEnd: os.loadavg().map((x) => +x.toFixed(2)) },
      config: {
        ...o.size, agents: o.agents, agentProcesses: o.fleets, runs: o.runs, changes: o.changes, debounceMs: o.debounceMs, gapMs: o.gapMs,
        agentClient: o.client === 'ztunnel'
          ? 'ztunnel: @ambit/ztunnel createXdsClient + createStateUpdater + StateStore (one TLS connection per agent)'
          : 'light: bare grpc-js delta client keeping names and versions, envelope decode only (one TLS connection per agent)',
        targets: TARGETS,
      },
      ...report,
      runs,
    };
    const outputs = [o.out];
    if (o.baseline) outputs.push(join(resultsDir, `baseline-${new Date(started).toISOString().slice(0, 10)}${o.client === 'light' ? '-light' : ''}.json`));
    for (const file of outputs) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`wrote ${file}`);
    }
    console.log(`(${result.durationS} s)`);
  } finally {
    clearTimeout(watchdog);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack ?? err);
    for (const p of live) p.kill();
    process.exit(1);
  },
);
