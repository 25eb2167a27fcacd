// A fleet of node agents in one process: each is the real agent discovery path (@ambit/ztunnel's createXdsClient:
// delta ADS over its own gRPC+TLS connection, wildcard Address and Authorization, decode, convert, the state
// updater, ACK/NACK) feeding its own StateStore. The fleet reports when every agent holds the full set and when
// every agent has applied an armed change, with timestamps taken inside the state listener.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '@ambit/api';
import {
  createStateStore, createStateUpdater, createXdsClient,
  type StateStore, type StateUpdater, type XdsClient,
} from '@ambit/ztunnel';
import { clockMs, digestVersions, notifyOrchestrator, serveOrchestrator } from './rpc.js';
import { CLUSTER_ID, type WorkloadExpectation } from './scene.js';
import type { StoreDigest } from './controller.js';

export interface FleetStartParams {
  /** `https://127.0.0.1:<port>` */
  address: string;
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

interface Agent {
  n: number;
  state: StateStore;
  client: XdsClient;
  firstResponseAt: number;
  syncedAt: number;
  seenSeq: number;
}

let agents: Agent[] = [];
let armed: { seq: number; expect: WorkloadExpectation; at: number[]; remaining: number } | undefined;

function matches(agent: Agent, e: WorkloadExpectation): boolean {
  const w = agent.state.workloadByUid(e.uid);
  if (!w || w.status !== e.status) return false;
  if (e.servicePresent !== undefined && !(e.servicePresent in w.services)) return false;
  if (e.serviceAbsent !== undefined && e.serviceAbsent in w.services) return false;
  return true;
}

function holdsFullSet(a: Agent, expect: FleetStartParams['expect']): boolean {
  return a.state.listPolicies().length === expect.authorizations
    && a.state.listWorkloads().length + a.state.listServices().length === expect.addresses;
}

interface Launched { list: Agent[]; startedAt: number; synced: Promise<void> }

/** Creates and starts `count` agents; `synced` settles once every one holds the full set (or at the timeout). */
function launch(p: FleetStartParams, first: number, count: number, logger: Logger): Launched {
  const rootCaPath = join(p.dir, `root-cert-${process.pid}.pem`);
  writeFileSync(rootCaPath, p.rootPem);
  const list: Agent[] = [];
  let remaining = count;
  let done!: () => void;
  const allSynced = new Promise<void>((resolve) => { done = resolve; });
  for (let k = 0; k < count; k++) {
    const n = first + k;
    const state = createStateStore();
    const inner = createStateUpdater({ store: state });
    const agent: Agent = { n, state, client: undefined as unknown as XdsClient, firstResponseAt: NaN, syncedAt: NaN, seenSeq: -1 };
    // The updater sees every response the client decoded; only the first one's time is taken here.
    const updater: StateUpdater = {
      applyDelta(batch) {
        if (Number.isNaN(agent.firstResponseAt)) agent.firstResponseAt = clockMs();
        return inner.applyDelta(batch);
      },
      replaceAll: (snapshot) => inner.replaceAll(snapshot),
    };
    state.onChange((change) => {
      const at = clockMs();
      if (Number.isNaN(agent.syncedAt)) {
        if (holdsFullSet(agent, p.expect)) {
          agent.syncedAt = at;
          if (--remaining === 0) done();
        }
        return;
      }
      const a = armed;
      if (!a || agent.seenSeq === a.seq || !change.workloads.includes(a.expect.uid) || !matches(agent, a.expect)) return;
      agent.seenSeq = a.seq;
      a.at[k] = at;
      if (--a.remaining === 0) {
        armed = undefined;
        notifyOrchestrator('seen', { seq: a.seq, at: a.at } satisfies SeenEvent);
      }
    });
    agent.client = createXdsClient({
      address: p.address,
      rootCaPath,
      authToken: { token: `bench-agent-${n}` },
      clusterId: CLUSTER_ID,
      node: {
        id: `ztunnel~10.0.${(n >> 8) & 255}.${n & 255}~ztunnel-${n}.istio-system~istio-system.svc.cluster.local`,
        metadata: { NODE_NAME: `node-${n}`, NAME: `ztunnel-${n}`, NAMESPACE: 'istio-system', CLUSTER_ID },
      },
      updater,
      logger,
      backoff: { initialMs: 50, maxMs: 1000 },
    });
    list.push(agent);
  }
  const startedAt = clockMs();
  for (const a of list) a.client.start();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const late = list.filter((a) => Number.isNaN(a.syncedAt));
      const sample = late.slice(0, 3).map((a) => {
        const s = a.client.status();
        return `agent ${a.n}: connected=${s.connected} workloads=${a.state.listWorkloads().length} services=${a.state.listServices().length} `
          + `policies=${a.state.listPolicies().length} lastError=${s.lastError ?? '-'}`;
      });
      reject(new Error(`${late.length} of ${list.length} agents did not hold the full set (${p.expect.addresses} addresses, `
        + `${p.expect.authorizations} authorizations) within ${p.timeoutMs} ms; ${sample.join('; ')}`));
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
    for (const a of w.list) a.client.close();
  }
}

async function start(p: FleetStartParams): Promise<FleetSyncResult> {
  if (agents.length > 0) throw new Error('fleet already started');
  const l = launch(p, p.first, p.count, pino({ level: 'silent' }));
  agents = l.list;
  await l.synced;
  return { startedAt: l.startedAt, firstResponseAt: agents.map((a) => a.firstResponseAt), syncedAt: agents.map((a) => a.syncedAt) };
}

/** The next change every agent must apply; the fleet notifies `seen` once all have. */
function arm(p: { seq: number; expect: WorkloadExpectation }): void {
  if (agents.length === 0) throw new Error('arm before start');
  armed = { seq: p.seq, expect: p.expect, at: new Array<number>(agents.length).fill(NaN), remaining: agents.length };
}

/** What each agent's xDS client holds (names and versions), digested like the controller's store. */
function digest(): StoreDigest[] {
  return agents.map((a) => {
    const held = a.client.status().resourceVersions;
    return {
      [ADDRESS_TYPE_URL]: digestVersions(Object.entries(held[ADDRESS_TYPE_URL] ?? {})),
      [AUTHORIZATION_TYPE_URL]: digestVersions(Object.entries(held[AUTHORIZATION_TYPE_URL] ?? {})),
    };
  });
}

function stop(): void {
  for (const a of agents) a.client.close();
  agents = [];
  armed = undefined;
}

serveOrchestrator({ warmup, start, arm, digest, stop });
