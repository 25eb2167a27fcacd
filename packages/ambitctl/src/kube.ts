// Kubeconfig and context handling the way kubectl does it: --kubeconfig, else $KUBECONFIG (colon-separated list,
// merged), else ~/.kube/config, else the in-cluster service account; --context picks a context; the namespace
// comes from -n, else the context's namespace, else "default".
import { existsSync } from 'node:fs';
import { KubeConfig, KubernetesObjectApi, CoreV1Api, ApiextensionsV1Api } from '@kubernetes/client-node';
import { CliError, type CliIo } from './io.js';

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export interface Kube {
  config: KubeConfig;
  namespace: string;
  objects: KubernetesObjectApi;
  core: CoreV1Api;
  crds: ApiextensionsV1Api;
}

export function connect(options: KubeOptions, io: CliIo): Kube {
  const kc = new KubeConfig();
  try {
    const files = options.kubeconfig ? [options.kubeconfig] : (io.env.KUBECONFIG ?? '').split(':').filter(Boolean);
    if (files.length === 0 && io.env.HOME && existsSync(`${io.env.HOME}/.kube/config`)) files.push(`${io.env.HOME}/.kube/config`);
    if (files.length > 0) {
      // Several files: the first names the current context; the others add their clusters, users and contexts.
      for (const [i, f] of files.entries()) {
        const one = new KubeConfig();
        one.loadFromFile(f);
        if (i === 0) kc.loadFromFile(f);
        else kc.mergeConfig(one, true);
      }
    } else if (io.env.KUBERNETES_SERVICE_HOST) {
      kc.loadFromCluster();
    } else {
      throw new Error('no kubeconfig: set --kubeconfig or KUBECONFIG, or create ~/.kube/config');
    }
  } catch (err) {
    throw new CliError(`cannot load kubeconfig${options.kubeconfig ? ` ${options.kubeconfig}` : ''}: ${(err as Error).message}`);
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new CliError(`context "${options.context}" does not exist in the kubeconfig (known: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) throw new CliError('no cluster configured: set --kubeconfig, KUBECONFIG or ~/.kube/config');
  const namespace = options.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return {
    config: kc,
    namespace,
    objects: KubernetesObjectApi.makeApiClient(kc),
    core: kc.makeApiClient(CoreV1Api),
    crds: kc.makeApiClient(ApiextensionsV1Api),
  };
}

/** HTTP status of a client-node error, if it carries one. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's message (Status.message) when there is one, else the error's. */
export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown } | undefined)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      // not JSON: fall through
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  const msg = err instanceof Error ? err.message : String(err);
  const server = /cannot|ECONNREFUSED|ENOTFOUND|certificate/i.test(msg) ? ' (is the cluster reachable with this kubeconfig?)' : '';
  return `${msg}${server}`;
}

/**
 * Retries a read the apiserver refused for a moment (429 Too Many Requests, 503, or a CRD whose storage is still
 * initializing right after it was created), like kubectl's client does; gives up after `budgetMs`.
 */
export async function retryTransient<T>(fn: () => Promise<T>, budgetMs = 15_000): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      const status = statusOf(err);
      const transient = status === 429 || status === 503 || /storage is \(re\)initializing/.test(apiMessage(err));
      if (!transient || Date.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
