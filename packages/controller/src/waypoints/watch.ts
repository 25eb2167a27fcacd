// A client-node informer that keeps running: client-node's ListWatch stops for good on any error except an expired
// resourceVersion, so this restarts it with capped exponential backoff, reports "not served" (a CRD that is not
// installed yet) once instead of on every retry, and says when its first list has completed (synced).
import { makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface WatchEvents<T> {
  onEvent(kind: 'add' | 'update' | 'delete', obj: T): void;
}

export interface ResilientInformer<T extends KubernetesObject> {
  /** Objects as last seen (empty until synced). */
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): T[];
  readonly synced: boolean;
  /** Resolves once the first list completed (or the informer was stopped). */
  whenSynced(): Promise<void>;
  stop(): Promise<void>;
}

export interface ResilientInformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Watch path, e.g. `/apis/apps/v1/deployments`. */
  path: string;
  /** What the list is called in logs, e.g. `Deployments`. */
  what: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  logger: Logger;
  handler: WatchEvents<T>;
  /** Backoff between restarts; default 500 ms doubling to 30 s. */
  minRetryMs?: number;
  maxRetryMs?: number;
  /** Shown with the "not served" message, e.g. how to install the CRDs. */
  notServedHint?: string;
}

/** HTTP status of a client-node ApiException (or a fetch error), if any. */
export function httpStatusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  const code = typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  return code;
}

/** One line for a client-node error (its multi-line message carries headers we do not want in logs). */
export function errorSummary(err: unknown): string {
  const status = httpStatusOf(err);
  const body = (err as { body?: unknown })?.body;
  let detail: string | undefined;
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') detail = (body as { message: string }).message;
  else if (typeof body === 'string' && body.length > 0) {
    try {
      detail = (JSON.parse(body) as { message?: string }).message ?? body.slice(0, 200);
    } catch {
      detail = body.slice(0, 200);
    }
  }
  if (status !== undefined) return `HTTP ${status}${detail ? `: ${detail}` : ''}`;
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

export function startResilientInformer<T extends KubernetesObject>(options: ResilientInformerOptions<T>): ResilientInformer<T> {
  const minRetry = options.minRetryMs ?? 500;
  const maxRetry = options.maxRetryMs ?? 30_000;
  const log = options.logger.child({ watch: options.what });
  let synced = false;
  let stopped = false;
  let retryMs = minRetry;
  let timer: NodeJS.Timeout | undefined;
  let lastProblem: string | undefined;
  let listed = false;
  let resolveSynced!: () => void;
  const syncedPromise = new Promise<void>((r) => (resolveSynced = r));

  const listFn = async (): Promise<KubernetesListObject<T>> => {
    const list = await options.list();
    listed = true;
    healthy();
    return list;
  };
  const healthy = (): void => {
    if (lastProblem !== undefined) log.info({ previousProblem: lastProblem }, `watching ${options.what} works again`);
    lastProblem = undefined;
    retryMs = minRetry;
  };
  const informer = makeInformer<T>(options.kubeConfig, options.path, listFn, options.labelSelector);
  for (const kind of ['add', 'update', 'delete'] as const) {
    informer.on(kind, (o: T) => {
      if (synced) healthy(); // a watch event: the watch works (events during the first list are not news)
      options.handler.onEvent(kind, o);
    });
  }
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    const status = httpStatusOf(err);
    const problem = status === 404 ? 'not-served' : errorSummary(err);
    if (problem !== lastProblem) {
      // Logged once per distinct problem; the retries go on quietly until it changes or goes away.
      if (status === 404) log.warn({ path: options.path }, `${options.what} are not served by the API server${options.notServedHint ? `; ${options.notServedHint}` : ''}; retrying until they are`);
      else log.warn({ path: options.path, err: problem }, `watching ${options.what} failed; retrying with backoff`);
      lastProblem = problem;
    }
    schedule();
  });

  const run = async (): Promise<void> => {
    if (stopped) return;
    await informer.start();
    // start() resolves after the list and the cache fill (or after a failed list was reported).
    if (!stopped && listed && !synced) {
      synced = true;
      resolveSynced();
    }
  };
  const schedule = (): void => {
    if (stopped || timer) return;
    const delay = retryMs;
    retryMs = Math.min(maxRetry, retryMs * 2);
    timer = setTimeout(() => {
      timer = undefined;
      run().catch((err: unknown) => log.error({ err: errorSummary(err) }, `restarting the ${options.what} watch failed`));
    }, delay);
    timer.unref?.();
  };
  run().catch((err: unknown) => {
    log.error({ err: errorSummary(err) }, `starting the ${options.what} watch failed`);
    schedule();
  });

  return {
    get: (name, namespace) => informer.get(name, namespace),
    list: (namespace) => [...informer.list(namespace)],
    get synced() {
      return synced;
    },
    whenSynced: () => syncedPromise,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      resolveSynced();
      await informer.stop();
    },
  };
}
