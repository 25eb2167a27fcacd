// One reflector per watched kind feeding the object index and the work queue. Informer callbacks only update
// the cache and enqueue keys; reconcilers read whole objects from the index.
import type { Logger } from 'pino';
import { WATCHED_KINDS, apiVersionOf, type WatchedKind } from '@ambit/api';
import type { ObjectIndexLike } from './contracts.js';
import { objectKey } from './dispatcher.js';
import type { KubeRest } from './kube-rest.js';
import { createReflector, type Reflector, type ReflectorStatus } from './reflector.js';
import type { WorkQueue } from './work-queue.js';

export interface InformersOptions {
  rest: KubeRest;
  index: ObjectIndexLike;
  queue: WorkQueue<string>;
  logger: Logger;
  /** Default: every WATCHED_KINDS kind. */
  kinds?: readonly WatchedKind[];
  /** How often kinds whose CRD is missing are polled. Default 10 s. */
  missingRetryMs?: number;
}

export interface Informers {
  start(): void;
  stop(): Promise<void>;
  /** Every installed kind has delivered its initial list (kinds whose CRD is missing do not hold this back). */
  synced(): boolean;
  /** Resolves when synced() first becomes true. */
  whenSynced(): Promise<void>;
  status(): Record<string, ReflectorStatus>;
}

export function createInformers(options: InformersOptions): Informers {
  const logger = options.logger.child({ component: 'informers' });
  const kinds = options.kinds ?? (Object.keys(WATCHED_KINDS) as WatchedKind[]);
  /** Kinds that have settled: listed once, or found missing. */
  const settled = new Set<string>();
  let resolveSynced!: () => void;
  const syncedPromise = new Promise<void>((r) => (resolveSynced = r));
  let isSynced = false;
  const settle = (kind: string): void => {
    settled.add(kind);
    if (!isSynced && settled.size === kinds.length) {
      isSynced = true;
      logger.info({ kinds: kinds.length, missing: kinds.filter((k) => reflectors.get(k)?.status().state === 'missing') }, 'informers synced');
      resolveSynced();
    }
  };
  const reflectors = new Map<string, Reflector>();
  for (const kind of kinds) {
    reflectors.set(kind, createReflector({
      rest: options.rest,
      resource: WATCHED_KINDS[kind],
      kind,
      apiVersion: apiVersionOf(kind),
      logger: logger,
      ...(options.missingRetryMs !== undefined ? { missingRetryMs: options.missingRetryMs } : {}),
      onEvent(type, obj) {
        const ns = obj.metadata.namespace ?? '';
        if (type === 'upsert') options.index.set(obj);
        else options.index.delete(kind, ns, obj.metadata.name);
        options.queue.add(objectKey(kind, ns, obj.metadata.name));
      },
      onSynced: () => settle(kind),
      onMissing: () => settle(kind),
    }));
  }
  return {
    start() {
      for (const r of reflectors.values()) r.start();
    },
    async stop() {
      await Promise.all([...reflectors.values()].map((r) => r.stop()));
    },
    synced: () => isSynced,
    whenSynced: () => syncedPromise,
    status: () => Object.fromEntries([...reflectors].map(([k, r]) => [k, r.status()])),
  };
}
