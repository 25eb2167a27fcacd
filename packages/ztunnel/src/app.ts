// Wiring only: builds the agent from one Config and its runtime handles, and hands each part what it needs.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createAdminServers, type AdminServers } from './admin/servers.js';
import { describeCertifiedKey, type CertificateInfo } from './admin/config-dump.js';
import { createReadiness, type Readiness } from './admin/readiness.js';
import type { Config } from './config/load.js';
import { watchLocalConfig, type LocalConfigWatcher } from './discovery/local-config.js';
import { buildXdsNode, createXdsClient, type XdsClient } from './discovery/xds-client.js';
import { createConfiguredCaClient } from './identity/ca-client.js';
import { SecretManager } from './identity/secret-manager.js';
import { createDaemonSetLookup, decideUninstall } from './cni/install-decision.js';
import { createCniInstaller, type CniInstaller } from './cni/install.js';
import { createEnrollmentServer, type EnrollmentServer } from './inpod/enrollment-api.js';
import { createPodEnrollment, type PodEnrollment } from './inpod/pod-enrollment.js';
import { createPodRegistry } from './inpod/pod-registry.js';
import { createAmbientEnrollment, type AmbientEnrollment } from './k8s/ambient-enrollment.js';
import { createKubeConfig, createNodeAgentApi } from './k8s/kube-client.js';
import { createNetnsFinder } from './k8s/netns-finder.js';
import { ConnectionTracker } from './proxy/connections.js';
import { PodManager } from './proxy/pod-manager.js';
import { createStateStore, type StateStore } from './state/store.js';
import { createStateUpdater } from './state/updater.js';
import { createConnectionTelemetry } from './telemetry/connection-result.js';
import { createLogLevels } from './telemetry/log-levels.js';
import { createConnectionMetrics } from './telemetry/metrics.js';

/** Live handles kept apart from the frozen Config (linkerd's Config vs Runtime). */
export interface Runtime {
  logger: Logger;
  registry: Registry;
  version: string;
  /** Called when the agent asks to exit (after /quitquitquit or a finished drain). */
  exit: (code: number) => void;
}

export interface App {
  readonly state: StateStore;
  readonly readiness: Readiness;
  readonly pods: PodManager;
  readonly enrollment: PodEnrollment;
  readonly connections: ConnectionTracker;
  start(): Promise<void>;
  /** Drain: stop accepting everywhere, wait for live connections (bounded by config), then close. */
  shutdown(reason: string): Promise<void>;
}

export async function createApp(config: Readonly<Config>, runtime: Runtime): Promise<App> {
  const { logger, registry } = runtime;
  const logLevels = createLogLevels({ root: logger, initial: config.logLevel });
  const log = logLevels.logger('agent');
  const state = createStateStore({ logger: logLevels.logger('state') });
  const updater = createStateUpdater({ store: state });
  const readiness = createReadiness();

  // Config guarantees exactly one state source (LOCAL_XDS_PATH or XDS_ADDRESS) and one CA (local files or CA_ADDRESS).
  const { ca, close: closeCa } = await createConfiguredCaClient(config, logLevels.logger('ca'));
  const xds: XdsClient | undefined = config.localXdsPath ? undefined : createXdsClient({
    address: config.xdsAddress!, rootCaPath: config.xdsRootCaPath, authToken: config.authToken, clusterId: config.clusterId,
    headers: config.xdsHeaders, node: buildXdsNode(config), updater, registry, logger: logLevels.logger('xds'),
  });
  const secrets = new SecretManager(ca, logLevels.logger('certificates'));
  const metrics = createConnectionMetrics(registry, { component: 'ztunnel', tag: runtime.version });
  const telemetry = createConnectionTelemetry({ metrics, logger: logLevels.logger('access') });
  const connections = new ConnectionTracker();
  const pods = new PodManager({ inputs: { config, state, secrets, telemetry, connections, logger: logLevels.logger('proxy') }, driftCheckIntervalMs: config.ruleCheckIntervalMs });
  const podRegistry = createPodRegistry({ path: config.podSnapshotPath, logger: logLevels.logger('inpod') });
  // Kubernetes mode: the Pod and Namespace labels decide what is captured, running pods are captured and released
  // as labels change, and captured pods are annotated. Without it, every pod the CNI plugin sends is captured.
  const kubeConfig = config.kubernetes ? createKubeConfig(config.kubernetes.connection) : undefined;
  const ambient: AmbientEnrollment | undefined = config.kubernetes && kubeConfig ? createAmbientEnrollment({
    nodeName: config.nodeName,
    api: createNodeAgentApi(kubeConfig),
    finder: createNetnsFinder({ procDir: config.kubernetes.procDir, netnsDir: config.kubernetes.netnsDir, logger: logLevels.logger('k8s') }),
    logger: logLevels.logger('k8s'),
  }) : undefined;
  const enrollment = createPodEnrollment({ capturer: ambient ? ambient.wrapCapturer(pods) : pods, registry: podRegistry, logger: logLevels.logger('inpod') });
  const enrollServer: EnrollmentServer = createEnrollmentServer({ socketPath: config.cniSocketPath, enrollment, logger: logLevels.logger('inpod') });
  // The chained CNI plugin on this node (istio-cni's install-cni): installed once pods can be enrolled, kept in place
  // while the agent runs, and taken out at exit only when this is an uninstall (cni/install-decision.ts).
  const cniInstaller: CniInstaller | undefined = config.cniInstall ? createCniInstaller({
    confDir: config.cniInstall.confDir,
    binDir: config.cniInstall.binDir,
    entry: {
      type: 'ambit-cni',
      // The path the agent bound is the node's path too: the run dir is a hostPath mounted at the same path (and in
      // the cluster-in-a-box AMBIT_MOUNTS already gave the node's directory).
      agentSocket: config.cniSocketPath,
      logLevel: config.cniInstall.pluginLogLevel,
      excludeNamespaces: config.cniInstall.excludeNamespaces,
    },
    logger: logLevels.logger('cni-install'),
    ...(config.cniInstall.pluginExecutable ? { pluginExecutable: config.cniInstall.pluginExecutable } : {}),
  }) : undefined;
  const daemonSet = config.cniInstall?.uninstallOnExit === 'auto' && kubeConfig
    ? createDaemonSetLookup({ kubeConfig, podNamespace: config.podNamespace, podName: config.podName })
    : undefined;
  let cniStarted = false;
  let watcher: LocalConfigWatcher | undefined;
  let admin: AdminServers | undefined;
  let shuttingDown: Promise<void> | undefined;

  // Decided after our enrollment server closed, so only another agent can answer on the socket.
  const finishCniInstall = async (installer: CniInstaller): Promise<boolean> => {
    const cniLog = logLevels.logger('cni-install');
    try {
      await installer.stop();
      const decision = await decideUninstall({
        mode: config.cniInstall!.uninstallOnExit, socketPath: config.cniSocketPath, ...(daemonSet ? { daemonSet: () => daemonSet.state() } : {}),
      });
      cniLog.info({ uninstall: decision.uninstall, reason: decision.reason }, decision.uninstall ? `removing the CNI plugin: ${decision.reason}` : `leaving the CNI plugin installed: ${decision.reason}`);
      if (decision.uninstall) await installer.uninstall();
      return decision.uninstall;
    } catch (err) {
      cniLog.error({ err }, `CNI plugin uninstall failed: ${(err as Error).message}`);
      return false;
    }
  };

  const certificates = (): CertificateInfo[] => secrets.list().map((c) =>
    describeCertifiedKey(c, c.state === 'available' ? 'Available' : c.state === 'initializing' ? 'Initializing' : `Unavailable: ${c.lastError ?? 'unknown'}`));

  const app: App = {
    state, readiness, pods, enrollment, connections,
    async start() {
      // ztunnel is ready only after its first sync: the local file's first load, or one xDS response of each type.
      const stateTask = readiness.register(xds ? 'initial xDS sync' : 'local config');
      const podsTask = readiness.register('pod snapshot');
      const watchTask = ambient ? readiness.register('kubernetes pod watch') : undefined;
      admin = createAdminServers({
        config, state, certificates, logger, logLevels, registry, readiness,
        version: { version: runtime.version },
        workloadState: () => Object.fromEntries(enrollment.list().map((p) => [p.pod.uid, {
          name: p.pod.name, namespace: p.pod.namespace, state: p.captured ? 'Up' : p.outcome === 'declined' ? 'Declined' : 'Pending', ...(p.reason ? { reason: p.reason } : {}),
          connections: connections.listFor(p.pod.uid),
        }])),
        onQuit: () => { void app.shutdown('POST /quitquitquit').then(() => runtime.exit(0)); },
        addresses: {
          admin: hostPort(config.adminAddress), metrics: hostPort(config.metricsAddress), readiness: hostPort(config.readinessAddress),
        },
      });
      await admin.listen();
      if (xds) {
        xds.start();
        // Pods are enrolled only once the state is known, as with the local file; a controller that is down keeps
        // the agent unready (and the CNI plugin's ADD failing, so kubelet retries) rather than capturing blind.
        if (!(await xds.synced)) return; // shut down before the first sync
      } else {
        watcher = watchLocalConfig(config.localXdsPath!, updater, logLevels.logger('local-config'));
        await watcher.ready;
      }
      stateTask();
      if (ambient) {
        // CNI ADDs are decided from the caches, so the enrollment API opens only once pods and namespaces are listed.
        await ambient.start();
        if (shuttingDown) return;
        watchTask?.();
      }
      await enrollServer.listen();
      const restored = await enrollment.restore();
      ambient?.reconcileAll(enrollment);
      if (cniInstaller) {
        // Ready only with the plugin chained, so a Ready agent means new pods on this node are captured at start.
        const cniTask = readiness.register('cni plugin install');
        void daemonSet?.prefetch();
        cniStarted = true;
        await cniInstaller.start();
        if (shuttingDown) return;
        void cniInstaller.installed.then(() => { if (!shuttingDown) cniTask(); });
      }
      podsTask();
      log.info({ captured: restored.captured.length, declined: restored.declined.length, failed: restored.failed.length }, 'agent ready');
    },
    shutdown(reason) {
      shuttingDown ??= (async () => {
        log.info({ reason, connections: connections.size, drainTimeoutMs: config.drainTimeoutMs ?? 'none' }, 'draining');
        readiness.register('shutting down');
        // No capture or release from watch events during the drain; the rules stay for the next agent.
        await ambient?.stop();
        pods.stopAccepting();
        await enrollServer.close().catch(() => {});
        // An agent that never installed (stopped before its first sync) leaves the node's CNI config alone.
        const uninstalling = cniInstaller && cniStarted ? await finishCniInstall(cniInstaller) : false;
        const drained = await connections.waitForDrain(config.drainTimeoutMs);
        if (!drained) log.warn({ left: connections.size }, 'drain bound reached: closing the remaining connections');
        if (uninstalling) {
          // Ambit is being removed from this node (no successor agent, the DaemonSet is gone): no pod may keep
          // redirection rules that point at listeners nobody will serve again.
          const enrolled = enrollment.list();
          for (const p of enrolled) await enrollment.release(p.pod.uid).catch((err: Error) => log.warn({ uid: p.pod.uid, err: err.message }, 'pod not released at uninstall'));
          log.info({ released: enrolled.length }, 'uninstall: released every pod (redirection rules removed)');
        }
        pods.destroyAll('agent shut down');
        secrets.stop();
        closeCa();
        xds?.close();
        await watcher?.close();
        await admin?.close();
        log.info({ reason }, 'agent stopped');
      })();
      return shuttingDown;
    },
  };
  return app;
}

function hostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
