// A fleet of node agents in one process, each on its own gRPC+TLS connection, subscribed wildcard to
// istio.workload.Address and istio.security.Authorization. Two kinds of agent:
//   ztunnel  @ambit/ztunnel's createXdsClient (the node agent's real discovery path: decode every resource,
//            convert, apply through the state updater, ACK/NACK) feeding its own StateStore;
//   light    a bare grpc-js delta client that keeps names and versions and ACKs, decoding only the envelope (and
//            the one armed resource): the smallest client-side cost, so the controller's share of a full sync
//            shows on a machine where the agents share the controller's cores.
// The fleet reports when every agent holds the full set and when every agent has applied an armed change.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, decodeAddress, loadGrpcServices, toStruct,
  type DeltaDiscoveryRequest, type DeltaDiscoveryResponse,
} from '@ambit/api';
import { createStateStore, createStateUpdater, createXdsClient, type StateUpdater } from '@ambit/ztunnel';
import { clockMs, createLogTally, digestVersions, notifyOrchestrator, serveOrchestrator } from './rpc.js';
import { CLUSTER_ID, type WorkloadExpectation } from './scene.js';
import type { StoreDigest } from './controller.js';

export type AgentKind = 'ztunnel' | 'light';

export interface FleetStartParams {
  kind: AgentKind;
  /** `127.0.0.1:<port>` */
  hostPort: string;
  rootPem: string;
  dir: string;
  /** Agents `first .. first+count-1` (their index names the node, pod and token). */
  first: number;
  count: number;
  /** Sizes of the full set. */
  expect: { addresses: number; authorizations: number };
  timeoutMs: number;
}

export interface FleetSyncResult {
  /** Just before the first client was started (this process's clock). */
  startedAt: number;
  /** Per agent: first response applied, and full set held. */
  firstResponseAt: number[];
  syncedAt: number[];
}

export interface SeenEvent { seq: number; at: number[] }

/** What the fleet needs of one agent, whatever its kind. */
interface Agent {
  n: number;
  firstResponseAt: number;
  syncedAt: number;
  seenSeq: number;
  /** Resource name -> version per type URL, as the client holds them. */
  held(): Record<string, Record<string, string>>;
  /** Human-readable state for a timeout message. */
  describe(): string;
  close(): void;
}

/** Called by an agent after applying a response: `applied` tells whether a workload uid was in it and its state. */
interface AgentHooks {
  afterApply(at: number, holdsFullSet: boolean, touched: (uid: string) => boolean, matches: (e: WorkloadExpectation) => boolean): void;
}

let agents: Agent[] = [];
// Agent warnings (stream ended, reconnecting, NACKs) are counted, not printed.
const tally = createLogTally();
const agentLogger = pino({ level: 'warn' }, tally);
let armed: { seq: number; expect: WorkloadExpectation; at: number[]; remaining: number } | undefined;

const nodeId = (n: number): string => `ztunnel~10.0.${(n >> 8) & 255}.${n & 255}~ztunnel-${n}.istio-system~istio-system.svc.cluster.local`;
const nodeMetadata = (n: number): Record<string, string> => ({ NODE_NAME: `node-${n}`, NAME: `ztunnel-${n}`, NAMESPACE: 'istio-system', CLUSTER_ID });

function ztunnelAgent(p: FleetStartParams, n: number, rootCaPath: string, logger: Logger, hooks: AgentHooks): Agent & { start(): void } {
  const state = createStateStore();
  const inner = createStateUpdater({ store: state });
  let agent: Agent;
  // The updater sees every response the client decoded; only the first one's time is taken here.
  const updater: StateUpdater = {
    applyDelta(batch) {
      if (Number.isNaN(agent.firstResponseAt)) agent.firstResponseAt = clockMs();
      return inner.applyDelta(batch);
    },
    replaceAll: (snapshot) => inner.replaceAll(snapshot),
  };
  const client = createXdsClient({
    address: `https://${p.hostPort}`,
    rootCaPath,
    authToken: { token: `bench-agent-${n}` },
    clusterId: CLUSTER_ID,
    node: { id: nodeId(n), metadata: nodeMetadata(n) },
    updater,
    logger,
    backoff: { initialMs: 50, maxMs: 1000 },
  });
  const counts = (): [number, number] => [state.listWorkloads().length + state.listServices().length, state.listPolicies().length];
  let synced = false;
  state.onChange((change) => {
    const at = clockMs();
    // Counting the state is O(size): only until the full set is there.
    const full = synced || (() => {
      const [a, z] = counts();
      return a === p.expect.addresses && z === p.expect.authorizations;
    })();
    synced = full;
    hooks.afterApply(at, full, (uid) => change.workloads.includes(uid), (e) => {
      const w = state.workloadByUid(e.uid);
      return w !== undefined && w.status === e.status
        && (e.servicePresent === undefined || e.servicePresent in w.services)
        && (e.serviceAbsent === undefined || !(e.serviceAbsent in w.services));
    });
  });
  agent = {
    n, firstResponseAt: NaN, syncedAt: NaN, seenSeq: -1,
    held: () => ({ ...client.status().resourceVersions }),
    describe() {
      const s = client.status();
      const [a, z] = counts();
      return `agent ${n}: connected=${s.connected} addresses=${a} authorizations=${z} lastError=${s.lastError ?? '-'}`;
    },
    close: () => client.close(),
  };
  return Object.assign(agent, { start: () => client.start() });
}

type AdsCall = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

function lightAgent(p: FleetStartParams, n: number, logger: Logger, hooks: AgentHooks): Agent & { start(): void } {
  const { AdsClient } = loadGrpcServices();
  const held = new Map<string, Map<string, string>>([[ADDRESS_TYPE_URL, new Map()], [AUTHORIZATION_TYPE_URL, new Map()]]);
  const client = new AdsClient(p.hostPort, grpc.credentials.createSsl(Buffer.from(p.rootPem)));
  let call: AdsCall | undefined;
  let lastError: string | undefined;
  let agent: Agent;
  const full = (): boolean => held.get(ADDRESS_TYPE_URL)!.size === p.expect.addresses && held.get(AUTHORIZATION_TYPE_URL)!.size === p.expect.authorizations;
  const onResponse = (c: AdsCall, resp: DeltaDiscoveryResponse): void => {
    const at = clockMs();
    if (Number.isNaN(agent.firstResponseAt)) agent.firstResponseAt = at;
    const typeUrl = resp.type_url ?? '';
    const versions = held.get(typeUrl);
    if (!versions) {
      c.write({ type_url: typeUrl, response_nonce: resp.nonce ?? '', error_detail: { code: 3, message: `type ${typeUrl} is not subscribed` } });
      return;
    }
    const resources = resp.resources ?? [];
    for (const r of resources) versions.set(r.name ?? '', r.version ?? '');
    for (const name of resp.removed_resources ?? []) versions.delete(name);
    c.write({ type_url: typeUrl, response_nonce: resp.nonce ?? '' });
    hooks.afterApply(at, full(), (uid) => resources.some((r) => r.name === uid), (e) => {
      const r = resources.find((x) => x.name === e.uid);
      const w = r?.resource?.value ? decodeAddress(r.resource.value).workload : undefined;
      if (!w) return false;
      const services = w.services ?? {};
      return (w.status === 'UNHEALTHY' ? 'Unhealthy' : 'Healthy') === e.status
        && (e.servicePresent === undefined || e.servicePresent in services)
        && (e.serviceAbsent === undefined || !(e.serviceAbsent in services));
    });
  };
  agent = {
    n, firstResponseAt: NaN, syncedAt: NaN, seenSeq: -1,
    held: () => Object.fromEntries([...held].map(([t, m]) => [t, Object.fromEntries(m)])),
    describe: () => `agent ${n}: addresses=${held.get(ADDRESS_TYPE_URL)!.size} authorizations=${held.get(AUTHORIZATION_TYPE_URL)!.size} lastError=${lastError ?? '-'}`,
    close() {
      call?.cancel();
      client.close();
    },
  };
  const start = (): void => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer bench-agent-${n}`);
    md.set('clusterid', CLUSTER_ID);
    const c = (client as unknown as { DeltaAggregatedResources(md: grpc.Metadata): AdsCall }).DeltaAggregatedResources(md);
    call = c;
    c.on('data', (resp: DeltaDiscoveryResponse) => onResponse(c, resp));
    // No reconnect: a stream that ends is a failed run (the timeout names this agent), and is counted.
    c.on('error', (err: grpc.ServiceError) => {
      if (err.code === grpc.status.CANCELLED) return;
      lastError = `${grpc.status[err.code] ?? err.code}: ${err.details}`;
      logger.warn({ agent: n, err: lastError }, 'light agent stream failed');
    });
    for (const typeUrl of held.keys()) {
      c.write({ node: { id: nodeId(n), metadata: toStruct(nodeMetadata(n)) }, type_url: typeUrl, resource_names_subscribe: [], initial_resource_versions: {} });
    }
  };
  return Object.assign(agent, { start });
}

interface Launched { list: Agent[]; startedAt: number; synced: Promise<void> }

/** Creates and starts `count` agents; `synced` settles once every one holds the full set (or at the timeout). */
function launch(p: FleetStartParams, first: number, count: number, logger: Logger): Launched {
  const rootCaPath = join(p.dir, `root-cert-${process.pid}.pem`);
  writeFileSync(rootCaPath, p.rootPem);
  const list: (Agent & { start(): void })[] = [];
  let remaining = count;
  let done!: () => void;
  const allSynced = new Promise<void>((resolve) => { done = resolve; });
  for (let k = 0; k < count; k++) {
    const n = first + k;
    let agent: Agent | undefined;
    const hooks: AgentHooks = {
      afterApply(at, holdsFullSet, touched, matches) {
        if (!agent) return;
        if (Number.isNaN(agent.syncedAt)) {
          if (holdsFullSet) {
            agent.syncedAt = at;
            if (--remaining === 0) done();
          }
          return;
        }
        const a = armed;
        if (!a || agent.seenSeq === a.seq || !touched(a.expect.uid) || !matches(a.expect)) return;
        agent.seenSeq = a.seq;
        a.at[k] = at;
        if (--a.remaining === 0) {
          armed = undefined;
          notifyOrchestrator('seen', { seq: a.seq, at: a.at } satisfies SeenEvent);
        }
      },
    };
    const made = p.kind === 'light' ? lightAgent(p, n, logger, hooks) : ztunnelAgent(p, n, rootCaPath, logger, hooks);
    agent = made;
    list.push(made);
  }
  const startedAt = clockMs();
  for (const a of list) a.start();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const late = list.filter((a) => Number.isNaN(a.syncedAt));
      reject(new Error(`${late.length} of ${list.length} agents did not hold the full set (${p.expect.addresses} addresses, `
        + `${p.expect.authorizations} authorizations) within ${p.timeoutMs} ms; ${late.slice(0, 3).map((a) => a.describe()).join('; ')}`));
    }, p.timeoutMs);
  });
  const synced = Promise.race([allSynced, timeout]).finally(() => clearTimeout(timer));
  return { list, startedAt, synced };
}

/**
 * One throwaway agent syncs the full set and disconnects: parses the protos, warms the JIT on decode/convert/apply
 * and the TLS code, as a long-running agent process is warm. Not measured.
 */
async function warmup(p: FleetStartParams): Promise<void> {
  const w = launch(p, 100_000 + process.pid, 1, pino({ level: 'silent' }));
  try {
    await w.synced;
  } finally {
    for (const a of w.list) a.close();
  }
}

async function start(p: FleetStartParams): Promise<FleetSyncResult> {
  if (agents.length > 0) throw new Error('fleet already started');
  const l = launch(p, p.first, p.count, agentLogger);
  agents = l.list;
  await l.synced;
  return { startedAt: l.startedAt, firstResponseAt: agents.map((a) => a.firstResponseAt), syncedAt: agents.map((a) => a.syncedAt) };
}

/** The next change every agent must apply; the fleet notifies `seen` once all have. */
function arm(p: { seq: number; expect: WorkloadExpectation }): void {
  if (agents.length === 0) throw new Error('arm before start');
  armed = { seq: p.seq, expect: p.expect, at: new Array<number>(agents.length).fill(NaN), remaining: agents.length };
}

/** What each agent holds (names and versions), digested like the controller's store. */
function digest(): StoreDigest[] {
  return agents.map((a) => {
    const held = a.held();
    return {
      [ADDRESS_TYPE_URL]: digestVersions(Object.entries(held[ADDRESS_TYPE_URL] ?? {})),
      [AUTHORIZATION_TYPE_URL]: digestVersions(Object.entries(held[AUTHORIZATION_TYPE_URL] ?? {})),
    };
  });
}

function stop(): void {
  for (const a of agents) a.close();
  agents = [];
  armed = undefined;
}

serveOrchestrator({ warmup, start, arm, digest, stop, warnings: () => ({ ...tally.counts }) });
