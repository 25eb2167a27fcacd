import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_POD_SNAPSHOT_PATH, type PodSpec } from './enrollment-contract.js';
import { describePod, validatePodSpec } from './pod-spec.js';

/** One pod the agent has seen through CNI ADD (or start-up re-enrollment), with what it decided. */
export interface PodRecord {
  pod: PodSpec;
  outcome: 'captured' | 'declined';
  reason?: string;
  enrolledAt: string;
  /**
   * `dev:ino` of the netns when enrolled. A /proc/<pid>/ns/net path outlives its process and may name another
   * namespace after a pid is reused; comparing the inode at re-enrollment tells the two apart.
   */
  netnsId?: string;
}

/**
 * The enrolled pods, mirrored to a JSON snapshot so that a restarted or upgraded agent re-enrolls running pods.
 * Declined pods are kept too: their netns path lets the agent capture them later (namespace labelled ambient
 * after the pod started) without scanning /proc, and lets CNI CHECK tell "declined" from "forgotten".
 */
export interface PodRegistry {
  readonly path: string;
  get(uid: string): PodRecord | undefined;
  list(): PodRecord[];
  /** Records the pod and resolves once the snapshot holding it is on disk. */
  set(record: PodRecord): Promise<void>;
  /** Forgets the pod; resolves once persisted. Returns whether it was known. */
  delete(uid: string): Promise<boolean>;
  /**
   * Reads the snapshot, drops pods whose netns is gone (one log line each), makes the rest the in-memory set and
   * returns them. Call once at start-up, before serving, then re-enroll what it returns.
   */
  loadSnapshot(): Promise<PodRecord[]>;
  /** Resolves when every change so far is on disk. */
  flush(): Promise<void>;
}

export interface PodRegistryOptions {
  /** Snapshot file; default /var/run/ambit/pods.json. */
  path?: string;
  logger: Logger;
}

interface SnapshotFile {
  version: 1;
  pods: PodRecord[];
}

/** `dev:ino` of the namespace a path names (stat follows /proc/<pid>/ns/net to the nsfs inode); undefined if gone. */
export async function netnsIdentity(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ESRCH';
}

export function createPodRegistry(options: PodRegistryOptions): PodRegistry {
  const path = options.path ?? DEFAULT_POD_SNAPSHOT_PATH;
  const log = options.logger.child({ component: 'pod-registry' });
  const records = new Map<string, PodRecord>();
  let tmpCounter = 0;
  let inFlight: Promise<void> | undefined;
  let queued: Promise<void> | undefined;

  async function writeSnapshot(): Promise<void> {
    const body: SnapshotFile = { version: 1, pods: [...records.values()] };
    const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      // tmp + rename: a crash mid-write leaves the previous snapshot, never a torn one. No fsync: the file lives
      // on tmpfs (/var/run), which a power loss empties anyway, along with the pods it describes.
      await writeFile(tmp, JSON.stringify(body, null, 1) + '\n', { mode: 0o600 });
      await rename(tmp, path);
    } catch (err) {
      // Not fatal for the pod being enrolled: it is captured now, it would only be forgotten by a restart.
      log.error({ err, path }, 'could not write the pod snapshot; pods enrolled since the last write will not be re-enrolled after an agent restart');
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  // Coalesces writes: at most one write runs and at most one waits; a waiting write serializes the set as it is
  // when it starts, so it covers every change made before it began.
  function persist(): Promise<void> {
    if (queued) return queued;
    if (!inFlight) {
      inFlight = writeSnapshot().finally(() => { inFlight = undefined; });
      return inFlight;
    }
    queued = inFlight.then(() => {
      queued = undefined;
      inFlight = writeSnapshot().finally(() => { inFlight = undefined; });
      return inFlight;
    });
    return queued;
  }

  async function readSnapshot(): Promise<unknown[]> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isMissing(err)) {
        log.info({ path }, 'no pod snapshot; starting with no enrolled pods');
        return [];
      }
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as Partial<SnapshotFile>;
      if (parsed.version !== 1 || !Array.isArray(parsed.pods)) throw new Error(`unknown snapshot format (version ${String(parsed.version)})`);
      return parsed.pods;
    } catch (err) {
      log.error({ err, path }, 'pod snapshot is unreadable; starting with no enrolled pods (running pods are captured again on their next CNI ADD only)');
      return [];
    }
  }

  return {
    path,
    get: (uid) => records.get(uid),
    list: () => [...records.values()],
    async set(record) {
      records.set(record.pod.uid, record);
      await persist();
    },
    async delete(uid) {
      const known = records.delete(uid);
      if (known) await persist();
      return known;
    },
    async loadSnapshot() {
      const entries = await readSnapshot();
      const live: PodRecord[] = [];
      let dropped = 0;
      for (const [i, entry] of entries.entries()) {
        const e = (entry ?? {}) as Partial<PodRecord>;
        let pod: PodSpec;
        try {
          pod = validatePodSpec(e.pod);
        } catch (err) {
          log.warn({ err, index: i }, 'dropping an invalid entry of the pod snapshot');
          dropped++;
          continue;
        }
        const id = await netnsIdentity(pod.netns);
        if (id === undefined) {
          log.info({ uid: pod.uid, netns: pod.netns }, `dropping pod ${describePod(pod)} from the snapshot: its netns ${pod.netns} is gone`);
          dropped++;
          continue;
        }
        if (typeof e.netnsId === 'string' && e.netnsId !== id) {
          log.info({ uid: pod.uid, netns: pod.netns }, `dropping pod ${describePod(pod)} from the snapshot: ${pod.netns} now names another network namespace`);
          dropped++;
          continue;
        }
        const record: PodRecord = {
          pod,
          outcome: e.outcome === 'declined' ? 'declined' : 'captured',
          enrolledAt: typeof e.enrolledAt === 'string' ? e.enrolledAt : new Date().toISOString(),
          netnsId: id,
        };
        if (typeof e.reason === 'string') record.reason = e.reason;
        live.push(record);
      }
      records.clear();
      for (const r of live) records.set(r.pod.uid, r);
      if (dropped > 0) await persist();
      log.info({ path, pods: live.length, dropped }, 'loaded the pod snapshot');
      return live;
    },
    async flush() {
      await (queued ?? inFlight);
    },
  };
}
