// Writes what the translator and the forwarder conclude about objects (conditions, validationMessages) into
// their status subresource: leader only, merge patch, only when the object's status differs, rate-limited.
// Reports are kept by object, so a replica that becomes leader writes what it has concluded so far.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { WATCHED_KINDS, isWatchedKind, type KubeObject } from '@ambit/api';
import type { ObjectIndexLike } from '../k8s/contracts.js';
import { objectKey } from '../k8s/dispatcher.js';
import { KubeApiError, type KubeRest } from '../k8s/kube-rest.js';
import { objectPath } from '../k8s/resources.js';

/** What a component concludes about one object: the `status` fields it owns (undefined: it has nothing to say). */
export interface ObjectStatusReport {
  kind: string;
  namespace: string;
  name: string;
  status: Record<string, unknown> | undefined;
  /**
   * Who concludes it (e.g. 'translator', 'forwarder'); default 'default'. Reports of different sources about one
   * object are merged: their conditions are joined by type, other fields are set side by side.
   */
  source?: string;
}

export interface StatusWriterOptions {
  rest: KubeRest;
  index: ObjectIndexLike;
  logger: Logger;
  /** Patches per second, and the burst allowed. Default 10 / 20. */
  qps?: number;
  burst?: number;
}

export interface StatusWriter {
  /** Records a report; written when leading. */
  report(update: ObjectStatusReport): void;
  /** Leadership gained: write every recorded status that differs. */
  startLeading(): void;
  /** Leadership lost: stop writing at once. */
  stopLeading(): void;
  /** The object changed (its status may have been edited by someone else). */
  objectChanged(kind: string, namespace: string, name: string): void;
  stats(): { pending: number; written: number; failed: number; leading: boolean };
  close(): void;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/** Keeps lastTransitionTime of conditions whose status did not change, so re-reports are not changes. */
function carryTransitionTimes(desired: Record<string, unknown>, current: Record<string, unknown> | undefined): Record<string, unknown> {
  const want = desired.conditions;
  const have = current?.conditions;
  if (!Array.isArray(want)) return desired;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const conditions = (want as Condition[]).map((c) => {
    const prev = Array.isArray(have) ? (have as Condition[]).find((p) => p.type === c.type) : undefined;
    const lastTransitionTime = prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : c.lastTransitionTime ?? now;
    return { ...c, lastTransitionTime };
  });
  return { ...desired, conditions };
}

export function createStatusWriter(options: StatusWriterOptions): StatusWriter {
  const logger = options.logger.child({ component: 'status' });
  const qps = options.qps ?? 10;
  const burst = options.burst ?? 20;
  /** object key -> source -> report. */
  const desired = new Map<string, Map<string, ObjectStatusReport>>();

  function merged(key: string): ObjectStatusReport | undefined {
    const bySource = desired.get(key);
    if (!bySource || bySource.size === 0) return undefined;
    let base: ObjectStatusReport | undefined;
    const status: Record<string, unknown> = {};
    const conditions = new Map<string, unknown>();
    for (const r of bySource.values()) {
      base ??= r;
      for (const [k, v] of Object.entries(r.status ?? {})) {
        if (k === 'conditions' && Array.isArray(v)) for (const c of v as Condition[]) conditions.set(c.type ?? '', c);
        else status[k] = v;
      }
    }
    if ([...bySource.values()].some((r) => Array.isArray(r.status?.conditions))) status.conditions = [...conditions.values()];
    return { ...base!, status };
  }
  const pending = new Set<string>();
  let leading = false;
  let tokens = burst;
  let lastRefill = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let busy = false;
  let closed = false;
  let written = 0;
  let failed = 0;

  function enqueue(key: string): void {
    if (!leading || closed) return;
    pending.add(key);
    kick(0);
  }
  function kick(delay: number): void {
    if (timer || busy || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void drain();
    }, delay);
  }

  /** Whether the object's status already has the desired fields; returns the patch body otherwise. */
  function patchFor(report: ObjectStatusReport, obj: KubeObject): Record<string, unknown> | undefined {
    if (!report.status) return undefined;
    const current = (obj.status ?? {}) as Record<string, unknown>;
    const want = carryTransitionTimes(report.status, current);
    // An empty list we own equals an absent field: objects nobody has concluded anything about are not patched.
    const same = (have: unknown, v: unknown): boolean => isDeepStrictEqual(have, v) || (Array.isArray(v) && v.length === 0 && have === undefined);
    const differs = Object.entries(want).some(([k, v]) => !same(current[k], v));
    return differs ? want : undefined;
  }

  async function drain(): Promise<void> {
    busy = true;
    try {
      while (leading && !closed && pending.size > 0) {
        const t = Date.now();
        tokens = Math.min(burst, tokens + ((t - lastRefill) / 1000) * qps);
        lastRefill = t;
        if (tokens < 1) {
          busy = false;
          kick(Math.ceil(((1 - tokens) / qps) * 1000));
          return;
        }
        const key = pending.values().next().value as string;
        pending.delete(key);
        const report = merged(key);
        if (!report || !isWatchedKind(report.kind)) continue;
        const obj = options.index.get(report.kind, report.namespace, report.name);
        if (!obj) continue;
        const patch = patchFor(report, obj);
        if (!patch) continue;
        tokens -= 1;
        const path = `${objectPath(WATCHED_KINDS[report.kind], report.namespace || undefined, report.name)}/status`;
        try {
          await options.rest.request('PATCH', path, { body: { status: patch }, contentType: 'application/merge-patch+json' });
          written++;
          logger.debug({ object: key }, 'status written');
        } catch (err) {
          if (err instanceof KubeApiError && err.status === 404) continue; // deleted meanwhile
          failed++;
          logger.warn({ object: key, err: (err as Error).message }, 'status write failed; retrying');
          // Retried with the next change or after a pause; a broken object must not block the others.
          setTimeout(() => enqueue(key), 5_000).unref();
        }
      }
    } finally {
      busy = false;
    }
  }

  return {
    report(update) {
      const key = objectKey(update.kind, update.namespace, update.name);
      const source = update.source ?? 'default';
      let bySource = desired.get(key);
      if (update.status === undefined) {
        bySource?.delete(source);
        if (bySource?.size === 0) desired.delete(key);
      } else {
        if (!bySource) desired.set(key, (bySource = new Map()));
        bySource.set(source, update);
      }
      enqueue(key);
    },
    startLeading() {
      leading = true;
      for (const key of desired.keys()) pending.add(key);
      kick(0);
    },
    stopLeading() {
      leading = false;
      pending.clear();
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    objectChanged(kind, namespace, name) {
      const key = objectKey(kind, namespace, name);
      if (desired.has(key)) enqueue(key);
    },
    stats: () => ({ pending: pending.size, written, failed, leading }),
    close() {
      closed = true;
      leading = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
