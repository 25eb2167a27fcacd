import type { Logger } from 'pino';
import type { CaptureOutcome, PodSpec, PodStatus } from './enrollment-contract.js';
import { createKeyedQueue } from './keyed-queue.js';
import { netnsIdentity, type PodRecord, type PodRegistry } from './pod-registry.js';
import { describePod, EnrollmentError, validatePodSpec, type PodCapturer } from './pod-spec.js';

/**
 * The enrollment logic behind the HTTP API: one add path for CNI ADD, start-up re-enrollment and pods that were
 * running before they became ambient. Calls for one uid run in order; different pods run in parallel.
 */
export interface PodEnrollment {
  /**
   * Captures (or declines) a pod by its netns path and records it. Throws EnrollmentError: status 400 when the
   * request is wrong (invalid field, netns missing), 5xx when capture failed (the CNI ADD must then fail).
   */
  enroll(pod: PodSpec): Promise<CaptureOutcome>;
  /** Releases and forgets a pod; idempotent. `known` says whether the agent had a record of it. */
  release(uid: string): Promise<{ known: boolean }>;
  status(uid: string): PodStatus | undefined;
  list(): PodStatus[];
  /** Start-up: loads the snapshot and re-enrolls every pod whose netns still exists. */
  restore(): Promise<RestoreReport>;
}

export interface RestoreReport {
  captured: string[];
  declined: string[];
  /** Kept in the registry (the pod still runs) so CHECK reports it and the next restart retries. */
  failed: { uid: string; error: string }[];
}

export interface PodEnrollmentOptions {
  capturer: PodCapturer;
  registry: PodRegistry;
  logger: Logger;
}

function toEnrollmentError(err: unknown, pod: PodSpec): EnrollmentError {
  if (err instanceof EnrollmentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // A capturer may say "not now" (e.g. 503 before its first xDS snapshot) through a numeric status.
  const s = (err as { status?: unknown } | undefined)?.status;
  const status = typeof s === 'number' && s >= 400 && s <= 599 ? s : 500;
  return new EnrollmentError(`capture of pod ${describePod(pod)} failed: ${message}`, { status, cause: err });
}

function checkOutcome(outcome: unknown): CaptureOutcome {
  const o = outcome as Partial<{ captured: unknown; reason: unknown }> | undefined;
  if (o?.captured === true) return { captured: true };
  if (o?.captured === false) return { captured: false, reason: typeof o.reason === 'string' && o.reason ? o.reason : 'declined by agent policy' };
  throw new Error(`capturer returned ${JSON.stringify(outcome)}, not a CaptureOutcome`);
}

export function createPodEnrollment(options: PodEnrollmentOptions): PodEnrollment {
  const { capturer, registry } = options;
  const log = options.logger.child({ component: 'pod-enrollment' });
  const queue = createKeyedQueue();

  function toStatus(r: PodRecord): PodStatus {
    const s: PodStatus = { pod: r.pod, outcome: r.outcome, captured: capturer.isCaptured(r.pod.uid), enrolledAt: r.enrolledAt };
    if (r.reason !== undefined) s.reason = r.reason;
    return s;
  }

  async function enrollNow(pod: PodSpec): Promise<CaptureOutcome> {
    let netnsId: string | undefined;
    try {
      netnsId = await netnsIdentity(pod.netns);
    } catch (err) {
      throw new EnrollmentError(`cannot stat netns ${pod.netns} of pod ${describePod(pod)}: ${(err as Error).message}`, { status: 500, cause: err });
    }
    if (netnsId === undefined) {
      throw new EnrollmentError(`invalid pod: netns ${pod.netns} does not exist`, { status: 400, field: 'netns' });
    }
    const previous = registry.get(pod.uid);
    if (previous?.netnsId !== undefined && previous.netnsId !== netnsId) {
      // Same pod, new sandbox (the runtime recreated it): drop the old capture before capturing the new netns.
      log.info({ uid: pod.uid, netns: pod.netns, previousNetns: previous.pod.netns }, `pod ${describePod(pod)} has a new network namespace; releasing the old capture`);
      await capturer.release(pod.uid).catch((err: unknown) => log.warn({ err, uid: pod.uid }, 'release of the old capture failed'));
    }
    let outcome: CaptureOutcome;
    try {
      outcome = checkOutcome(await capturer.capture(pod));
    } catch (err) {
      const e = toEnrollmentError(err, pod);
      log.error({ err, uid: pod.uid, status: e.status }, e.message);
      throw e;
    }
    const record: PodRecord = {
      pod,
      outcome: outcome.captured ? 'captured' : 'declined',
      enrolledAt: new Date().toISOString(),
      netnsId,
    };
    if (!outcome.captured) record.reason = outcome.reason;
    await registry.set(record);
    if (outcome.captured) log.info({ uid: pod.uid, netns: pod.netns, ips: pod.ips }, `captured pod ${describePod(pod)}`);
    else log.info({ uid: pod.uid, reason: outcome.reason }, `not capturing pod ${describePod(pod)}: ${outcome.reason}`);
    return outcome;
  }

  const enrollment: PodEnrollment = {
    async enroll(input) {
      // Direct callers (start-up, the informer enrolling running pods) get the same checks as HTTP requests.
      const pod = validatePodSpec(input);
      return queue.run(pod.uid, () => enrollNow(pod));
    },
    release: (uid) => queue.run(uid, async () => {
      const known = registry.get(uid) !== undefined;
      try {
        await capturer.release(uid);
      } catch (err) {
        // Forget the pod anyway: its netns is being torn down, and a record would make a restart retry a dead pod.
        await registry.delete(uid);
        const message = err instanceof Error ? err.message : String(err);
        log.error({ err, uid }, `release of pod ${uid} failed`);
        throw new EnrollmentError(`release of pod ${uid} failed: ${message}`, { status: 500, cause: err });
      }
      await registry.delete(uid);
      log.info({ uid, known }, known ? `released pod ${uid}` : `release of unknown pod ${uid}: nothing to do`);
      return { known };
    }),
    status: (uid) => {
      const r = registry.get(uid);
      return r ? toStatus(r) : undefined;
    },
    list: () => registry.list().map(toStatus),
    async restore() {
      const records = await registry.loadSnapshot();
      const report: RestoreReport = { captured: [], declined: [], failed: [] };
      await Promise.all(records.map(async (r) => {
        try {
          const outcome = await enrollment.enroll(r.pod);
          (outcome.captured ? report.captured : report.declined).push(r.pod.uid);
        } catch (err) {
          report.failed.push({ uid: r.pod.uid, error: err instanceof Error ? err.message : String(err) });
        }
      }));
      log.info({ captured: report.captured.length, declined: report.declined.length, failed: report.failed.length }, 're-enrolled pods from the snapshot');
      return report;
    },
  };
  return enrollment;
}
