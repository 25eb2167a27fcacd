// The waypoint deployer (istiod's gateway DeploymentController + ClassController for the istio-waypoint class):
// watches Gateways, GatewayClasses and the objects it generated, and for each waypoint Gateway server-side applies
// a ServiceAccount, Deployment and Service owned by the Gateway, then writes the Gateway's status. It runs only while
// this replica leads: the caller starts and stops it. Informer callbacks only enqueue Gateway keys; one worker
// reconciles a key at a time from the caches.
import {
  AppsV1Api, CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, setHeaderOptions,
  type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Deployment, type V1Service, type V1ServiceAccount,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  FIELD_MANAGER, GATEWAY_API_GROUP, GATEWAY_API_VERSION, GATEWAY_NAME_LABEL, MANAGED_LABEL, MANAGED_LABEL_VALUE, MANAGED_SELECTOR,
  WAYPOINT_CLASS_DESCRIPTION, WAYPOINT_CONTROLLER_NAME, WAYPOINT_GATEWAY_CLASS,
} from './constants.js';
import {
  evaluateWaypointGateway, renderWaypointObjects, resolveWaypointSettings,
  type GatewayObject, type ResolvedWaypointSettings, type WaypointSettings,
} from './manifests.js';
import { buildGatewayStatus, describeGateway, gatewayClassStatusUpdate, gatewayStatusChanged, type GatewayClassObject, type ObservedWaypoint } from './status.js';
import { errorSummary, httpStatusOf, startResilientInformer, type ResilientInformer } from './watch.js';
import { createWorkQueue, type WorkQueue } from './work-queue.js';

export interface WaypointDeployerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  settings: WaypointSettings;
  /** Backoff of failed reconciles and broken watches; default 500 ms doubling to 30 s. */
  retry?: { minMs?: number; maxMs?: number };
}

export interface WaypointDeployer {
  /** Starts watching and reconciling; resolves once the watches are set up (not synced). Idempotent. */
  start(): Promise<void>;
  /** Stops watching and waits for a running reconcile to finish. Idempotent; start() may be called again. */
  stop(): Promise<void>;
}

const CLASSES_KEY = '#gatewayclasses';
const GATEWAY_CRDS_HINT = 'install the Gateway API CRDs (standard channel) to use waypoints';

export function createWaypointDeployer(options: WaypointDeployerOptions): WaypointDeployer {
  const settings = resolveWaypointSettings(options.settings);
  const logger = options.logger.child({ component: 'waypoint-deployer' });
  let run: DeployerRun | undefined;
  return {
    async start() {
      if (run) return;
      run = new DeployerRun(options.kubeConfig, settings, logger, options.retry ?? {});
      logger.info({ image: settings.image, xdsAddress: settings.xdsAddress }, 'waypoint deployer started');
    },
    async stop() {
      const r = run;
      run = undefined;
      if (!r) return;
      await r.stop();
      logger.info('waypoint deployer stopped');
    },
  };
}

type Managed = V1ServiceAccount | V1Deployment | V1Service;

class DeployerRun {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly objects: KubernetesObjectApi;
  private readonly queue: WorkQueue = createWorkQueue();
  private readonly failures = new Map<string, number>();
  private readonly gateways: ResilientInformer<GatewayObject & KubernetesObject>;
  private readonly classes: ResilientInformer<GatewayClassObject & KubernetesObject>;
  private readonly deployments: ResilientInformer<V1Deployment>;
  private readonly services: ResilientInformer<V1Service>;
  private readonly serviceAccounts: ResilientInformer<V1ServiceAccount>;
  private readonly worker: Promise<void>;
  private readonly minRetry: number;
  private readonly maxRetry: number;
  private stopped = false;

  constructor(kubeConfig: KubeConfig, private readonly settings: ResolvedWaypointSettings, private readonly log: Logger, retry: { minMs?: number; maxMs?: number }) {
    this.minRetry = retry.minMs ?? 500;
    this.maxRetry = retry.maxMs ?? 30_000;
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.objects = KubernetesObjectApi.makeApiClient(kubeConfig);
    const common = { kubeConfig, logger: log, minRetryMs: this.minRetry, maxRetryMs: this.maxRetry };
    // Gateway API kinds: cluster-wide lists through the custom-objects API; "not served" until the CRDs exist.
    const gatewayApi = <T extends KubernetesObject>(plural: string, what: string, onEvent: (o: T) => void) => startResilientInformer<T>({
      ...common, what, notServedHint: GATEWAY_CRDS_HINT, path: `/apis/${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}/${plural}`,
      list: () => this.custom.listClusterCustomObject({ group: GATEWAY_API_GROUP, version: GATEWAY_API_VERSION, plural }) as Promise<KubernetesListObject<T>>,
      handler: { onEvent: (_kind, o) => onEvent(o) },
    });
    this.gateways = gatewayApi<GatewayObject & KubernetesObject>('gateways', 'Gateways', (o) => this.queue.add(gatewayKey(o.metadata.namespace ?? '', o.metadata.name)));
    this.classes = gatewayApi<GatewayClassObject & KubernetesObject>('gatewayclasses', 'GatewayClasses', (o) => {
      this.queue.add(CLASSES_KEY);
      for (const g of this.gateways.list()) if (g.spec?.gatewayClassName === o.metadata.name) this.queue.add(gatewayKey(g.metadata.namespace ?? '', g.metadata.name));
    });
    const toOwner = { onEvent: (_kind: string, o: Managed) => this.enqueueOwner(o) };
    this.deployments = startResilientInformer<V1Deployment>({
      ...common, what: 'waypoint Deployments', path: '/apis/apps/v1/deployments', labelSelector: MANAGED_SELECTOR, handler: toOwner,
      list: () => this.apps.listDeploymentForAllNamespaces({ labelSelector: MANAGED_SELECTOR }) as Promise<KubernetesListObject<V1Deployment>>,
    });
    this.services = startResilientInformer<V1Service>({
      ...common, what: 'waypoint Services', path: '/api/v1/services', labelSelector: MANAGED_SELECTOR, handler: toOwner,
      list: () => this.core.listServiceForAllNamespaces({ labelSelector: MANAGED_SELECTOR }) as Promise<KubernetesListObject<V1Service>>,
    });
    this.serviceAccounts = startResilientInformer<V1ServiceAccount>({
      ...common, what: 'waypoint ServiceAccounts', path: '/api/v1/serviceaccounts', labelSelector: MANAGED_SELECTOR, handler: toOwner,
      list: () => this.core.listServiceAccountForAllNamespaces({ labelSelector: MANAGED_SELECTOR }) as Promise<KubernetesListObject<V1ServiceAccount>>,
    });
    this.queue.add(CLASSES_KEY);
    this.worker = this.work();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.stop();
    await Promise.all([this.gateways, this.classes, this.deployments, this.services, this.serviceAccounts].map((i) => i.stop()));
    await this.worker;
  }

  private enqueueOwner(o: Managed): void {
    const ns = o.metadata?.namespace ?? '';
    const owner = o.metadata?.ownerReferences?.find((r) => r.kind === 'Gateway' && r.apiVersion.startsWith(`${GATEWAY_API_GROUP}/`));
    const name = owner?.name ?? o.metadata?.labels?.[GATEWAY_NAME_LABEL];
    if (name) this.queue.add(gatewayKey(ns, name));
  }

  private async work(): Promise<void> {
    // Decisions need complete caches: a missing class would look like the built-in one, a missing Deployment
    // like one to create. Until the Gateway API CRDs exist nothing can be queued for a Gateway anyway.
    await Promise.all([this.gateways, this.classes, this.deployments, this.services, this.serviceAccounts].map((i) => i.whenSynced()));
    if (!this.stopped) this.log.debug('waypoint deployer caches synced');
    for (;;) {
      const key = await this.queue.next();
      if (key === undefined) return;
      try {
        if (key === CLASSES_KEY) await this.reconcileClasses();
        else await this.reconcileGateway(key);
        this.failures.delete(key);
      } catch (err) {
        if (this.stopped) {
          this.queue.done(key);
          return;
        }
        const attempts = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, attempts);
        const delay = Math.min(this.maxRetry, this.minRetry * 2 ** (attempts - 1));
        this.log.warn({ key, attempts, retryInMs: delay, err: errorSummary(err) }, 'waypoint reconcile failed; will retry');
        this.queue.add(key, delay);
      }
      this.queue.done(key);
    }
  }

  /** istio-waypoint exists (created if absent, as istiod does; an existing class is never modified) and every class of ours is Accepted. */
  private async reconcileClasses(): Promise<void> {
    if (!this.classes.get(WAYPOINT_GATEWAY_CLASS)) {
      try {
        await this.custom.createClusterCustomObject({
          group: GATEWAY_API_GROUP, version: GATEWAY_API_VERSION, plural: 'gatewayclasses',
          body: {
            apiVersion: `${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}`, kind: 'GatewayClass',
            metadata: { name: WAYPOINT_GATEWAY_CLASS },
            spec: { controllerName: WAYPOINT_CONTROLLER_NAME, description: WAYPOINT_CLASS_DESCRIPTION },
          },
          fieldManager: FIELD_MANAGER,
        });
        this.log.info({ gatewayClass: WAYPOINT_GATEWAY_CLASS }, 'created GatewayClass');
      } catch (err) {
        if (httpStatusOf(err) !== 409) throw err; // 409: someone else created it first
      }
    }
    for (const gc of this.classes.list()) {
      const status = gatewayClassStatusUpdate(gc, new Date());
      if (!status) continue;
      await this.custom.patchClusterCustomObjectStatus(
        {
          group: GATEWAY_API_GROUP, version: GATEWAY_API_VERSION, plural: 'gatewayclasses', name: gc.metadata.name,
          body: { apiVersion: `${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}`, kind: 'GatewayClass', metadata: { name: gc.metadata.name }, status },
          fieldManager: FIELD_MANAGER, force: true,
        },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
      this.log.info({ gatewayClass: gc.metadata.name }, 'GatewayClass accepted');
    }
  }

  /** Is this Gateway's class implemented here? Istio: the class's controllerName, or the built-in name when the class does not exist. */
  private isWaypointGateway(gw: GatewayObject): boolean {
    const className = gw.spec?.gatewayClassName;
    if (!className) return false;
    const gc = this.classes.get(className);
    return gc ? gc.spec?.controllerName === WAYPOINT_CONTROLLER_NAME : className === WAYPOINT_GATEWAY_CLASS;
  }

  private async reconcileGateway(key: string): Promise<void> {
    const { namespace, name } = parseGatewayKey(key);
    const gw = this.gateways.get(name, namespace);
    // Deleted: the API server's garbage collector removes what the Gateway owns.
    if (!gw || gw.metadata.deletionTimestamp || !this.isWaypointGateway(gw)) return;
    const log = this.log.child({ gateway: key });
    const evaluation = evaluateWaypointGateway(gw);
    const observed: ObservedWaypoint = {};
    if (evaluation.deploy) {
      const desired = renderWaypointObjects(gw, evaluation, this.settings);
      const sa = await this.ensure('ServiceAccount', desired.serviceAccount, this.serviceAccounts, log);
      if (sa.conflict) log.info({ serviceAccount: desired.serviceAccount.metadata!.name }, 'using the existing ServiceAccount, which the waypoint controller does not manage');
      const svc = await this.ensure('Service', desired.service, this.services, log);
      const dep = await this.ensure('Deployment', desired.deployment, this.deployments, log);
      observed.service = svc.object as ObservedWaypoint['service'];
      observed.deployment = dep.object as ObservedWaypoint['deployment'];
      const conflict = [svc.conflict, dep.conflict].filter(Boolean).join('; ');
      if (conflict) observed.conflict = conflict;
    } else {
      await this.removeGenerated(gw, evaluation.deploymentName, evaluation.serviceAccountName, log);
    }
    const status = buildGatewayStatus(gw, evaluation, observed, this.settings.clusterDomain, new Date());
    if (!gatewayStatusChanged(gw.status, status)) return;
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GATEWAY_API_GROUP, version: GATEWAY_API_VERSION, plural: 'gateways', namespace, name,
        body: { apiVersion: `${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}`, kind: 'Gateway', metadata: { name, namespace }, status },
        fieldManager: FIELD_MANAGER, force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    const cond = (t: string) => status.conditions.find((c) => c.type === t);
    log.info({ accepted: cond('Accepted')?.status, programmed: cond('Programmed')?.status, reason: cond('Programmed')?.reason }, `${describeGateway(gw)} status written`);
  }

  /**
   * Server-side applies one generated object unless the cached copy already holds everything we want. An existing
   * object without the managed label is someone else's: it is left alone (Istio's canManage) and reported.
   */
  private async ensure(kind: 'ServiceAccount' | 'Service' | 'Deployment', desired: Managed & { apiVersion: string; kind: string }, cache: ResilientInformer<Managed>, log: Logger): Promise<{ object?: Managed; conflict?: string }> {
    const name = desired.metadata!.name!;
    const namespace = desired.metadata!.namespace!;
    const cached = cache.get(name, namespace);
    const difference = cached ? firstDifference(cached, desired) : undefined;
    if (cached && difference === undefined) return { object: cached };
    if (!cached) {
      const existing = await this.readUnmanaged(kind, name, namespace);
      if (existing && existing.metadata?.labels?.[MANAGED_LABEL] !== MANAGED_LABEL_VALUE) {
        return { object: existing, conflict: `${kind} ${namespace}/${name} already exists and is not managed by the waypoint controller (no ${MANAGED_LABEL}=${MANAGED_LABEL_VALUE} label); delete or rename it` };
      }
    }
    const applied = await this.objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    log.info({ kind, name, ...(difference ? { difference } : {}) }, cached ? `${kind} restored to the waypoint's spec` : `${kind} applied`);
    return { object: applied as Managed };
  }

  private async readUnmanaged(kind: 'ServiceAccount' | 'Service' | 'Deployment', name: string, namespace: string): Promise<Managed | undefined> {
    try {
      if (kind === 'ServiceAccount') return await this.core.readNamespacedServiceAccount({ name, namespace });
      if (kind === 'Service') return await this.core.readNamespacedService({ name, namespace });
      return await this.apps.readNamespacedDeployment({ name, namespace });
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** A Gateway that stopped being deployable loses the objects generated for it (only ours, only its own). */
  private async removeGenerated(gw: GatewayObject, deploymentName: string, serviceAccountName: string, log: Logger): Promise<void> {
    const namespace = gw.metadata.namespace ?? '';
    const uid = gw.metadata.uid;
    const ownedHere = (o: Managed | undefined): boolean => !!o && !!o.metadata?.ownerReferences?.some((r) => r.uid === uid);
    const steps: [string, Managed | undefined, () => Promise<unknown>][] = [
      ['Deployment', this.deployments.get(deploymentName, namespace), () => this.apps.deleteNamespacedDeployment({ name: deploymentName, namespace })],
      ['Service', this.services.get(deploymentName, namespace), () => this.core.deleteNamespacedService({ name: deploymentName, namespace })],
      ['ServiceAccount', this.serviceAccounts.get(serviceAccountName, namespace), () => this.core.deleteNamespacedServiceAccount({ name: serviceAccountName, namespace })],
    ];
    for (const [kind, obj, del] of steps) {
      if (!ownedHere(obj)) continue;
      try {
        await del();
        log.info({ kind, name: obj!.metadata!.name }, `${kind} removed: the Gateway is not accepted`);
      } catch (err) {
        if (httpStatusOf(err) !== 404) throw err;
      }
    }
  }
}

function gatewayKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function parseGatewayKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/**
 * Where `actual` fails to hold a field of `desired` (a path like `spec.ports[1].name`), or undefined when it holds
 * them all. Fields the server or other writers added are ignored (as server-side apply does); arrays must match
 * element by element. apiVersion/kind are skipped at the top (list items lack them).
 */
export function firstDifference(actual: unknown, desired: unknown, path = ''): string | undefined {
  if (desired === undefined) return undefined;
  // The API server drops zero values of omitempty fields (`annotations: {}`, `initialDelaySeconds: 0`).
  if (actual === undefined && isZeroValue(desired)) return undefined;
  if (desired === null || typeof desired !== 'object') return actual === desired ? undefined : path || '(value)';
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual) || actual.length !== desired.length) return `${path} (length)`;
    for (const [i, d] of desired.entries()) {
      const diff = firstDifference(actual[i], d, `${path}[${i}]`);
      if (diff !== undefined) return diff;
    }
    return undefined;
  }
  // An absent object holds a desired one whose every leaf is a dropped zero value.
  const a = (actual === undefined ? {} : actual) as Record<string, unknown>;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) return path || '(object)';
  for (const [k, v] of Object.entries(desired as Record<string, unknown>)) {
    if (path === '' && (k === 'apiVersion' || k === 'kind')) continue;
    const diff = firstDifference(a[k], v, path ? `${path}.${k}` : k);
    if (diff !== undefined) return diff;
  }
  return undefined;
}

function isZeroValue(v: unknown): boolean {
  if (v === 0 || v === '' || v === false || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && v !== null && Object.keys(v).length === 0;
}
