// The demo's story, on either mesh (demo-mesh.ts): deploy bookinfo as a user writes it, enroll the namespace, prove
// mTLS, add a waypoint, shift reviews 90/10 then to v3, inject a fault, deny a path, print golden signals as it goes,
// and check each step's outcome (a failed check fails the demo). Every load is bounded (count at a fixed rate).
// runEmbeddedDemo runs it with no Kubernetes; kubernetes-demo.ts runs it on the cluster-in-a-box.
import { join } from 'node:path';
import type { KubeObject } from '@ambit/api';
import type { CaptureResult } from '../capture.js';
import { waitFor } from '../wait.js';
import { StepFailedError, type DemoConsole } from './console.js';
import type { DemoMesh } from './demo-mesh.js';
import { EmbeddedDemoMesh } from './embedded-demo-mesh.js';
import { DEMO_YAML_DIR, type LoadSummary } from './embedded-mesh.js';
import { warningExcerpt } from './log-excerpt.js';
import { connectionSignals, diffMetrics, requestSignals, type Sample } from './metrics.js';
export interface DemoOptions {
  /** Requests per second of the load steps (default 40). */
  rate?: number;
  /** Requests of the traffic-split step (default 300; >= 200 for the 90/10 check to mean something). */
  splitRequests?: number;
  /** Requests of the other load steps (default 120). */
  requests?: number;
  logLevel?: string;
  /** Keep the work directory (logs, config dir, pcaps) after the demo. */
  keep?: boolean;
  /** Where the user's YAML lives (default e2e/demo). */
  yamlDir?: string;
}

export interface DemoResult {
  /** Measured numbers per step, for the report and the test. */
  measurements: Record<string, unknown>;
  failures: string[];
  workDir: string;
  /** Prefix of every network namespace the demo created (`amb-...`). */
  prefix: string;
}

const NS = 'bookinfo';
/** The scheduler's decisions, made visible: bookinfo's front on node-1, the reviews versions and the waypoint on node-2. */
const PLACEMENT: Record<string, number> = { curl: 1, 'productpage-v1': 1, 'details-v1': 1, 'ratings-v1': 1, 'reviews-v1': 2, 'reviews-v2': 2, 'reviews-v3': 2 };

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const ms = (x: number | undefined): string => (x === undefined ? '-' : x < 10 ? x.toFixed(1) : x.toFixed(0));

export async function runEmbeddedDemo(ui: DemoConsole, options: DemoOptions = {}): Promise<DemoResult> {
  ui.step('Start a mesh with no Kubernetes: nodes and pods are network namespaces');
  ui.say('Two nodes plus a control-plane node, each a network namespace on a shared underlay. The Ambit controller runs in\n' +
    'embedded mode: it reads Kubernetes/Istio YAML from a directory (no apiserver), serves delta xDS and the CA on its\n' +
    'loopback (relayed into each node, like istiod\'s ClusterIP). One Ambit node agent per node.');
  const mesh = await ui.progress('starting nodes, controller and node agents', (update) =>
    EmbeddedDemoMesh.start({ nodes: 2, placement: (d) => PLACEMENT[d] ?? 1, keepWorkDir: options.keep ?? false, ...(options.logLevel ? { logLevel: options.logLevel } : {}) }, update));
  ui.look(`the controller reads ${mesh.mesh.configDir}; logs are in ${mesh.workDir}`);
  return runStory(ui, mesh, options);
}

/**
 * Tells the story on a started mesh, then cleans up (always: a failed check or an error ends the story early). The
 * result lists the failed checks; an error that is not a check counts as one.
 */
export async function runStory(ui: DemoConsole, mesh: DemoMesh, options: DemoOptions = {}): Promise<DemoResult> {
  const yaml = (f: string): string => join(options.yamlDir ?? DEMO_YAML_DIR, f);
  const measurements: Record<string, unknown> = {};
  try {
    await tell(ui, mesh, yaml, { rate: options.rate ?? 40, requests: options.requests ?? 120, splitRequests: options.splitRequests ?? 300, measurements });
  } catch (err) {
    if (!(err instanceof StepFailedError)) {
      ui.failures.push((err as Error).message);
      ui.say(`error: ${(err as Error).message}`);
    }
    const warnings = warningExcerpt(mesh.logDirs);
    if (warnings.length > 0) ui.say(`the mesh's last warnings and errors:\n${warnings.map((l) => `  ${l}`).join('\n')}`);
    ui.look(`logs of every process: ${mesh.workDir}${options.keep ? '' : ' (removed at exit; rerun with --keep to keep them)'}`);
  } finally {
    ui.step('Clean up');
    await ui.progress(mesh.closeDescription, () => mesh.close());
    ui.say(options.keep ? `kept ${mesh.workDir}` : 'nothing is left: no namespaces, no processes, no files');
  }
  return { measurements, failures: [...ui.failures], workDir: mesh.workDir, prefix: mesh.prefix };
}

interface StoryContext {
  rate: number;
  requests: number;
  splitRequests: number;
  measurements: Record<string, unknown>;
}

/** What a plain-text hop between bookinfo's services looks like on the wire. */
const PLAIN_HOPS = ['GET /reviews/', 'GET /ratings/', 'GET /details/', 'GET /productpage'];
const SERVICES = ['productpage', 'details', 'reviews', 'ratings'];

async function tell(ui: DemoConsole, mesh: DemoMesh, yaml: (f: string) => string, ctx: StoryContext): Promise<void> {
  const { rate, requests, measurements } = ctx;
  ui.step('Deploy the bookinfo sample from the YAML a user writes');
  await mesh.deployApps(ui, [yaml('bookinfo.yaml'), yaml('curl.yaml')]);
  ui.table(['pod', 'node', 'ip'], await mesh.podRows(NS));
  const page = mesh.serviceUrl(NS, 'productpage', '/productpage');

  // Plain traffic: the cross-node hops (e.g. productpage -> reviews, reviews -> ratings) cross node-1's link in clear.
  const plain = await loadWithCapture(ui, mesh, [page], requests, rate, 'plain text');
  const s0 = plain.load.byUrl[page]!;
  clientTable(ui, 'productpage (seen by curl)', plain.load, page);
  ui.check(s0.statuses['200'] === requests, `all ${requests} pages answered 200`, JSON.stringify({ ...s0.statuses, ...s0.errors }));
  // kube-proxy picks a version per connection, and productpage keeps its connections alive: at this rate one or two
  // connections serve every request, so which versions show is chance (not a check); what matters is that nothing
  // steers it yet. The waypoint's steps below are the checks on versions.
  ui.say(`reviews versions seen by productpage: ${Object.entries(s0.versions).map(([k, n]) => `${k}=${n}`).join(' ')} (kube-proxy picks one per connection;\n` +
    'productpage keeps its connections alive, so one or two picks serve every request: nothing steers them yet)');
  const seen = PLAIN_HOPS.filter((h) => plain.capture.contains(h));
  ui.check(seen.length > 0, 'the capture on node-1\'s link shows plain HTTP between the services', seen.length ? seen.map((h) => `"${h}"`).join(', ') : `none of ${PLAIN_HOPS.join(', ')} in ${plain.capture.packets.length} packets`);
  measurements.plain = { versions: s0.versions, p50Ms: s0.p50Ms, p99Ms: s0.p99Ms, plainHops: seen };

  ui.step('Enroll the namespace in the mesh');
  await mesh.enroll(ui, NS);
  ui.say('Capture applies to new connections: keep-alive connections the apps opened before stay as they were.');
  await mesh.reconnectApps(ui, NS);

  ui.step('Traffic is now mutual TLS');
  const before = await mesh.agentMetrics();
  const secure = await loadWithCapture(ui, mesh, [page], requests, rate, 'HBONE');
  const l4 = connectionSignals(diffMetrics(before, await mesh.agentMetrics()));
  const s1 = secure.load.byUrl[page]!;
  clientTable(ui, 'productpage (seen by curl)', secure.load, page);
  ui.say('L4 signals from the node agents (reporter=destination; request-level signals need a waypoint):');
  ui.table(['service', 'conns', 'mTLS', 'failed', 'bytes in', 'bytes out'], l4.map((s) => [s.service, String(s.opened), pct(s.opened ? s.mutualTls / s.opened : 0), String(s.failed), String(s.bytesReceived), String(s.bytesSent)]));
  ui.look('istio_tcp_connections_opened_total{connection_security_policy="mutual_tls"} on each agent\'s :15020/metrics');
  ui.check(s1.statuses['200'] === requests, `all ${requests} pages answered 200 through the mesh`, JSON.stringify({ ...s1.statuses, ...s1.errors }));
  // Only reviews v2 and v3 call ratings: when the agents' per-connection picks sent every page to v1 (productpage keeps
  // one or two connections alive, so this is chance), nobody opened a connection to ratings and there is nothing to
  // check there. Every service that was called must have had only mutual-TLS connections.
  const ratingsCalled = (s1.versions.v2 ?? 0) + (s1.versions.v3 ?? 0) > 0;
  for (const svc of SERVICES) {
    const row = l4.find((s) => s.service === svc);
    if (svc === 'ratings' && !ratingsCalled) {
      ui.check(row === undefined || row.mutualTls === row.opened, 'ratings was not called (only reviews v1 answered, and v1 does not call ratings)', row ? `${row.mutualTls}/${row.opened}` : undefined);
      continue;
    }
    ui.check(row !== undefined && row.opened > 0 && row.mutualTls === row.opened, `every connection to ${svc} was mutual TLS`, row ? `${row.mutualTls}/${row.opened}` : 'no connections reported');
  }
  measurements.ratingsCalled = ratingsCalled;
  const hbonePackets = secure.capture.packets.filter((p) => p.dstPort === 15008 || p.srcPort === 15008).length;
  const stillPlain = PLAIN_HOPS.filter((h) => secure.capture.contains(h));
  ui.check(stillPlain.length === 0, 'the capture on node-1\'s link shows no plain HTTP any more', stillPlain.length ? `still seen: ${stillPlain.join(', ')}` : undefined);
  ui.check(hbonePackets > 0 && secure.capture.packets.some((p) => p.dstPort === 15008 && p.payload[0] === 0x16), 'the node link carries TLS on port 15008 (HBONE)', `${hbonePackets} packets to/from :15008`);
  measurements.mtls = { services: l4, hbonePackets };

  ui.step('Add a waypoint for L7');
  await mesh.addWaypoint(ui, NS, yaml('waypoint.yaml'), SERVICES);
  ui.say('The agents choose a path per connection: keep-alive connections opened before the waypoint stay direct.');
  await mesh.reconnectApps(ui, NS);
  await settle(ui, mesh, page, measurements);
  const wp = await loadWithSignals(ui, mesh, [page], requests, rate);
  ui.check(wp.load.byUrl[page]!.statuses['200'] === requests, `all ${requests} pages answered 200 through the waypoint`, JSON.stringify({ ...wp.load.byUrl[page]!.statuses, ...wp.load.byUrl[page]!.errors }));
  for (const svc of SERVICES) {
    ui.check((wp.signals.find((s) => s.service === svc)?.requests ?? 0) > 0, `the waypoint saw requests to ${svc}`);
  }
  measurements.waypoint = wp.signals;

  ui.step('Shift reviews traffic: 90% v1, 10% v2');
  ui.say(`kubectl apply -f ${yaml('reviews-90-10.yaml')}`);
  await applyAndWait(ui, mesh, yaml('reviews-90-10.yaml'));
  const split = await loadWithSignals(ui, mesh, [page], ctx.splitRequests, rate);
  const v = split.load.byUrl[page]!.versions;
  const total = (v.v1 ?? 0) + (v.v2 ?? 0) + (v.v3 ?? 0);
  const v2Share = total ? (v.v2 ?? 0) / total : 0;
  ui.say(`reviews versions seen by productpage: v1=${v.v1 ?? 0} v2=${v.v2 ?? 0} v3=${v.v3 ?? 0} (v2 ${pct(v2Share)})`);
  ui.look('the "reviews" row: the same service, now split by the waypoint');
  ui.check((v.v3 ?? 0) === 0, 'no request reached reviews v3');
  ui.check(total >= 200 && v2Share >= 0.04 && v2Share <= 0.16, `v1:v2 is 90:10 within tolerance over ${total} requests`, `v2 ${pct(v2Share)}, allowed 4%..16%`);
  measurements.split = { v1: v.v1 ?? 0, v2: v.v2 ?? 0, v3: v.v3 ?? 0, v2Share };

  ui.step('Promote reviews v3: 100% of traffic');
  ui.say(`kubectl apply -f ${yaml('reviews-v3.yaml')}`);
  await applyAndWait(ui, mesh, yaml('reviews-v3.yaml'));
  const promoted = await loadWithSignals(ui, mesh, [page], requests, rate);
  const pv = promoted.load.byUrl[page]!.versions;
  ui.check((pv.v3 ?? 0) === requests, `all ${requests} requests served by reviews v3 (red stars)`, JSON.stringify(pv));
  measurements.promote = pv;

  ui.step('Inject a fault: abort 50% of calls to ratings with 503');
  ui.say(`kubectl apply -f ${yaml('ratings-fault.yaml')}`);
  await applyAndWait(ui, mesh, yaml('ratings-fault.yaml'));
  const fault = await loadWithSignals(ui, mesh, [page], ctx.splitRequests, rate);
  const ratings = fault.signals.find((s) => s.service === 'ratings');
  const fp = fault.load.byUrl[page]!;
  ui.look('the "ratings" row: its error rate; productpage still answers 200 and shows "ratings unavailable"');
  ui.check(fp.statuses['200'] === ctx.splitRequests, 'productpage degrades gracefully: every page still answered 200', JSON.stringify(fp.statuses));
  ui.check(ratings !== undefined && ratings.requests >= 100 && Math.abs(ratings.errorRate - 0.5) <= 0.15, 'ratings error rate at the waypoint is about 50%', ratings ? `${pct(ratings.errorRate)} of ${ratings.requests}` : 'no ratings requests');
  ui.check(Math.abs(fp.ratingsErrors / fp.count - 0.5) <= 0.15, 'about half of the pages show the ratings failure', `${fp.ratingsErrors}/${fp.count}`);
  measurements.fault = { ratingsErrorRate: ratings?.errorRate, ratingsRequests: ratings?.requests, pagesWithRatingsError: fp.ratingsErrors, pages: fp.count };
  await mesh.deleteConfig(yaml('ratings-fault.yaml'));
  await ui.progress('removing the fault', () => waitFor(async () => !hasObject((await mesh.waypointConfigDump()).staticConfig?.configObjects ?? [], 'VirtualService', NS, 'ratings'),
    { timeoutMs: 30_000, intervalMs: 200, message: 'the waypoint to drop the ratings fault' }));
  ui.say(`fault removed (kubectl delete -f ${yaml('ratings-fault.yaml')})`);

  ui.step('Deny a path: nobody in the mesh may call productpage /health');
  ui.say(`kubectl apply -f ${yaml('deny-health.yaml')}`);
  const health = mesh.serviceUrl(NS, 'productpage', '/health');
  await applyAndWait(ui, mesh, yaml('deny-health.yaml'));
  const deny = await loadWithSignals(ui, mesh, [page, health], requests, rate);
  const dh = deny.load.byUrl[health]!;
  const dp = deny.load.byUrl[page]!;
  ui.look('the productpage row: 403 answers are client errors, not 5xx');
  ui.check(dh.statuses['403'] === dh.count, `every GET /health was denied with 403`, JSON.stringify(dh.statuses));
  ui.check(dp.statuses['200'] === dp.count, `every GET /productpage still answered 200`, JSON.stringify(dp.statuses));
  measurements.deny = { health: dh.statuses, productpage: dp.statuses };
}

/**
 * After the apps' pods were replaced, waits (bounded) until 5 pages in a row answer 200, the way Istio's own tests
 * retry until a new path works, so the measured steps see the mesh converged. What failed meanwhile is printed and
 * kept in the measurements: a slow convergence is visible, not hidden.
 */
async function settle(ui: DemoConsole, mesh: DemoMesh, page: string, measurements: Record<string, unknown>): Promise<void> {
  const started = Date.now();
  const failed: Record<string, number> = {};
  let probes = 0;
  await ui.progress('waiting until pages answer through the new path (5 in a row)', () => waitFor(async () => {
    const r = (await mesh.load([page], 5, 10)).byUrl[page]!;
    probes += r.count;
    for (const [k, n] of Object.entries({ ...r.statuses, ...r.errors })) if (k !== '200') failed[k] = (failed[k] ?? 0) + n;
    return r.statuses['200'] === 5;
  }, { timeoutMs: 60_000, intervalMs: 100, message: 'pages to answer 200 through the new path' }));
  const seconds = (Date.now() - started) / 1000;
  measurements.settle = { seconds, probes, failed };
  if (Object.keys(failed).length > 0) ui.say(`the new path settled after ${seconds.toFixed(1)} s; before that, of ${probes} probe pages: ${JSON.stringify(failed)}`);
}

/** Runs the load while capturing on node-1's link (where the cross-node hops pass). */
async function loadWithCapture(ui: DemoConsole, mesh: DemoMesh, urls: string[], count: number, rate: number, label: string): Promise<{ load: LoadSummary; capture: CaptureResult }> {
  return await ui.progress(`sending ${count} requests at ${rate}/s while capturing node-1's link (${label})`, async () => {
    const { capture, result } = await mesh.captureNodeLink(() => mesh.load(urls, count, rate));
    return { load: result, capture };
  });
}

/** Runs the load and computes per-service golden signals from the waypoint's metrics over the run. */
async function loadWithSignals(ui: DemoConsole, mesh: DemoMesh, urls: string[], count: number, rate: number): Promise<{ load: LoadSummary; signals: ReturnType<typeof requestSignals> }> {
  const before: Sample[] = await mesh.waypointMetrics();
  const load = await ui.progress(`sending ${count} requests at ${rate}/s from curl`, () => mesh.load(urls, count, rate));
  const signals = requestSignals(diffMetrics(before, await mesh.waypointMetrics()), load.seconds);
  ui.say('golden signals at the waypoint (istio_requests_total, istio_request_duration_milliseconds):');
  ui.table(['service', 'req/s', 'errors', 'p50 ms', 'p99 ms', 'codes'], signals.map((s) => [s.service, s.rate.toFixed(1), pct(s.errorRate), ms(s.p50Ms), ms(s.p99Ms), Object.entries(s.codes).map(([c, n]) => `${c}:${n}`).join(' ')]));
  return { load, signals };
}

function clientTable(ui: DemoConsole, title: string, load: LoadSummary, url: string): void {
  const s = load.byUrl[url]!;
  const errors = Object.entries(s.statuses).filter(([c]) => c === '0' || c.startsWith('5')).reduce((n, [, k]) => n + k, 0);
  ui.table(['service', 'req/s', 'errors', 'p50 ms', 'p99 ms', 'reviews versions'], [[title, (s.count / load.seconds).toFixed(1), pct(errors / s.count), ms(s.p50Ms), ms(s.p99Ms), Object.entries(s.versions).map(([k, n]) => `${k}:${n}`).join(' ')]]);
}

/** Applies a user's YAML and waits until the waypoint holds every object of it (by kind/namespace/name and version). */
async function applyAndWait(ui: DemoConsole, mesh: DemoMesh, file: string): Promise<void> {
  const versionBefore = JSON.stringify((await mesh.waypointConfigDump()).staticConfig?.configVersion);
  const objects: KubeObject[] = await mesh.applyConfig(file);
  await ui.progress('waiting for the waypoint to receive it', () => waitFor(async () => {
    const sc = (await mesh.waypointConfigDump()).staticConfig ?? {};
    const rejected = JSON.stringify(sc.rejectedConfigObjects ?? []);
    for (const o of objects) {
      if (rejected.includes(o.metadata.name) && rejected.includes(o.kind!)) throw new StepFailedError(`the waypoint rejected ${o.kind} ${o.metadata.name}: ${rejected}`);
    }
    const keys = sc.configObjects ?? [];
    const present = objects.every((o) => hasObject(keys, o.kind!, o.metadata.namespace ?? 'default', o.metadata.name));
    return present && JSON.stringify(sc.configVersion) !== versionBefore;
  }, { timeoutMs: 30_000, intervalMs: 200, message: `the waypoint to receive ${file}` }));
}

/** Does the waypoint's list of config object keys hold kind namespace/name? */
function hasObject(keys: readonly string[], kind: string, namespace: string, name: string): boolean {
  return keys.some((k) => k.includes(kind) && k.includes(`${namespace}/${name}`));
}
