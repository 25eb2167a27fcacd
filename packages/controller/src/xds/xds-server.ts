// Delta ADS (envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources) as Istio's ambient
// clients speak it: per type URL a client is either wildcard (everything) or subscribes names and `<network>/<ip>`
// aliases on demand; we push only what changed since what the client has, and track ACK/NACK per nonce.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  DEFAULT_CLUSTER_ID, loadGrpcServices,
  type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type XdsNode, type XdsResource,
} from '@ambit/api';
import { authenticateCall, formatCaller, grpcError, isGrpcStatusError, type Authenticator, type CallerIdentity } from '../auth/caller.js';
import type { ResourceStore, StoredResource } from './resource-store.js';

export interface XdsServerOptions {
  store: ResourceStore;
  /** Validates the client's bearer token; omitted means anonymous clients are accepted (local runs only). */
  authenticate?: Authenticator;
  /** This controller's cluster; clients sending another `clusterid` are refused. */
  clusterId?: string;
  logger: Logger;
  /** Quiet time after a store change before pushing; a burst of writes becomes one push. */
  debounceMs?: number;
  /** Upper bound on how long a continuous stream of changes can hold a push back. Default 10 x debounceMs. */
  maxDebounceMs?: number;
  /** How many NACKs `nacks()` keeps (oldest dropped first). Default 100. */
  maxNackRecords?: number;
  /** Observes every response sent (metrics). */
  onPush?: (push: { typeUrl: string; resources: number; removed: number }) => void;
  /** Observes every NACK (metrics). */
  onNack?: (nack: NackRecord) => void;
}

/** A client's rejection of one response, kept for status and debugging. */
export interface NackRecord {
  connectionId: string;
  nodeId: string;
  caller: string;
  typeUrl: string;
  nonce: string;
  code: number;
  error: string;
  /** What the rejected response carried (removals have version null). */
  rejected: { name: string; version: string | null }[];
  at: Date;
}

export interface XdsTypeStatus {
  wildcard: boolean;
  subscriptions: string[];
  /** Versions the client has ACKed (or claimed with initial_resource_versions). */
  acked: Record<string, string>;
  /** Nonces sent and not yet ACKed or NACKed. */
  pendingNonces: string[];
  lastNack?: NackRecord;
}

export interface XdsConnectionStatus {
  id: string;
  nodeId: string;
  caller: string;
  peer: string;
  connectedAt: Date;
  types: Record<string, XdsTypeStatus>;
}

export interface XdsServer {
  service: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  connections(): XdsConnectionStatus[];
  /** Number of open streams, without building each one's status (cheap enough for every metrics scrape). */
  connectionCount(): number;
  nacks(): readonly NackRecord[];
  /** Pushes pending store changes now instead of after the debounce. */
  flush(): void;
  /** Ends every stream with OK (clients reconnect elsewhere) and stops listening to the store. */
  close(): void;
}

interface TypeState {
  wildcard: boolean;
  subscribed: Set<string>;
  /** What we believe the client holds: sent (even if not yet ACKed) or claimed on reconnect. */
  sent: Map<string, string>;
  acked: Map<string, string>;
  pending: Map<string, Map<string, string | null>>;
  lastNack?: NackRecord;
}

interface Connection {
  id: string;
  call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  caller: CallerIdentity;
  node?: XdsNode;
  peer: string;
  connectedAt: Date;
  types: Map<string, TypeState>;
  nonceCounter: number;
  closed: boolean;
  logger: Logger;
}

interface PushOptions {
  /** Only these names changed; undefined means compare everything. */
  dirty?: ReadonlySet<string>;
  /** Send these (and what they resolve to) even if the client has the same version: it asked for them again. */
  forced?: readonly string[];
  /** Respond even if there is nothing to send (the first request per type and every subscribe get an answer). */
  alwaysRespond?: boolean;
}

const WILDCARD = '*';

export function createXdsServer(options: XdsServerOptions): XdsServer {
  const { store } = options;
  const logger = options.logger.child({ component: 'xds' });
  const clusterId = options.clusterId ?? DEFAULT_CLUSTER_ID;
  const debounceMs = options.debounceMs ?? 100;
  const maxDebounceMs = options.maxDebounceMs ?? Math.max(10 * debounceMs, 1);
  const maxNacks = options.maxNackRecords ?? 100;
  const connections = new Map<string, Connection>();
  const nackLog: NackRecord[] = [];

  // --- debounce: writes accumulate names; one push per quiet period (bounded by maxDebounceMs).
  let dirty = new Map<string, Set<string>>();
  let timer: NodeJS.Timeout | undefined;
  let firstDirtyAt = 0;
  const unsubscribeStore = store.onChange((changes) => {
    for (const [typeUrl, names] of changes) {
      let s = dirty.get(typeUrl);
      if (!s) dirty.set(typeUrl, (s = new Set()));
      for (const n of names) s.add(n);
    }
    const now = Date.now();
    if (!timer) firstDirtyAt = now;
    else clearTimeout(timer);
    const delay = Math.max(0, Math.min(debounceMs, firstDirtyAt + maxDebounceMs - now));
    timer = setTimeout(flush, delay);
  });

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = dirty;
    dirty = new Map();
    if (batch.size === 0) return;
    for (const conn of connections.values()) {
      for (const [typeUrl, names] of batch) {
        const st = conn.types.get(typeUrl);
        if (st) push(conn, typeUrl, st, { dirty: names });
      }
    }
  }

  function explicitNames(typeUrl: string, st: TypeState): Set<string> {
    const out = new Set<string>();
    for (const n of st.subscribed) for (const r of store.resolve(typeUrl, n)) out.add(r);
    return out;
  }

  function push(conn: Connection, typeUrl: string, st: TypeState, opts: PushOptions): void {
    if (conn.closed) return;
    const explicit = explicitNames(typeUrl, st);
    const forced = new Set<string>();
    const notFound: string[] = [];
    for (const n of opts.forced ?? []) {
      const resolved = store.resolve(typeUrl, n);
      if (resolved.size === 0) notFound.push(n);
      for (const r of resolved) forced.add(r);
    }
    // Which names can have changed for this client: the dirty ones, what it explicitly wants, and (when it has
    // explicit subscriptions) what it holds, because an alias can stop resolving without the holder changing.
    const candidates = new Set<string>(explicit);
    if (opts.dirty) for (const n of opts.dirty) candidates.add(n);
    else if (st.wildcard) for (const n of store.names(typeUrl)) candidates.add(n);
    if (!opts.dirty || st.subscribed.size > 0) for (const n of st.sent.keys()) candidates.add(n);

    const resources: StoredResource[] = [];
    const removed: string[] = [];
    for (const name of candidates) {
      const r = store.get(typeUrl, name);
      const wanted = r !== undefined && (st.wildcard || explicit.has(name));
      if (wanted) {
        if (forced.has(name) || st.sent.get(name) !== r.version) resources.push(r);
      } else if (st.sent.has(name)) {
        removed.push(name);
      }
    }
    // Delta xDS says "does not exist" by listing the asked-for name as removed.
    for (const n of notFound) if (!removed.includes(n)) removed.push(n);
    if (resources.length === 0 && removed.length === 0 && !opts.alwaysRespond) return;

    const nonce = `${conn.id.slice(0, 8)}-${++conn.nonceCounter}`;
    const changes = new Map<string, string | null>();
    const out: XdsResource[] = resources.map((r) => {
      changes.set(r.name, r.version);
      st.sent.set(r.name, r.version);
      return { name: r.name, version: r.version, aliases: [...r.aliases], resource: r.any };
    });
    for (const n of removed) {
      changes.set(n, null);
      st.sent.delete(n);
    }
    st.pending.set(nonce, changes);
    const response: DeltaDiscoveryResponse = {
      type_url: typeUrl,
      nonce,
      system_version_info: nonce,
      resources: out,
      removed_resources: removed,
    };
    conn.logger.debug({ typeUrl, nonce, resources: out.length, removed: removed.length }, 'push');
    options.onPush?.({ typeUrl, resources: out.length, removed: removed.length });
    // grpc-js buffers writes; a client that stops reading only grows its own stream's buffer, and it will be
    // replaced by a fresh push once it reconnects.
    conn.call.write(response);
  }

  function typeState(conn: Connection, typeUrl: string): { st: TypeState; first: boolean } {
    const existing = conn.types.get(typeUrl);
    if (existing) return { st: existing, first: false };
    const st: TypeState = { wildcard: false, subscribed: new Set(), sent: new Map(), acked: new Map(), pending: new Map() };
    conn.types.set(typeUrl, st);
    return { st, first: true };
  }

  function handleRequest(conn: Connection, req: DeltaDiscoveryRequest): void {
    const typeUrl = req.type_url ?? '';
    if (!typeUrl) throw grpcError(grpc.status.INVALID_ARGUMENT, 'DeltaDiscoveryRequest without type_url');
    if (req.node && !conn.node) {
      conn.node = req.node;
      conn.logger = conn.logger.child({ node: req.node.id });
      conn.logger.info({ caller: formatCaller(conn.caller) }, 'xDS client connected');
    }
    const { st, first } = typeState(conn, typeUrl);

    if (req.response_nonce) handleAck(conn, typeUrl, st, req);

    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const initial = req.initial_resource_versions ?? {};
    if (first) {
      // A reconnecting client tells us what it holds, so we send only what differs.
      for (const [name, version] of Object.entries(initial)) {
        st.sent.set(name, version);
        st.acked.set(name, version);
      }
      // Legacy wildcard: the first request of a type with no names at all.
      if (subscribe.length === 0 && unsubscribe.length === 0) st.wildcard = true;
    }
    for (const n of subscribe) {
      if (n === WILDCARD) st.wildcard = true;
      else st.subscribed.add(n);
    }
    // Applied after subscribe: ztunnel's on-demand mode subscribes and unsubscribes "*" together, meaning "nothing".
    for (const n of unsubscribe) {
      if (n === WILDCARD) st.wildcard = false;
      else st.subscribed.delete(n);
    }
    if (unsubscribe.length > 0) {
      // The client forgets unsubscribed resources by itself; we only stop tracking them (no removed_resources).
      const keep = st.wildcard ? undefined : explicitNames(typeUrl, st);
      for (const name of [...st.sent.keys()]) {
        if (keep && !keep.has(name)) {
          st.sent.delete(name);
          st.acked.delete(name);
        }
      }
    }
    const asked = subscribe.filter((n) => n !== WILDCARD);
    if (first || asked.length > 0 || subscribe.includes(WILDCARD)) {
      // On a reconnect the client's initial versions are trusted; otherwise a re-subscribe gets a fresh copy.
      push(conn, typeUrl, st, { forced: first && Object.keys(initial).length > 0 ? [] : asked, alwaysRespond: true });
    }
  }

  function handleAck(conn: Connection, typeUrl: string, st: TypeState, req: DeltaDiscoveryRequest): void {
    const nonce = req.response_nonce!;
    const changes = st.pending.get(nonce);
    st.pending.delete(nonce);
    const err = req.error_detail;
    if (err && (err.code || err.message)) {
      const record: NackRecord = {
        connectionId: conn.id,
        nodeId: conn.node?.id ?? '',
        caller: formatCaller(conn.caller),
        typeUrl,
        nonce,
        code: err.code ?? 0,
        error: err.message ?? '',
        rejected: [...(changes ?? new Map<string, string | null>())].map(([name, version]) => ({ name, version })),
        at: new Date(),
      };
      // The client keeps its last good config; so do we in `acked`. We do not resend the rejected version
      // (it would be rejected again); the next change to those resources is pushed as usual.
      st.lastNack = record;
      nackLog.push(record);
      if (nackLog.length > maxNacks) nackLog.shift();
      options.onNack?.(record);
      conn.logger.warn({ typeUrl, nonce, code: record.code, error: record.error, rejected: record.rejected.map((r) => r.name) },
        'xDS client rejected a response (NACK)');
      return;
    }
    if (!changes) return; // stale nonce, e.g. from before a reconnect: nothing to confirm
    for (const [name, version] of changes) {
      if (version === null) st.acked.delete(name);
      else st.acked.set(name, version);
    }
  }

  function onStream(call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>): void {
    const id = randomUUID();
    const peer = call.getPeer();
    let conn: Connection | undefined;
    let failed = false;
    // Every queued request's promise rejects with the same error; the stream is ended once.
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      const status = isGrpcStatusError(err) ? err : grpcError(grpc.status.INTERNAL, `xDS request failed: ${String(err)}`);
      (conn?.logger ?? logger).warn({ peer, code: grpc.status[status.code], reason: status.details }, 'xDS stream refused');
      cleanup();
      call.emit('error', status);
    };
    const cleanup = (): void => {
      if (conn) conn.closed = true;
      connections.delete(id);
    };
    // Requests can arrive before authentication finishes; each waits on the previous step, in order.
    let chain: Promise<void> = authenticateCall(call.metadata, { authenticate: options.authenticate, clusterId })
      .then((caller) => {
        conn = {
          id, call, caller, peer, connectedAt: new Date(), types: new Map(), nonceCounter: 0, closed: false,
          logger: logger.child({ conn: id.slice(0, 8), caller: formatCaller(caller) }),
        };
        connections.set(id, conn);
      });
    chain.catch(fail);
    call.on('data', (req: DeltaDiscoveryRequest) => {
      chain = chain.then(() => {
        if (conn && !conn.closed) handleRequest(conn, req);
      });
      chain.catch(fail);
    });
    call.on('end', () => {
      cleanup();
      call.end();
    });
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);
  }

  const { ads } = loadGrpcServices();
  return {
    service: ads,
    implementation: { DeltaAggregatedResources: onStream as grpc.handleBidiStreamingCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> },
    connectionCount() {
      return connections.size;
    },
    connections() {
      return [...connections.values()].map((c) => ({
        id: c.id,
        nodeId: c.node?.id ?? '',
        caller: formatCaller(c.caller),
        peer: c.peer,
        connectedAt: c.connectedAt,
        types: Object.fromEntries([...c.types].map(([typeUrl, st]) => [typeUrl, {
          wildcard: st.wildcard,
          subscriptions: [...st.subscribed],
          acked: Object.fromEntries(st.acked),
          pendingNonces: [...st.pending.keys()],
          ...(st.lastNack ? { lastNack: st.lastNack } : {}),
        }])),
      }));
    },
    nacks: () => nackLog,
    flush,
    close() {
      unsubscribeStore();
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (const c of connections.values()) {
        c.closed = true;
        c.call.end();
      }
      connections.clear();
    },
  };
}
