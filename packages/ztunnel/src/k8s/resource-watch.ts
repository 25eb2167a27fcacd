// One list+watch of a resource, kept as a cache, on @kubernetes/client-node's ListWatch. ListWatch re-lists by
// itself when the server answers 410 Gone (the resourceVersion is too old) and reconnects after a watch times out,
// but after any other failure (API server down, 5xx, a cut connection) it stops and only reports the error: here
// it is started again with exponential backoff, from its last resourceVersion (which falls back to a re-list if
// that version has expired). A re-list reports objects that disappeared meanwhile as deletions.
import { ListWatch, type KubernetesListObject, type KubernetesObject, type Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError } from './kube-client.js';

export interface ResourceWatch<T extends KubernetesObject> {
  /** Resolves once the first list has been loaded and the watch is open (the agent's readiness waits on it). */
  readonly synced: Promise<void>;
  hasSynced(): boolean;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
  stop(): void;
}

export interface ResourceWatchOptions<T extends KubernetesObject> {
  /** For logs: `pods`, `namespaces`. */
  kind: string;
  /** The collection's path, e.g. /api/v1/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  watch: Watch;
  fieldSelector?: string;
  onUpsert(obj: T): void;
  onDelete(obj: T): void;
  logger: Logger;
  /** Delay before restarting after a failure: doubles from base up to max. Default 500 ms .. 30 s. */
  backoff?: { baseMs: number; maxMs: number };
}

export function startResourceWatch<T extends KubernetesObject>(options: ResourceWatchOptions<T>): ResourceWatch<T> {
  const log = options.logger.child({ component: 'k8s-watch', kind: options.kind });
  const { baseMs, maxMs } = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  const lw = new ListWatch<T>(options.path, options.watch, options.list, false, undefined, options.fieldSelector);
  let synced = false;
  let markSynced!: () => void;
  const syncedPromise = new Promise<void>((resolve) => { markSynced = resolve; });
  let stopped = false;
  let failures = 0;
  let errorsSeen = 0;
  let timer: NodeJS.Timeout | undefined;
  let starting = false;

  lw.on('add', (o) => options.onUpsert(o));
  lw.on('update', (o) => options.onUpsert(o));
  lw.on('delete', (o) => options.onDelete(o));
  const onFailure = (err: unknown): void => {
    errorsSeen++;
    if (stopped) return;
    failures++;
    const delay = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 20));
    const e = err as { statusCode?: number; code?: number } | undefined;
    log.warn({ err: describeApiError(err), status: e?.statusCode ?? e?.code, retryInMs: delay, failures }, `${options.kind} list/watch failed; retrying`);
    clearTimeout(timer);
    timer = setTimeout(() => { void attempt(); }, delay);
    timer.unref();
  };
  lw.on('error', onFailure);

  async function attempt(): Promise<void> {
    if (stopped || starting) return;
    starting = true;
    const before = errorsSeen;
    try {
      // Resolves once the list is loaded (if one was needed) and the watch request is answered, or after an error
      // was reported to onFailure through 'error'.
      await lw.start();
    } catch (err) {
      // ListWatch reports failures through 'error'; a throw is unexpected but is handled the same way.
      void lw.stop().catch(() => undefined);
      if (errorsSeen === before) onFailure(err);
    } finally {
      starting = false;
    }
    if (stopped || errorsSeen !== before) return;
    if (failures > 0) log.info({ failures }, `${options.kind} list/watch restored`);
    failures = 0;
    if (!synced) {
      synced = true;
      log.info({ objects: lw.list().length, fieldSelector: options.fieldSelector }, `${options.kind} synced`);
      markSynced();
    }
  }

  void attempt();
  return {
    synced: syncedPromise,
    hasSynced: () => synced,
    get: (name, namespace) => lw.get(name, namespace),
    list: (namespace) => lw.list(namespace),
    stop() {
      stopped = true;
      clearTimeout(timer);
      void lw.stop();
    },
  };
}
