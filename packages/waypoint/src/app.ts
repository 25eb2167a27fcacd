// Wiring only: builds the waypoint from one WaypointConfig and its runtime handles.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ADDRESS_TYPE_URL } from '@ambit/api';
import { HboneClient, HboneServer } from '@ambit/hbone';
import {
  createAdminServers, createConfiguredCaClient, createLogLevels, createReadiness, createStateStore,
  createStateUpdater, createXdsClient, describeCertifiedKey, SecretManager, watchLocalConfig,
  type AdminServers, type LocalConfigWatcher, type Readiness, type StateStore, type StateUpdater, type XdsClient,
} from '@ambit/ztunnel';
import type { WaypointConfig } from './config/load.js';
import { configObjectXdsType, watchConfigObjects, type LocalConfigObjectSource } from './discovery/config-source.js';
import { loadPlugin, type WaypointPlugin } from './plugins/plugin.js';
import { createEndpointPicker } from './proxy/endpoints.js';
import { createClusterManager } from './proxy/clusters.js';
import { createTracingState } from './telemetry/tracing-state.js';
import { createInboundHandler, type InboundHandler } from './proxy/inbound.js';
import { createUpstreamPool, type UpstreamPool } from './proxy/upstream.js';
import { createPolicyState, POLICY_VALIDATORS } from './proxy/policy-state.js';
import { createConfigStore, type ConfigStore } from './state/config-store.js';
import { createRequestMetrics, createRequestTelemetry } from './telemetry/request-telemetry.js';
import { createTcpTelemetry } from './telemetry/tcp-telemetry.js';

/** Live handles kept apart from the frozen config. */
export interface WaypointRuntime {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly version: string;
  /** Called when the waypoint asks to exit (after /quitquitquit). */
  readonly exit: (code: number) => void;
  /**
   * `external`: no xDS client and no local files; the embedder feeds `addressUpdater` and `configStore` (tests, an
   * embedded demo). Default: from the config (XDS_ADDRESS, or the local paths).
   */
  readonly discovery?: 'config' | 'external';
  /** Plugins given as objects (in addition to config.plugins module paths). */
  readonly plugins?: readonly WaypointPlugin[];
  /** Uniform in [0, 1); weighted routing, mirrors, retries' jitter, load balancing and trace ids. */
  readonly random?: () => number;
  /** Values for Telemetry customTags `environment` (main.ts passes the process environment, see config/load.ts). */
  readonly environment?: Readonly<Record<string, string | undefined>>;
  /** Zipkin exporter flush period; default 1000 ms (tests shorten it). */
  readonly spanFlushIntervalMs?: number;
}

export interface WaypointApp {
  readonly state: StateStore;
  /** The one writer of Address state (workloads, services). */
  readonly addressUpdater: StateUpdater;
  readonly configStore: ConfigStore;
  readonly readiness: Readiness;
  /** Where the HBONE listener is bound (after start). */
  readonly hboneAddress: () => { host: string; port: number } | undefined;
  readonly admin: () => { admin: { host: string; port: number }; metrics: { host: string; port: number }; readiness: { host: string; port: number } } | undefined;
  readonly upstream: UpstreamPool;
  start(): Promise<void>;
  /** Stop accepting, let requests in flight finish (bounded by AMBIT_DRAIN_TIMEOUT_SECONDS), close. */
  shutdown(reason: string): Promise<void>;
}

export async function createWaypointApp(config: WaypointConfig, runtime: WaypointRuntime): Promise<WaypointApp> {
  const { logger, registry } = runtime;
  const logLevels = createLogLevels({ root: logger, initial: config.logLevel });
  const log = logLevels.logger('waypoint');
  const state = createStateStore({ logger: logLevels.logger('state') });
  const addressUpdater = createStateUpdater({ store: state });
  const configStore = createConfigStore({
    domainSuffix: config.domainSuffix, gatewayName: config.gatewayName, gatewayNamespace: config.podNamespace,
    validators: POLICY_VALIDATORS,
    logger: logLevels.logger('config'),
  });
  const policy = createPolicyState(configStore, { waypoint: { namespace: config.podNamespace, name: config.gatewayName } });
  const readiness = createReadiness();
  const external = runtime.discovery === 'external';

  const { ca, close: closeCa } = await createConfiguredCaClient(config, logLevels.logger('ca'));
  const secrets = new SecretManager(ca, logLevels.logger('certificates'));
  const xds: XdsClient | undefined = !external && config.xdsAddress ? createXdsClient({
    address: config.xdsAddress, rootCaPath: config.xdsRootCaPath, authToken: config.authToken, clusterId: config.clusterId,
    headers: config.xdsHeaders,
    // Istio's waypoint node type; istiod (and our controller) key the pushed config on it.
    node: {
      id: `waypoint~${config.instanceIp}~${config.podName}.${config.podNamespace}~${config.podNamespace}.svc.${config.domainSuffix}`,
      metadata: { ...config.proxyMetadata, NAME: config.podName, NAMESPACE: config.podNamespace, INSTANCE_IPS: config.instanceIp, NODE_NAME: config.nodeName, CLUSTER_ID: config.clusterId, SERVICE_ACCOUNT: config.serviceAccount, GATEWAY_NAME: config.gatewayName },
    },
    updater: addressUpdater, registry, logger: logLevels.logger('xds'),
    typeUrls: [ADDRESS_TYPE_URL],
    rawTypes: [configObjectXdsType(configStore)],
  }) : undefined;

  const plugins: WaypointPlugin[] = [...(runtime.plugins ?? [])];
  for (const p of config.plugins) plugins.push(await loadPlugin(p));

  const hboneClient = new HboneClient({
    getCredentials: () => secrets.credentialsFor(config.identity),
    connectTimeoutMs: config.limits.connectTimeoutMs,
    logger: logLevels.logger('hbone'),
  });
  const upstream = createUpstreamPool({ hbone: hboneClient, sourceIdentity: config.identity, hbonePort: config.upstreamHbonePort, logger: logLevels.logger('upstream') });
  const metrics = createRequestMetrics(registry);
  const clusters = createClusterManager({ store: configStore, logger: logLevels.logger('upstream'), ...(runtime.random ? { random: runtime.random } : {}) });
  const tracing = createTracingState({
    store: configStore, mesh: config.tracing, waypoint: { namespace: config.podNamespace, name: config.gatewayName }, instanceIp: config.instanceIp,
    environment: runtime.environment ?? {}, logger: logLevels.logger('tracing'),
    ...(runtime.random ? { random: runtime.random } : {}), ...(runtime.spanFlushIntervalMs ? { flushIntervalMs: runtime.spanFlushIntervalMs } : {}),
  });
  const inbound: InboundHandler = createInboundHandler({
    config, state, routes: configStore, policy, endpoints: createEndpointPicker(state), upstream, clusters, tracing,
    telemetry: createRequestTelemetry({ metrics, logger: logLevels.logger('access') }),
    tcpTelemetry: createTcpTelemetry({ registry, logger: logLevels.logger('access'), version: runtime.version }),
    plugins, logger: logLevels.logger('proxy'), ...(runtime.random ? { random: runtime.random } : {}),
  });

  let hbone: HboneServer | undefined;
  let hboneBound: { host: string; port: number } | undefined;
  let admin: AdminServers | undefined;
  let adminBound: ReturnType<WaypointApp['admin']>;
  let addressWatcher: LocalConfigWatcher | undefined;
  let objectWatcher: LocalConfigObjectSource | undefined;
  let shuttingDown: Promise<void> | undefined;

  const app: WaypointApp = {
    state, addressUpdater, configStore, readiness, upstream,
    hboneAddress: () => hboneBound,
    admin: () => adminBound,
    async start() {
      const certTask = readiness.register('waypoint certificate');
      const configTask = external ? () => {} : readiness.register(xds ? 'initial xDS sync' : 'local config');
      admin = createAdminServers({
        config, state, logger, logLevels, registry, readiness,
        certificates: () => secrets.list().map((c) => describeCertifiedKey(c, c.state === 'available' ? 'Available' : c.state === 'initializing' ? 'Initializing' : `Unavailable: ${c.lastError ?? 'unknown'}`)),
        staticConfig: () => ({
          configObjects: [...configStore.objects().keys()],
          rejectedConfigObjects: configStore.rejected(),
          configVersion: configStore.current().version,
          upstream: upstream.stats(),
          clusters: clusters.stats(),
          tracing: { ...tracing.config(), ...tracing.stats() },
          activeConnections: inbound.active,
        }),
        version: { version: runtime.version },
        onQuit: () => { void app.shutdown('POST /quitquitquit').then(() => runtime.exit(0)); },
        addresses: { admin: hostPort(config.adminAddress), metrics: hostPort(config.metricsAddress), readiness: hostPort(config.readinessAddress) },
      });
      adminBound = await admin.listen();
      // The listener needs the waypoint's own certificate first.
      const credentials = await secrets.credentialsFor(config.identity);
      secrets.onRotate = (identity, c) => { if (identity === config.identity) hbone?.setCredentials(c); };
      certTask();
      hbone = new HboneServer({ credentials, trustDomain: config.trustDomain, onConnect: (req) => inbound.onConnect(req), logger: logLevels.logger('hbone') });
      const a = await hbone.listen({ port: config.hboneAddress.port, host: config.hboneAddress.host });
      hboneBound = { host: a.address, port: a.port };
      log.info({ hbone: hboneBound, identity: config.identity }, 'waypoint HBONE listener up');
      if (xds) {
        xds.start();
        if (!(await xds.synced)) return;
      } else if (!external) {
        if (config.localXdsPath) {
          addressWatcher = watchLocalConfig(config.localXdsPath, addressUpdater, logLevels.logger('local-config'));
          await addressWatcher.ready;
        }
        if (config.localConfigPath) {
          objectWatcher = watchConfigObjects(config.localConfigPath, configStore, logLevels.logger('local-config'));
          await objectWatcher.ready;
        }
      }
      configTask();
      log.info({ configVersion: configStore.current().version, services: state.listServices().length }, 'waypoint ready');
    },
    shutdown(reason) {
      shuttingDown ??= (async () => {
        log.info({ reason, connections: inbound.active, drainTimeoutMs: config.drainTimeoutMs ?? 'none' }, 'draining');
        readiness.register('shutting down');
        // GOAWAY to every client connection; HTTP clients get `connection: close` / GOAWAY on their tunnels.
        const closing = hbone?.close(config.drainTimeoutMs !== undefined ? { timeoutMs: config.drainTimeoutMs } : {});
        inbound.drain();
        await closing;
        inbound.close();
        upstream.close();
        clusters.close();
        await tracing.close();
        hboneClient.destroy();
        secrets.stop();
        closeCa();
        xds?.close();
        addressWatcher?.close();
        objectWatcher?.close();
        await admin?.close();
        log.info({ reason }, 'waypoint stopped');
      })();
      return shuttingDown;
    },
  };
  return app;
}

function hostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
