// Lease-based leader election (coordination.k8s.io/v1), client-go's algorithm: every retry period the candidate
// reads the Lease; it takes it when it is free or its holder has not renewed within leaseDuration (measured on
// our own clock from when we last saw the record change, so clock skew between replicas does not matter); the
// leader renews every retry period and gives up the moment a renewal shows someone else holds it, or when it
// has failed to renew for renewDeadline. Writes use the Lease's resourceVersion (optimistic concurrency), so of
// two candidates only one wins. On stop the leader releases the Lease so another replica takes over at once.
import type { Logger } from 'pino';
import { KubeApiError, type KubeRest } from '../k8s/kube-rest.js';
import { collectionPath, objectPath, RESOURCES } from '../k8s/resources.js';

export interface LeaderElectorOptions {
  rest: KubeRest;
  namespace: string;
  name: string;
  /** This replica's identity (POD_NAME). */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  /** Called when this replica becomes leader. */
  onStartedLeading(): void;
  /** Called synchronously the moment leadership is lost or given up. */
  onStoppedLeading(): void;
  now?: () => number;
}

export interface LeaderStatus {
  leader: boolean;
  identity: string;
  holder: string | undefined;
  lease: string;
  transitions: number;
  lastError?: string;
}

export interface LeaderElector {
  start(): void;
  /** Stops campaigning; a leader stops leading and releases the Lease. */
  stop(): Promise<void>;
  isLeader(): boolean;
  status(): LeaderStatus;
}

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

/** Lease times are MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function createLeaderElector(options: LeaderElectorOptions): LeaderElector {
  const logger = options.logger.child({ component: 'leader', lease: `${options.namespace}/${options.name}`, identity: options.identity });
  const now = options.now ?? Date.now;
  const path = objectPath(RESOURCES.Lease, options.namespace, options.name);
  const durationSeconds = Math.max(1, Math.round(options.leaseDurationMs / 1000));
  let leader = false;
  let observed: { record: string; at: number; lease: LeaseObject } | undefined;
  let lastRenew = 0;
  let lastError: string | undefined;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;
  let loop: Promise<void> = Promise.resolve();

  function setLeader(value: boolean, why: string): void {
    if (leader === value) return;
    leader = value;
    if (value) {
      logger.info({ why }, 'became leader');
      try {
        options.onStartedLeading();
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'starting leader work failed');
      }
    } else {
      logger.warn({ why }, 'stopped leading');
      try {
        options.onStoppedLeading();
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'stopping leader work failed');
      }
    }
  }

  function observe(lease: LeaseObject): void {
    const record = JSON.stringify([lease.spec?.holderIdentity ?? '', lease.spec?.renewTime ?? '', lease.spec?.leaseDurationSeconds ?? 0]);
    if (!observed || observed.record !== record) observed = { record, at: now(), lease };
    else observed.lease = lease;
  }

  async function tryAcquireOrRenew(): Promise<boolean> {
    const t = now();
    const existing = await options.rest.find<LeaseObject>(path);
    if (!existing) {
      const created = await options.rest.request<LeaseObject>('POST', collectionPath(RESOURCES.Lease, options.namespace), {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: options.name, namespace: options.namespace },
          spec: { holderIdentity: options.identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(t), renewTime: microTime(t), leaseTransitions: 0 },
        },
      });
      observe(created);
      return true;
    }
    observe(existing);
    const spec = existing.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const validFor = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder && holder !== options.identity && observed!.at + validFor > t) return false;
    const takingOver = holder !== options.identity;
    const updated = await options.rest.request<LeaseObject>('PUT', path, {
      body: {
        ...existing,
        spec: {
          ...spec,
          holderIdentity: options.identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: microTime(t),
          acquireTime: takingOver ? microTime(t) : spec.acquireTime ?? microTime(t),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && holder ? 1 : 0),
        },
      },
    });
    observe(updated);
    if (takingOver) logger.info({ previous: holder || '(none)' }, 'took the Lease');
    return true;
  }

  async function round(): Promise<void> {
    let ok = false;
    try {
      ok = await tryAcquireOrRenew();
      lastError = undefined;
    } catch (err) {
      lastError = err instanceof KubeApiError && err.status === 409
        ? 'the Lease changed while we wrote it (another candidate won this round)'
        : (err as Error).message;
      if (!(err instanceof KubeApiError && err.status === 409)) logger.warn({ err: lastError }, 'Lease update failed');
    }
    if (stopped) return;
    if (ok) {
      lastRenew = now();
      setLeader(true, 'holds the Lease');
    } else if (leader) {
      const holder = observed?.lease.spec?.holderIdentity ?? '';
      if (holder && holder !== options.identity) setLeader(false, `the Lease is now held by ${holder}`);
      else if (now() - lastRenew > options.renewDeadlineMs) setLeader(false, `could not renew the Lease for ${options.renewDeadlineMs} ms`);
    }
  }

  function schedule(): void {
    if (stopped) return;
    // Jitter only while campaigning, so candidates do not collide in lockstep; the leader renews on the period.
    const delay = leader ? options.retryPeriodMs : options.retryPeriodMs * (1 + Math.random() * 0.2);
    timer = setTimeout(() => {
      loop = round().finally(schedule);
    }, delay);
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      loop = round().finally(schedule);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      await loop.catch(() => undefined);
      const wasLeader = leader;
      setLeader(false, 'shutting down');
      if (!wasLeader) return;
      // Release: an empty holder lets the next candidate take the Lease on its next round instead of waiting
      // for it to expire.
      try {
        const lease = await options.rest.request<LeaseObject>('GET', path);
        if (lease.spec?.holderIdentity !== options.identity) return;
        await options.rest.request('PUT', path, {
          body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(now()) } },
        });
        logger.info('released the Lease');
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'could not release the Lease; it expires on its own');
      }
    },
    isLeader: () => leader,
    status: () => ({
      leader,
      identity: options.identity,
      holder: observed?.lease.spec?.holderIdentity ?? undefined,
      lease: `${options.namespace}/${options.name}`,
      transitions: observed?.lease.spec?.leaseTransitions ?? 0,
      ...(lastError ? { lastError } : {}),
    }),
  };
}
