import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  ConfigError,
  decodeAny,
  loadGrpcServices,
  METRICS,
  toStruct,
  type Address as PbAddress,
  type Authorization as PbAuthorization,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type XdsNode,
} from '@ambit/api';
import { parseGrpcTarget, type AuthTokenSource, type Config } from '../config/load.js';
import { buildCallMetadata, createChannelCredentials, readAuthToken } from '../identity/ca-client.js';
import type { Rejection, StateUpdater } from '../state/updater.js';
import {
  convertAddressResponse,
  convertAuthorizationResponse,
  type ConvertedResponse,
  type DecodedResource,
} from './xds-convert.js';

/**
 * The node agent's delta xDS client (spec §3.1–3.2): one `DeltaAggregatedResources` stream, wildcard
 * subscriptions to `istio.workload.Address` and `istio.security.Authorization`. Every response goes through the
 * same state updater as the local config file; resources the updater (or the conversion) rejects are NACKed by
 * name with the reason while the rest of the response applies, and the last good version of a rejected resource
 * stays in force. The stream is re-opened with backoff (10 ms doubling to 15 s, jittered), sending
 * `initial_resource_versions` of what is held; the state is never cleared while the controller is away.
 *
 * Not implemented: on-demand mode (XDS_ON_DEMAND; config refuses it), and the legacy Workload type URL.
 */

export const XDS_TYPE_URLS = [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL] as const;

/** google.rpc.Code INVALID_ARGUMENT, the code a NACK carries. */
const INVALID_ARGUMENT = 3;

/** ztunnel's `ConnectionTerminationReason`. */
export type XdsTerminationReason = 'ConnectionError' | 'Error' | 'Complete';

export interface XdsNodeIdentity {
  /** `ztunnel~<INSTANCE_IP>~<POD_NAME>.<POD_NAMESPACE>~<POD_NAMESPACE>.svc.cluster.local` */
  readonly id: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** One resource of a raw type, as received (the payload is not decoded by the client). */
export interface RawXdsResource {
  readonly name: string;
  readonly version: string;
  /** The Any's type URL; normally the subscribed type. */
  readonly typeUrl: string | undefined;
  readonly value: Uint8Array | undefined;
}

/**
 * A type URL whose resources the client hands over undecoded, for consumers with their own model (the waypoint's
 * configuration objects). `apply` returns the rejected resources by name: they are NACKed with the reason and
 * their held version is not updated, exactly as for the built-in types.
 */
export interface RawXdsType {
  readonly typeUrl: string;
  apply(update: { readonly resources: readonly RawXdsResource[]; readonly removed: readonly string[] }): readonly { readonly name: string; readonly message: string }[];
}

export interface XdsClientOptions {
  /** XDS_ADDRESS: `[https://]host:port` (or `http://host:port`, plaintext, for tests). */
  readonly address: string;
  /** XDS_ROOT_CA: re-read at every (re)connect, so a rotated root applies on the next stream. */
  readonly rootCaPath: string;
  readonly authToken: AuthTokenSource;
  readonly clusterId: string;
  /** XDS_HEADER_* extras. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly node: XdsNodeIdentity;
  readonly updater: StateUpdater;
  readonly logger: Logger;
  /** The process registry; counters are registered there when given. */
  readonly registry?: Registry;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Built-in types subscribed and applied through `updater`; default XDS_TYPE_URLS (Address and Authorization). */
  readonly typeUrls?: readonly (typeof XDS_TYPE_URLS)[number][];
  /** Extra types handed over raw (see RawXdsType); they count for the first sync like the built-in ones. */
  readonly rawTypes?: readonly RawXdsType[];
}

export interface XdsClientStatus {
  readonly connected: boolean;
  readonly synced: boolean;
  /** Stream attempts since the last response (0 while healthy). */
  readonly failures: number;
  readonly lastError: string | undefined;
  /** Resource name -> version of what the agent holds, per type URL (sent as initial_resource_versions). */
  readonly resourceVersions: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export interface XdsClient {
  /** Opens the stream (and keeps re-opening it until close). */
  start(): void;
  /**
   * Resolves true once one response of every subscribed type has been applied (the agent's first sync, which
   * gates readiness), or false if the client is closed first.
   */
  readonly synced: Promise<boolean>;
  status(): XdsClientStatus;
  /** Ends the stream and stops reconnecting; the state is left as it is. */
  close(): void;
}

/** Node id and metadata the way ztunnel builds them (istiod parses both). */
export function buildXdsNode(config: Pick<Config, 'instanceIp' | 'podName' | 'podNamespace' | 'nodeName' | 'clusterId' | 'proxyMetadata'>): XdsNodeIdentity {
  const ns = config.podNamespace;
  return {
    id: `ztunnel~${config.instanceIp}~${config.podName}.${ns}~${ns}.svc.cluster.local`,
    metadata: {
      ...config.proxyMetadata,
      NAME: config.podName,
      NAMESPACE: ns,
      INSTANCE_IPS: config.instanceIp,
      NODE_NAME: config.nodeName,
      CLUSTER_ID: config.clusterId,
    },
  };
}

type AdsStream = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
type AdsMethod = (metadata: grpc.Metadata, options?: grpc.CallOptions) => AdsStream;

export function createXdsClient(options: XdsClientOptions): XdsClient {
  const target = parseGrpcTarget(options.address);
  if (!target) throw new ConfigError(`xDS address "${options.address}" is not [https://]host:port`);
  const log = options.logger;
  const initialBackoffMs = options.backoff?.initialMs ?? 10;
  const maxBackoffMs = options.backoff?.maxMs ?? 15_000;
  const { AdsClient } = loadGrpcServices();

  const terminations = options.registry
    ? new Counter({ name: METRICS.xdsConnectionTerminations, help: 'Total number of connection terminations to xDS server', labelNames: ['reason'], registers: [options.registry] })
    : undefined;
  const messages = options.registry
    ? new Counter({ name: METRICS.xdsMessages, help: 'Total number of messages received', labelNames: ['url'], registers: [options.registry] })
    : undefined;
  const messageBytes = options.registry
    ? new Counter({ name: METRICS.xdsMessageBytes, help: 'Total number of bytes received', labelNames: ['url'], registers: [options.registry] })
    : undefined;

  const rawTypes = new Map((options.rawTypes ?? []).map((t) => [t.typeUrl, t]));
  const subscribed: readonly string[] = [...(options.typeUrls ?? XDS_TYPE_URLS), ...rawTypes.keys()];
  // What the agent holds, per type: the versions of applied resources (a rejected update keeps the old version).
  const held = new Map<string, Map<string, string>>(subscribed.map((t) => [t, new Map()]));
  const syncedTypes = new Set<string>();
  let resolveSynced!: (v: boolean) => void;
  const synced = new Promise<boolean>((r) => { resolveSynced = r; });
  let isSynced = false;

  let closed = false;
  let started = false;
  let client: grpc.Client | undefined;
  let clientRoot: string | undefined;
  let stream: AdsStream | undefined;
  let connected = false;
  let failures = 0;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;

  function scheduleReconnect(): void {
    if (closed || timer) return;
    const base = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(failures, 30));
    failures++;
    // Jitter (half to full delay) so a fleet of agents does not reconnect in lockstep after a controller restart.
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    log.debug({ delayMs: delay, failures }, 'xDS reconnect scheduled');
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay);
  }

  function terminated(s: AdsStream, reason: XdsTerminationReason, message: string): void {
    if (s !== stream) return; // an old stream's late event
    stream = undefined;
    connected = false;
    if (closed) return;
    lastError = message;
    terminations?.inc({ reason });
    log.warn({ reason, err: message, address: options.address }, 'xDS stream ended; keeping the last known state and reconnecting');
    scheduleReconnect();
  }

  async function connect(): Promise<void> {
    if (closed) return;
    let s: AdsStream;
    try {
      const [{ credentials, rootPem }, token] = await Promise.all([
        createChannelCredentials(target!, options.rootCaPath, `the xDS server at ${options.address}`),
        readAuthToken(options.authToken),
      ]);
      if (closed) return;
      if (!client || clientRoot !== rootPem) {
        client?.close();
        client = new AdsClient(target!.target, credentials, {
          // istiod's keepalive enforcement allows pings every 15 s; stay well above it.
          'grpc.keepalive_time_ms': 30_000,
          'grpc.keepalive_timeout_ms': 10_000,
          // The channel's own reconnect backoff (default 1 s .. 120 s) would otherwise stretch ours past 15 s:
          // a stream started while the channel waits fails at once with UNAVAILABLE.
          'grpc.initial_reconnect_backoff_ms': initialBackoffMs,
          'grpc.max_reconnect_backoff_ms': maxBackoffMs,
        });
        clientRoot = rootPem;
      }
      const method = (client as unknown as { DeltaAggregatedResources: AdsMethod }).DeltaAggregatedResources;
      s = method.call(client, buildCallMetadata(token, options.clusterId, options.headers));
    } catch (err) {
      lastError = (err as Error).message;
      terminations?.inc({ reason: 'Error' });
      log.warn({ err: lastError, address: options.address }, 'cannot open the xDS stream; retrying');
      scheduleReconnect();
      return;
    }
    stream = s;
    s.on('data', (resp: DeltaDiscoveryResponse) => {
      if (s !== stream) return;
      try {
        handleResponse(s, resp);
      } catch (err) {
        // A bug of ours, not the server's: end this stream and start over rather than run on half-handled state.
        log.error({ err: (err as Error).message, typeUrl: resp.type_url }, 'xDS response handling failed');
        s.cancel();
        terminated(s, 'Error', (err as Error).message);
      }
    });
    s.on('error', (err: grpc.ServiceError) => {
      const reason: XdsTerminationReason = err.code === grpc.status.UNAVAILABLE ? 'ConnectionError' : 'Error';
      terminated(s, reason, `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`);
    });
    s.on('status', (st: grpc.StatusObject) => {
      if (st.code === grpc.status.OK) terminated(s, 'Complete', 'the server closed the stream');
    });
    // Wildcard subscription per type: empty subscribe list; after a reconnect, what we hold.
    for (const typeUrl of subscribed) {
      const versions = Object.fromEntries(held.get(typeUrl)!);
      s.write({
        node: { id: options.node.id, metadata: toStruct({ ...options.node.metadata }) } satisfies XdsNode,
        type_url: typeUrl,
        resource_names_subscribe: [],
        initial_resource_versions: versions,
      });
    }
    connected = true;
    log.info({ address: options.address, node: options.node.id, held: Object.fromEntries([...held].map(([t, m]) => [t, m.size])) }, 'xDS stream opened');
  }

  function decodeAll<T>(typeUrl: string, resp: DeltaDiscoveryResponse): DecodedResource<T>[] {
    return (resp.resources ?? []).map((r) => {
      const name = r.name ?? '';
      if (!r.resource) return { name, decodeError: 'the resource has no payload' };
      if (r.resource.type_url !== typeUrl) return { name, decodeError: `payload type ${r.resource.type_url} in a ${typeUrl} response` };
      try {
        return { name, message: decodeAny<T>(r.resource) };
      } catch (err) {
        return { name, decodeError: (err as Error).message };
      }
    });
  }

  function handleResponse(s: AdsStream, resp: DeltaDiscoveryResponse): void {
    const typeUrl = resp.type_url ?? '';
    const nonce = resp.nonce ?? '';
    messages?.inc({ url: typeUrl });
    messageBytes?.inc({ url: typeUrl }, (resp.resources ?? []).reduce((n, r) => n + (r.resource?.value?.length ?? 0), 0));
    failures = 0; // a response means the stream works: the next outage starts again from the short delay
    lastError = undefined;
    const versions = held.get(typeUrl);
    if (!versions) {
      log.warn({ typeUrl, nonce }, 'xDS response for a type this agent did not subscribe to; NACKing it');
      s.write({ type_url: typeUrl, response_nonce: nonce, error_detail: { code: INVALID_ARGUMENT, message: `type ${typeUrl} is not subscribed` } });
      return;
    }
    const removed = resp.removed_resources ?? [];
    const raw = rawTypes.get(typeUrl);
    let rejections: readonly { readonly name: string; readonly message: string; readonly kind?: string }[];
    let stateVersion: number | undefined;
    if (raw) {
      rejections = raw.apply({
        resources: (resp.resources ?? []).map((r) => ({ name: r.name ?? '', version: r.version ?? '', typeUrl: r.resource?.type_url, value: r.resource?.value })),
        removed,
      });
    } else {
      const converted: ConvertedResponse = typeUrl === ADDRESS_TYPE_URL
        ? convertAddressResponse(decodeAll<PbAddress>(typeUrl, resp), removed)
        : convertAuthorizationResponse(decodeAll<PbAuthorization>(typeUrl, resp), removed);
      const result = options.updater.applyDelta(converted.batch);
      rejections = result.rejected;
      stateVersion = result.version;
    }
    const result = { rejected: rejections, version: stateVersion };
    const rejected = new Set(result.rejected.map((r) => r.name));
    for (const r of resp.resources ?? []) {
      if (r.name && !rejected.has(r.name)) versions.set(r.name, r.version ?? '');
    }
    for (const name of removed) versions.delete(name);

    if (result.rejected.length === 0) {
      s.write({ type_url: typeUrl, response_nonce: nonce });
    } else {
      const message = nackMessage(result.rejected);
      for (const r of result.rejected) log.warn({ typeUrl, kind: r.kind ?? typeUrl, resource: r.name, nonce }, r.message);
      s.write({ type_url: typeUrl, response_nonce: nonce, error_detail: { code: INVALID_ARGUMENT, message } });
    }
    log.debug(
      { typeUrl, nonce, resources: resp.resources?.length ?? 0, removed: removed.length, rejected: result.rejected.length, version: result.version },
      'xDS response applied',
    );
    if (!isSynced) {
      syncedTypes.add(typeUrl);
      if (subscribed.every((t) => syncedTypes.has(t))) {
        isSynced = true;
        log.info({ held: Object.fromEntries([...held].map(([t, m]) => [t, m.size])) }, 'initial xDS sync complete');
        resolveSynced(true);
      }
    }
  }

  return {
    synced,
    start() {
      if (started || closed) return;
      started = true;
      void connect();
    },
    status() {
      return {
        connected,
        synced: isSynced,
        failures,
        lastError,
        resourceVersions: Object.fromEntries([...held].map(([t, m]) => [t, Object.fromEntries(m)])),
      };
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const s = stream;
      stream = undefined;
      connected = false;
      s?.cancel();
      client?.close();
      client = undefined;
      resolveSynced(false);
    },
  };
}

/** One line per rejected resource, named, so istiod's NACK log says exactly what was refused and why. */
function nackMessage(rejected: readonly Pick<Rejection, 'name' | 'message'>[]): string {
  return `${rejected.length} resource(s) rejected: ${rejected.map((r) => `[${r.name}] ${r.message}`).join('; ')}`;
}
