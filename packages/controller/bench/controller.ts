// The controller side of the scale benchmark, alone in its process so its CPU and RSS are its own: the controller's
// data path minus the informers, wired as src/app.ts wires it: object index -> incremental translator -> resource
// store -> delta ADS server (debounced) on the TLS gRPC server. Objects go into the index exactly as the informers'
// dispatcher puts them (index.set, then translator.changed).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, loadGrpcServices, loadProtoRoot,
  type DeltaDiscoveryResponse,
} from '@ambit/api';
import { createResourceStore, createXdsServer, startControlPlaneServer, type CallerIdentity, type ControlPlaneServer, type XdsServer } from '../src/index.js';
import { createMemoryIndex, createTranslator } from '../src/translate/index.js';
import { clockMs, cpuSecondsBetween, createLogTally, digestVersions, sampleProcess, serveOrchestrator } from './rpc.js';
import { buildScene, changedPod, CLUSTER_ID, type PodChange, type SceneSize } from './scene.js';

export interface ControllerLoadParams {
  size: SceneSize;
  debounceMs: number;
  tls: { certPem: string; keyPem: string };
}

export interface TypeDigest { count: number; digest: string }
export interface StoreDigest { [ADDRESS_TYPE_URL]: TypeDigest; [AUTHORIZATION_TYPE_URL]: TypeDigest }

export interface ControllerLoadResult {
  port: number;
  objects: number;
  /** Index load plus translator.resyncAll(): what a controller does once its informers have synced. */
  translateMs: number;
  translateCpuS: number;
  digest: StoreDigest;
}

export interface ChangeResult { t0: number; translateMs: number }

export interface MemoryReport {
  rssMB: number;
  /** Highest RSS sampled every 50 ms since load. */
  peakSampledMB: number;
  /** getrusage ru_maxrss: the kernel's peak for the whole process lifetime. */
  maxRssMB: number;
  heapUsedMB: number;
  externalMB: number;
}

const MB = 1024 * 1024;
// Warnings (refused streams, NACKs) are counted and reported with the connections.
const tally = createLogTally();
const logger = pino({ level: 'warn' }, tally);
const index = createMemoryIndex();
const store = createResourceStore();
const translator = createTranslator({ index, store, mesh: { clusterId: CLUSTER_ID }, logger });
let xds: XdsServer | undefined;
let server: ControlPlaneServer | undefined;
let peakRss = 0;

/** Stand-in for TokenReview (which is a network call per stream; not part of this benchmark): `bench-agent-<n>`. */
function authenticate(token: string): CallerIdentity | Error {
  const m = /^bench-agent-(\d+)$/.exec(token);
  if (!m) return new Error('token is not a bench agent token');
  return { namespace: 'istio-system', serviceAccount: 'ztunnel', podName: `ztunnel-${m[1]}`, podUid: `uid-ztunnel-${m[1]}` };
}

function storeDigest(): StoreDigest {
  const of = (typeUrl: string): TypeDigest => digestVersions(store.list(typeUrl).map((r) => [r.name, r.version] as const));
  return { [ADDRESS_TYPE_URL]: of(ADDRESS_TYPE_URL), [AUTHORIZATION_TYPE_URL]: of(AUTHORIZATION_TYPE_URL) };
}

async function load(p: ControllerLoadParams): Promise<ControllerLoadResult> {
  if (xds) throw new Error('load was called twice');
  // Parsing the .proto files is start-up work, not translation.
  loadProtoRoot();
  loadGrpcServices();
  const objects = buildScene(p.size);
  const cpu0 = sampleProcess();
  const t0 = performance.now();
  for (const o of objects) index.set(o);
  translator.resyncAll();
  const translateMs = performance.now() - t0;
  const translateCpuS = cpuSecondsBetween(cpu0, sampleProcess());
  xds = createXdsServer({ store, authenticate, clusterId: CLUSTER_ID, logger, debounceMs: p.debounceMs });
  server = await startControlPlaneServer({
    services: [xds], tls: { certChainPem: p.tls.certPem, keyPem: p.tls.keyPem }, port: 0, host: '127.0.0.1', logger,
  });
  setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()); }, 50).unref();
  return { port: server.port, objects: objects.length, translateMs, translateCpuS, digest: storeDigest() };
}

/**
 * The controller's initial push to a wildcard client, serialized once per type, for the replay baseline: the same
 * DeltaDiscoveryResponse bytes the ADS server writes on a fresh stream (minus a per-stream nonce).
 */
function writeSnapshot(p: { dir: string }): Record<string, string> {
  const serialize = (loadGrpcServices().ads as grpc.ServiceDefinition).DeltaAggregatedResources!.responseSerialize;
  const files: Record<string, string> = {};
  for (const typeUrl of [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL]) {
    const response: DeltaDiscoveryResponse = {
      type_url: typeUrl, nonce: 'replay-0', system_version_info: 'replay-0', removed_resources: [],
      resources: store.list(typeUrl).map((r) => ({ name: r.name, version: r.version, aliases: [...r.aliases], resource: r.any })),
    };
    const file = join(p.dir, `${typeUrl.split('/').pop()}.bin`);
    writeFileSync(file, serialize(response));
    files[typeUrl] = file;
  }
  return files;
}

/** One pod change, as the informer's update event would deliver it. `t0` is when the new object is in the index. */
function change(c: PodChange): ChangeResult {
  const current = index.get('Pod', c.namespace, c.name);
  if (!current) throw new Error(`change ${c.seq}: Pod ${c.namespace}/${c.name} is not in the index`);
  const next = changedPod(current, c);
  const t0 = clockMs();
  index.set(next);
  translator.changed('Pod', c.namespace, c.name);
  return { t0, translateMs: clockMs() - t0 };
}

function memory(): MemoryReport {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  return {
    rssMB: m.rss / MB, peakSampledMB: peakRss / MB, maxRssMB: process.resourceUsage().maxRSS / 1024,
    heapUsedMB: m.heapUsed / MB, externalMB: m.external / MB,
  };
}

/** Streams and the distinct client sockets behind them (each agent must have its own TLS connection). */
function connections(): { streams: number; distinctPeers: number; nodes: number; nacks: number; warnings: Record<string, number> } {
  const list = xds?.connections() ?? [];
  return {
    streams: list.length, distinctPeers: new Set(list.map((c) => c.peer)).size, nodes: new Set(list.map((c) => c.nodeId)).size,
    nacks: xds?.nacks().length ?? 0, warnings: { ...tally.counts },
  };
}

serveOrchestrator({
  load,
  // Cheap, unlike connections() (which copies every stream's acked versions): used right before the RSS sample.
  warnings: () => ({ nacks: xds?.nacks().length ?? 0, warnings: { ...tally.counts } }),
  snapshot: writeSnapshot,
  change,
  digest: storeDigest,
  memory,
  connections,
  async close() {
    xds?.close();
    await server?.close(1000);
  },
});
