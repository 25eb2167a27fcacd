// The agent's Kubernetes access: a KubeConfig from a kubeconfig file or the pod's in-cluster credentials, and the
// few calls the node agent makes. RBAC the agent needs: pods get/list/watch, pods/status patch, namespaces
// get/list/watch (the redirection annotation is written through pods/status, the lower privilege, as Istio does).
import {
  ApiException, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, Watch,
  type V1Namespace, type V1NamespaceList, type V1Pod, type V1PodList,
} from '@kubernetes/client-node';
import type { KubernetesConnection } from '../config/load.js';

export function createKubeConfig(connection: KubernetesConnection): KubeConfig {
  const kc = new KubeConfig();
  if (connection.kind === 'kubeconfig') {
    kc.loadFromFile(connection.path);
    return kc;
  }
  const c = connection.connection;
  // The tokenFile auth provider re-reads the file (at most a minute old), so a rotated projected token is used
  // without a restart. The paths come from inClusterConnection(), which honours AMBIT_MOUNTS.
  kc.loadFromClusterAndUser(
    { name: 'in-cluster', server: c.server, caFile: c.caFile, skipTLSVerify: false },
    { name: 'node-agent', authProvider: { name: 'tokenFile', config: { tokenFile: c.tokenFile } } },
  );
  return kc;
}

/** What the enrollment controller needs from the API server; tests provide a fake. */
export interface NodeAgentApi {
  readonly watch: Watch;
  listPods(fieldSelector: string): Promise<V1PodList>;
  listNamespaces(): Promise<V1NamespaceList>;
  /** undefined when the pod does not exist. */
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  getNamespace(name: string): Promise<V1Namespace | undefined>;
  /** JSON merge patch of the pod's annotations (null removes one), through the pods/status subresource. */
  patchPodAnnotations(namespace: string, name: string, annotations: Record<string, string | null>): Promise<void>;
}

const isNotFound = (err: unknown): boolean => err instanceof ApiException && err.code === 404;

export function createNodeAgentApi(kc: KubeConfig): NodeAgentApi {
  const core = kc.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  return {
    watch: new Watch(kc),
    listPods: (fieldSelector) => core.listPodForAllNamespaces({ fieldSelector }),
    listNamespaces: () => core.listNamespace(),
    async getPod(namespace, name) {
      try {
        return await core.readNamespacedPod({ namespace, name });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async getNamespace(name) {
      try {
        return await core.readNamespace({ name });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async patchPodAnnotations(namespace, name, annotations) {
      await core.patchNamespacedPodStatus({ namespace, name, body: { metadata: { annotations } } }, mergePatch);
    },
  };
}

/** One line for a log: the API's status code and message when there is one. */
export function describeApiError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: unknown } | string | undefined;
    const message = typeof body === 'object' && body && typeof body.message === 'string' ? body.message : typeof body === 'string' ? body.slice(0, 200) : '';
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  if (!(err instanceof Error)) return String(err);
  // undici's "fetch failed" hides the reason (refused, TLS, DNS) in its cause.
  const cause = err.cause as { message?: string; code?: string } | undefined;
  return cause?.message && cause.message !== err.message ? `${err.message}: ${cause.code ? `${cause.code} ` : ''}${cause.message}` : err.message;
}
