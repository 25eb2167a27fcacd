// Leader work: ConfigMap `istio-ca-root-cert` (key root-cert.pem) in every namespace, as istiod's namespace
// controller keeps it. A watch on those ConfigMaps (by name, all namespaces) repairs edits and deletions;
// namespace changes come from the dispatcher. One worker queue of namespace names does all writes.
import type { Logger } from 'pino';
import { ROOT_CERT_CONFIGMAP, ROOT_CERT_CONFIGMAP_KEY, type KubeObject } from '@ambit/api';
import { KubeApiError, type KubeRest } from '../k8s/kube-rest.js';
import { createReflector, type Reflector } from '../k8s/reflector.js';
import { collectionPath, objectPath, RESOURCES } from '../k8s/resources.js';
import { createWorkQueue, type WorkQueue } from '../k8s/work-queue.js';

export interface RootCertPublisherOptions {
  rest: KubeRest;
  rootCertPem: string;
  /** Names of the namespaces that exist (from the informers' index), and whether one is being deleted. */
  namespaces(): Iterable<KubeObject>;
  logger: Logger;
}

export interface RootCertPublisher {
  /** Starts watching and reconciling every namespace (call when becoming leader). */
  start(): void;
  /** Stops at once (lost leadership or shutdown). */
  stop(): Promise<void>;
  /** A namespace was added, changed or deleted. */
  namespaceChanged(name: string): void;
  running(): boolean;
  /** ConfigMaps written since start (created or repaired). */
  writes(): number;
}

export function createRootCertPublisher(options: RootCertPublisherOptions): RootCertPublisher {
  const logger = options.logger.child({ component: 'root-cert-publisher' });
  const { rest } = options;
  /** What the watch says each namespace's ConfigMap holds (undefined key: none). */
  const current = new Map<string, string | undefined>();
  let reflector: Reflector | undefined;
  let queue: WorkQueue<string> | undefined;
  let writes = 0;

  function namespaceState(name: string): 'active' | 'terminating' | 'absent' {
    for (const ns of options.namespaces()) {
      if (ns.metadata.name !== name) continue;
      return ns.metadata.deletionTimestamp || ns.status?.phase === 'Terminating' ? 'terminating' : 'active';
    }
    return 'absent';
  }

  async function reconcile(names: string[]): Promise<void> {
    for (const ns of names) {
      if (namespaceState(ns) !== 'active') continue;
      const have = current.get(ns);
      if (have === options.rootCertPem) continue;
      const body = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: ROOT_CERT_CONFIGMAP, namespace: ns, labels: { 'istio.io/config': 'true' } },
        data: { [ROOT_CERT_CONFIGMAP_KEY]: options.rootCertPem },
      };
      try {
        if (current.has(ns)) {
          await rest.request('PATCH', objectPath(RESOURCES.ConfigMap, ns, ROOT_CERT_CONFIGMAP), {
            body: { data: body.data, metadata: { labels: body.metadata.labels } }, contentType: 'application/merge-patch+json',
          });
          logger.info({ namespace: ns }, `repaired ConfigMap ${ROOT_CERT_CONFIGMAP}`);
        } else {
          await rest.request('POST', collectionPath(RESOURCES.ConfigMap, ns), { body });
          logger.info({ namespace: ns }, `created ConfigMap ${ROOT_CERT_CONFIGMAP}`);
        }
        writes++;
        current.set(ns, options.rootCertPem);
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) {
          // Created by someone else between our watch event and now: patch it on the next pass.
          current.set(ns, undefined);
          throw err;
        }
        if (err instanceof KubeApiError && err.status === 404 && current.has(ns)) {
          current.delete(ns);
          throw err;
        }
        if (err instanceof KubeApiError && (err.status === 403 || err.status === 404) && namespaceState(ns) !== 'active') continue;
        throw err;
      }
    }
  }

  const publisher: RootCertPublisher = {
    start() {
      if (queue) return;
      const q = createWorkQueue<string>({ process: reconcile, logger, retryDelayMs: 500, maxAttempts: 10 });
      queue = q;
      reflector = createReflector({
        rest,
        resource: RESOURCES.ConfigMap,
        kind: 'ConfigMap',
        apiVersion: 'v1',
        fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}`,
        logger,
        onEvent(type, obj) {
          const ns = obj.metadata.namespace ?? '';
          if (type === 'delete') current.delete(ns);
          else current.set(ns, (obj as { data?: Record<string, string> }).data?.[ROOT_CERT_CONFIGMAP_KEY]);
          q.add(ns);
        },
        onSynced() {
          for (const ns of options.namespaces()) q.add(ns.metadata.name);
        },
      });
      reflector.start();
    },
    async stop() {
      const r = reflector;
      const q = queue;
      reflector = undefined;
      queue = undefined;
      current.clear();
      await Promise.all([r?.stop(), q?.stop()]);
    },
    namespaceChanged(name) {
      // Before the ConfigMap watch has listed, onSynced enqueues every namespace anyway.
      if (queue && reflector?.status().synced) queue.add(name);
    },
    running: () => queue !== undefined,
    writes: () => writes,
  };
  return publisher;
}
