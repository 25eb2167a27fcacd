// List + watch of one resource type, the way client-go's reflector does it: a (paged) list gives a
// resourceVersion, the watch continues from it with bookmarks, a 410 Gone (compacted history) relists and the
// difference becomes events, other failures back off and retry. A resource whose API is not served (a CRD that is
// not installed) is not an error: it is reported once and polled until it appears.
import type { Logger } from 'pino';
import type { KubeObject } from '@ambit/api';
import { KubeApiError, type KubeRest } from './kube-rest.js';
import { collectionPath, type ResourceType } from './resources.js';

export type ReflectorState = 'pending' | 'listing' | 'watching' | 'missing' | 'backoff' | 'stopped';

export interface ReflectorOptions {
  rest: KubeRest;
  resource: ResourceType;
  /** The kind, for logs and for objects whose list items lack `kind`. */
  kind: string;
  apiVersion: string;
  logger: Logger;
  /** Upsert (ADDED/MODIFIED) or delete. Objects come without managedFields. */
  onEvent(type: 'upsert' | 'delete', obj: KubeObject): void;
  /** Called after every complete list (the first one makes the reflector synced). */
  onSynced?(): void;
  /** Called when the API turns out not to be served (404 on list). */
  onMissing?(): void;
  fieldSelector?: string;
  labelSelector?: string;
  /** How often a missing API is polled. Default 10 s. */
  missingRetryMs?: number;
  /** Backoff after errors: doubling from initialMs up to maxMs. Default 500 ms .. 30 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  pageSize?: number;
  /** Server-side watch timeout; the watch is re-opened after it. Default 300 s (jittered). */
  watchTimeoutSeconds?: number;
}

export interface ReflectorStatus {
  state: ReflectorState;
  synced: boolean;
  objects: number;
  resourceVersion: string;
  lastError?: string;
  relists: number;
}

export interface Reflector {
  start(): void;
  stop(): Promise<void>;
  status(): ReflectorStatus;
}

class GoneError extends Error {}

export function createReflector(o: ReflectorOptions): Reflector {
  const logger = o.logger.child({ kind: o.kind });
  const path = collectionPath(o.resource);
  const initialBackoff = o.backoff?.initialMs ?? 500;
  const maxBackoff = o.backoff?.maxMs ?? 30_000;
  const missingRetry = o.missingRetryMs ?? 10_000;
  const selectors = { fieldSelector: o.fieldSelector, labelSelector: o.labelSelector };
  /** key (ns/name) -> resourceVersion of what consumers were told about. */
  const known = new Map<string, string>();
  let state: ReflectorState = 'pending';
  let synced = false;
  let rv = '';
  let lastError: string | undefined;
  let relists = 0;
  let missingLogged = false;
  let abort = new AbortController();
  let loop: Promise<void> | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;

  const keyOf = (obj: KubeObject): string => `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
  const normalize = (obj: KubeObject): KubeObject => {
    obj.kind ??= o.kind;
    obj.apiVersion ??= o.apiVersion;
    delete obj.metadata.managedFields;
    return obj;
  };
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      wake = undefined;
      resolve();
    }
    wake = done;
  });

  function upsert(obj: KubeObject): void {
    const key = keyOf(obj);
    const version = obj.metadata.resourceVersion ?? '';
    if (known.get(key) === version && version !== '') return;
    known.set(key, version);
    o.onEvent('upsert', obj);
  }
  function remove(obj: KubeObject): void {
    if (!known.delete(keyOf(obj))) return;
    o.onEvent('delete', obj);
  }

  async function list(): Promise<void> {
    state = 'listing';
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let listRv = '';
    do {
      const page = await o.rest.request<{ metadata?: { resourceVersion?: string; continue?: string }; items?: KubeObject[] }>(
        'GET', path, { query: { ...selectors, limit: o.pageSize ?? 500, continue: cont } },
      );
      for (const it of page.items ?? []) items.push(normalize(it));
      cont = page.metadata?.continue || undefined;
      listRv = page.metadata?.resourceVersion ?? listRv;
    } while (cont && !stopped);
    const seen = new Set<string>();
    for (const it of items) {
      seen.add(keyOf(it));
      upsert(it);
    }
    for (const key of [...known.keys()]) {
      if (seen.has(key)) continue;
      const [namespace, name] = splitKey(key);
      remove({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name, ...(namespace ? { namespace } : {}) } });
    }
    rv = listRv;
    const first = !synced;
    synced = true;
    lastError = undefined;
    if (first) logger.debug({ objects: known.size, resourceVersion: rv }, 'initial list done');
    o.onSynced?.();
  }

  async function watch(): Promise<void> {
    state = 'watching';
    const timeoutSeconds = Math.round((o.watchTimeoutSeconds ?? 300) * (1 + Math.random() * 0.2));
    let gone = false;
    await o.rest.watch(path, { ...selectors, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds }, (ev) => {
      if (gone) return;
      if (ev.type === 'ERROR') {
        const status = ev.object as unknown as { code?: number; reason?: string; message?: string };
        if (status.code === 410) {
          gone = true;
          return;
        }
        throw new KubeApiError('WATCH', path, status.code ?? 500, status.reason, status.message ?? 'watch error event');
      }
      const obj = normalize(ev.object);
      if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
      if (ev.type === 'BOOKMARK') return;
      if (ev.type === 'DELETED') remove(obj);
      else upsert(obj);
    }, abort.signal);
    if (gone) throw new GoneError('resourceVersion too old (410 Gone)');
  }

  async function run(): Promise<void> {
    let backoff = initialBackoff;
    let needList = true;
    while (!stopped) {
      try {
        if (needList) {
          await list();
          needList = false;
          missingLogged = false;
        }
        await watch();
        backoff = initialBackoff; // a watch that ended normally (server timeout) is healthy
      } catch (err) {
        if (stopped) break;
        if (err instanceof GoneError || (err instanceof KubeApiError && err.status === 410)) {
          relists++;
          logger.info({ resourceVersion: rv }, 'watch history expired (410 Gone); relisting');
          needList = true;
          continue;
        }
        if (err instanceof KubeApiError && err.status === 404) {
          // The API is not served: the CRD is not installed (or was removed). Objects of a removed CRD are gone.
          state = 'missing';
          lastError = `${o.resource.group ? `${o.resource.plural}.${o.resource.group}` : o.resource.plural}/${o.resource.version} is not served by the API server (CRD not installed?)`;
          for (const key of [...known.keys()]) {
            const [namespace, name] = splitKey(key);
            remove({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name, ...(namespace ? { namespace } : {}) } });
          }
          if (!missingLogged) {
            logger.info({ retryMs: missingRetry }, `${lastError}; watching for it to appear`);
            missingLogged = true;
          }
          o.onMissing?.();
          needList = true;
          await sleep(missingRetry);
          continue;
        }
        state = 'backoff';
        lastError = (err as Error).message;
        logger.warn({ err: lastError, retryMs: backoff }, 'list/watch failed; retrying');
        // A failed watch may have missed events: relist if the watch could not even be opened again after backoff.
        if (err instanceof KubeApiError && (err.status === 403 || err.status === 401)) needList = true;
        await sleep(backoff * (0.8 + Math.random() * 0.4));
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
    state = 'stopped';
  }

  return {
    start() {
      if (loop || stopped) return;
      loop = run();
    },
    async stop() {
      stopped = true;
      abort.abort();
      abort = new AbortController();
      wake?.();
      await loop;
      state = 'stopped';
    },
    status: () => ({ state, synced, objects: known.size, resourceVersion: rv, relists, ...(lastError ? { lastError } : {}) }),
  };
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
