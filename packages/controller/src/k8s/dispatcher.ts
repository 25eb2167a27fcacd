// The work queue's worker: for each changed object key, tell the translator (workload API), the forwarder
// (L7 config for waypoints) and any other listener (root ConfigMap publisher, ...). Objects are read from the
// index at processing time, so a burst of updates to one object is handled once with its latest state.
import type { Logger } from 'pino';
import { WAYPOINT_CONFIG_KINDS, parseConfigObjectName, type KubeObject } from '@ambit/api';
import type { ConfigForwarderLike, ObjectChangeListener, ObjectIndexLike, TranslatorLike } from './contracts.js';

/** Kinds the forwarder hears of: the L7 kinds, and Services (for the ports they declare opaque). */
const FORWARDED = new Set<string>(WAYPOINT_CONFIG_KINDS);

/** Queue key of an object: `<Kind>/<namespace>/<name>` (configObjectName). */
export function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

export interface DispatcherOptions {
  index: ObjectIndexLike;
  translator?: TranslatorLike;
  forwarder?: ConfigForwarderLike;
  logger: Logger;
}

export interface Dispatcher {
  /** The work queue's `process`. */
  process(keys: string[]): Promise<void>;
  /** Adds a listener; returns a function that removes it. */
  onChange(listener: ObjectChangeListener): () => void;
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const logger = options.logger.child({ component: 'dispatch' });
  const listeners = new Set<ObjectChangeListener>();
  return {
    async process(keys) {
      let failed: unknown;
      for (const key of keys) {
        const ref = parseConfigObjectName(key);
        if (!ref) {
          logger.error({ key }, 'malformed work-queue key');
          continue;
        }
        const obj: KubeObject | undefined = options.index.get(ref.kind, ref.namespace, ref.name);
        // One failing consumer must not keep the others from seeing the change; the batch is retried after.
        try {
          await options.translator?.changed(ref.kind, ref.namespace, ref.name);
          if (options.forwarder && FORWARDED.has(ref.kind)) {
            if (obj) await options.forwarder.update(obj);
            else await options.forwarder.remove(ref.kind, ref.namespace, ref.name);
          }
          for (const l of listeners) await l(ref.kind, ref.namespace, ref.name, obj);
        } catch (err) {
          logger.error({ key, err: (err as Error).message }, 'handling a change failed');
          failed = err;
        }
      }
      if (failed) throw failed;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
