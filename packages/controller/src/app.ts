// Wiring only: builds the controller from Settings. Kubernetes mode: informers -> index -> work queue ->
// translator/forwarder -> resource store -> xDS; CA root from the Secret; TokenReview; leader-only work (status,
// root ConfigMaps, waypoint deployer) under a Lease. Embedded mode: a directory of YAML instead of informers, a
// root from files, loopback-only and no TokenReview.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { CertificateAuthority } from '@ambit/pki';
import type { Authenticator } from './auth/caller.js';
import { createCaService } from './ca/ca-server.js';
import { loadOrCreateCaSecret } from './ca-root/ca-secret.js';
import { createPodLookup } from './ca-root/pod-lookup.js';
import { createRootCertPublisher, type RootCertPublisher } from './ca-root/root-cert-publisher.js';
import { issueServingCertificate, startControlPlaneServer, type ControlPlaneServer } from './control-plane-server.js';
import { createDirectorySource, type DirectorySource } from './embedded/directory-source.js';
import { loadEmbeddedCa } from './embedded/embedded-ca.js';
import { loopbackAuthenticator } from './embedded/loopback-authenticator.js';
import { createDispatcher } from './k8s/dispatcher.js';
import { createConfigForwarder } from './forward/config-forwarder.js';
import { createInformers, type Informers } from './k8s/informers.js';
import { createKubeRest, loadKubeConfig, type KubeRest } from './k8s/kube-rest.js';
import { createTokenReviewAuthenticator } from './k8s/token-review.js';
import { createWorkQueue } from './k8s/work-queue.js';
import { createLeaderElector, type LeaderElector } from './leader/leader-elector.js';
import type { Settings } from './settings/settings.js';
import { createControllerMetrics } from './status/metrics.js';
import { startMonitoringServer, type MonitoringServer } from './status/monitoring-server.js';
import { createReadiness } from './status/readiness.js';
import { createStatusWriter, type StatusWriter } from './status/status-writer.js';
import { createMemoryIndex, type ObjectIndex } from './translate/object-index.js';
import { createTranslator } from './translate/translator.js';
import { createWaypointDeployer, type WaypointDeployer } from './waypoints/deployer.js';
import { createResourceStore, type ResourceStore } from './xds/resource-store.js';
import { createXdsServer, type XdsServer } from './xds/xds-server.js';

export interface AppOptions {
  logger: Logger;
  registry: Registry;
}

export interface App {
  /** Starts everything; resolves once xDS and the CA serve (after the initial sync). */
  start(): Promise<void>;
  /** Stops leading (releasing the Lease), closes xDS gracefully, stops watches. Safe to call twice. */
  stop(reason?: string): Promise<void>;
  ready(): boolean;
  readonly index: ObjectIndex;
  readonly store: ResourceStore;
  xdsPort(): number;
  monitoringPort(): number;
  ca(): CertificateAuthority | undefined;
  leader(): LeaderElector | undefined;
  /** Embedded mode's directory source. */
  directory(): DirectorySource | undefined;
  /** Leader work currently running (status writes, root ConfigMaps, waypoint deployer). */
  leading(): boolean;
}

export function createApp(settings: Readonly<Settings>, options: AppOptions): App {
  const logger = options.logger;
  const readiness = createReadiness();
  const syncedTask = readiness.register(settings.embedded ? 'configuration directory read' : 'informers synced');
  const caTask = readiness.register('CA root loaded');
  const xdsTask = readiness.register('xDS serving');
  const metrics = createControllerMetrics(options.registry);
  const index = createMemoryIndex();
  const store = createResourceStore();

  const rest: KubeRest | undefined = settings.kubernetes ? createKubeRest(loadKubeConfig(settings.kubernetes)) : undefined;
  const statusWriter: StatusWriter | undefined = rest ? createStatusWriter({ rest, index, logger }) : undefined;
  const translator = createTranslator({
    index,
    store,
    logger,
    mesh: { clusterId: settings.clusterId, trustDomain: settings.trustDomain, rootNamespace: settings.podNamespace, clusterDomain: settings.clusterDomain },
    onStatus(ref, conditions) {
      const status = { conditions: conditions.map((c) => ({ ...c, ...(ref.generation !== undefined ? { observedGeneration: ref.generation } : {}) })) };
      if (statusWriter) statusWriter.report({ kind: ref.kind, namespace: ref.namespace, name: ref.name, status, source: 'translator' });
      else if (conditions.length > 0) logger.info({ object: `${ref.kind} ${ref.namespace}/${ref.name}`, conditions }, 'object status');
    },
  });
  // L7 kinds are validated and forwarded to waypoints; an invalid version is refused (status + log) while the
  // last good one keeps serving.
  const forwarder = createConfigForwarder({
    store,
    logger,
    onStatus(ref, status) {
      if (statusWriter) statusWriter.report({ kind: ref.kind, namespace: ref.namespace, name: ref.name, status: { ...status }, source: 'forwarder' });
      else if (status.validationMessages.length > 0) logger.warn({ object: `${ref.kind} ${ref.namespace}/${ref.name}`, validationMessages: status.validationMessages }, 'object status');
    },
  });
  const dispatcher = createDispatcher({ index, translator, forwarder, logger });
  const queue = createWorkQueue<string>({ process: dispatcher.process, logger });
  // Embedded mode: no authenticator, xDS callers are anonymous (the server listens on loopback only).
  const authenticate: Authenticator | undefined = rest ? createTokenReviewAuthenticator({ rest, logger }) : undefined;
  const xds: XdsServer = createXdsServer({
    store,
    ...(authenticate ? { authenticate } : {}),
    clusterId: settings.clusterId,
    logger,
    debounceMs: settings.xds.debounceMs,
    onPush: metrics.onPush,
    onNack: metrics.onNack,
  });
  metrics.attachXds(xds);

  let informers: Informers | undefined;
  let directory: DirectorySource | undefined;
  let publisher: RootCertPublisher | undefined;
  let deployer: WaypointDeployer | undefined;
  let elector: LeaderElector | undefined;
  let grpc: ControlPlaneServer | undefined;
  let monitoring: MonitoringServer | undefined;
  let ca: CertificateAuthority | undefined;
  let leaderWork = false;
  let stopping: Promise<void> | undefined;

  dispatcher.onChange((kind, namespace, name, obj) => {
    metrics.configEvent(kind, obj ? 'update' : 'delete');
    statusWriter?.objectChanged(kind, namespace, name);
    if (kind === 'Namespace') publisher?.namespaceChanged(name);
  });

  function startLeaderWork(): void {
    leaderWork = true;
    statusWriter?.startLeading();
    publisher?.start();
    deployer?.start().catch((err: Error) => logger.error({ err: err.message }, 'waypoint deployer failed to start'));
  }
  function stopLeaderWork(): void {
    leaderWork = false;
    statusWriter?.stopLeading();
    void publisher?.stop();
    void deployer?.stop().catch((err: Error) => logger.error({ err: err.message }, 'waypoint deployer failed to stop'));
  }

  async function loadCa(): Promise<CertificateAuthority> {
    if (settings.embedded) return loadEmbeddedCa(settings.embedded, settings.trustDomain, logger);
    // The apiserver may still be coming up (cluster start, a control-plane restart): retry for a while.
    for (let attempt = 1; ; attempt++) {
      try {
        return (await loadOrCreateCaSecret({ rest: rest!, namespace: settings.podNamespace, trustDomain: settings.trustDomain, logger })).ca;
      } catch (err) {
        if (attempt >= 10 || stopping) throw err;
        logger.warn({ err: (err as Error).message, attempt }, 'cannot load the mesh root yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 10_000)));
      }
    }
  }

  return {
    index,
    store,
    async start() {
      monitoring = await startMonitoringServer({
        host: settings.monitoring.host,
        port: settings.monitoring.port,
        registry: options.registry,
        readiness,
        xds,
        logger,
        debug: () => ({
          leader: elector?.status() ?? { leader: leaderWork, election: 'disabled' },
          informers: informers?.status(),
          configDirectoryErrors: directory?.errors(),
          workQueue: queue.stats(),
          statusWriter: statusWriter?.stats(),
        }),
      });
      ca = await loadCa();
      caTask();

      if (rest) {
        informers = createInformers({ rest, index, queue, logger });
        publisher = createRootCertPublisher({ rest, rootCertPem: ca.rootCertPem, namespaces: () => index.list('Namespace'), logger });
        deployer = createWaypointDeployer({
          kubeConfig: loadKubeConfig(settings.kubernetes!),
          logger,
          settings: {
            image: settings.waypointImage,
            clusterId: settings.clusterId,
            trustDomain: settings.trustDomain,
            controllerNamespace: settings.podNamespace,
            clusterDomain: settings.clusterDomain,
            xdsAddress: `${settings.serviceName}.${settings.podNamespace}.svc:${settings.xds.port}`,
          },
        });
        informers.start();
        await informers.whenSynced();
      } else {
        directory = createDirectorySource({ dir: settings.embedded!.configDir, index, queue, logger });
        await directory.start();
      }
      await queue.drained();
      syncedTask();

      const lookup = createPodLookup(index);
      const caService = createCaService({
        ca,
        authenticate: authenticate ?? loopbackAuthenticator,
        logger,
        clusterId: settings.clusterId,
        trustedNodeAccounts: settings.trustedNodeAccounts,
        nodeOfCaller: (c) => lookup.nodeOfCaller(c),
        podsOnNode: (n) => lookup.podsOnNode(n),
      });
      const tls = await issueServingCertificate(ca, {
        namespace: settings.podNamespace,
        serviceName: settings.serviceName,
        clusterDomain: settings.clusterDomain,
        extraDnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1', '::1'],
      });
      grpc = await startControlPlaneServer({
        services: [xds, caService],
        tls: { certChainPem: tls.certPem, keyPem: tls.keyPem },
        host: settings.xds.host,
        port: settings.xds.port,
        logger,
      });
      xdsTask();

      if (rest && settings.leaderElection.enabled) {
        const le = settings.leaderElection;
        elector = createLeaderElector({
          rest,
          namespace: le.leaseNamespace,
          name: le.leaseName,
          identity: settings.podName,
          leaseDurationMs: le.leaseDurationMs,
          renewDeadlineMs: le.renewDeadlineMs,
          retryPeriodMs: le.retryPeriodMs,
          logger,
          onStartedLeading: startLeaderWork,
          onStoppedLeading: stopLeaderWork,
        });
        elector.start();
      } else if (rest) {
        startLeaderWork();
      }
      logger.info({ xdsPort: grpc.port, monitoringPort: monitoring.port, mode: rest ? 'kubernetes' : 'embedded' }, 'controller started');
    },
    stop(reason = 'stop requested') {
      stopping ??= (async () => {
        logger.info({ reason }, 'controller stopping');
        if (elector) await elector.stop();
        else if (leaderWork) stopLeaderWork();
        await Promise.all([publisher?.stop(), deployer?.stop().catch(() => undefined)]);
        statusWriter?.close();
        xds.close();
        await grpc?.close(5_000);
        directory?.stop();
        await informers?.stop();
        await queue.stop();
        await monitoring?.close();
        rest?.close();
        logger.info('controller stopped');
      })();
      return stopping;
    },
    ready: () => readiness.ready(),
    xdsPort: () => grpc?.port ?? 0,
    monitoringPort: () => monitoring?.port ?? 0,
    ca: () => ca,
    leader: () => elector,
    directory: () => directory,
    leading: () => leaderWork,
  };
}
