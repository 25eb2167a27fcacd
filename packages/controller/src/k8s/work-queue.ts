// The de-duplicating work queue between event sources (informers, the embedded directory) and the reconcilers:
// sources only add keys; one worker takes everything queued so far as one batch, so a burst of events for the
// same object becomes one call and a burst over many objects becomes one batch (one xDS push after debounce).
import type { Logger } from 'pino';

export interface WorkQueueOptions<K> {
  /** Handles one batch of distinct keys. A key added while its batch runs is handled again in the next batch. */
  process(keys: K[]): Promise<void> | void;
  logger: Logger;
  /** Largest batch; the rest waits for the next turn. Default 1000. */
  maxBatch?: number;
  /** A failed batch's keys are retried after this delay, doubling per consecutive failure up to 30 s. Default 1 s. */
  retryDelayMs?: number;
  /** Attempts per key before it is dropped (and logged). Default 5. */
  maxAttempts?: number;
}

export interface WorkQueueStats {
  queued: number;
  processing: boolean;
  batches: number;
  processed: number;
  failures: number;
}

export interface WorkQueue<K> {
  add(key: K): void;
  /** Resolves once nothing is queued, retrying or being processed. */
  drained(): Promise<void>;
  stats(): WorkQueueStats;
  /** Stops taking work; resolves after the running batch. */
  stop(): Promise<void>;
}

export function createWorkQueue<K>(options: WorkQueueOptions<K>): WorkQueue<K> {
  const logger = options.logger.child({ component: 'work-queue' });
  const maxBatch = options.maxBatch ?? 1000;
  const retryDelay = options.retryDelayMs ?? 1000;
  const maxAttempts = options.maxAttempts ?? 5;
  let queue = new Set<K>();
  const attempts = new Map<K, number>();
  let running: Promise<void> | undefined;
  let scheduled = false;
  const retryTimers = new Set<NodeJS.Timeout>();
  let stopped = false;
  const idleWaiters: (() => void)[] = [];
  const stats = { batches: 0, processed: 0, failures: 0 };

  const idle = (): boolean => queue.size === 0 && !running && !scheduled && retryTimers.size === 0;
  const notifyIdle = (): void => {
    if (!idle()) return;
    for (const w of idleWaiters.splice(0)) w();
  };

  function schedule(): void {
    if (scheduled || running || stopped) return;
    scheduled = true;
    // setImmediate: events arriving in the same tick (a list's items, a watch burst) join one batch.
    setImmediate(() => {
      scheduled = false;
      running = runBatch().finally(() => {
        running = undefined;
        if (queue.size > 0) schedule();
        else notifyIdle();
      });
    });
  }

  async function runBatch(): Promise<void> {
    if (stopped || queue.size === 0) return;
    const batch: K[] = [];
    for (const k of queue) {
      batch.push(k);
      if (batch.length >= maxBatch) break;
    }
    for (const k of batch) queue.delete(k);
    stats.batches++;
    try {
      await options.process(batch);
      stats.processed += batch.length;
      for (const k of batch) attempts.delete(k);
    } catch (err) {
      stats.failures++;
      const retry: K[] = [];
      for (const k of batch) {
        const n = (attempts.get(k) ?? 0) + 1;
        if (n >= maxAttempts) {
          attempts.delete(k);
          logger.error({ key: String(k), attempts: n, err: (err as Error).message }, 'giving up on key after repeated failures');
        } else {
          attempts.set(k, n);
          retry.push(k);
        }
      }
      if (retry.length > 0) {
        const n = Math.max(...retry.map((k) => attempts.get(k) ?? 1));
        const delay = Math.min(retryDelay * 2 ** (n - 1), 30_000);
        logger.warn({ keys: retry.length, retryMs: delay, err: (err as Error).message }, 'batch failed; retrying');
        const timer = setTimeout(() => {
          retryTimers.delete(timer);
          for (const k of retry) queue.add(k);
          if (queue.size > 0) schedule();
          else notifyIdle();
        }, delay);
        retryTimers.add(timer);
      }
    }
  }

  return {
    add(key) {
      if (stopped) return;
      queue.add(key);
      schedule();
    },
    drained() {
      if (idle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    stats: () => ({ queued: queue.size, processing: running !== undefined, ...stats }),
    async stop() {
      stopped = true;
      for (const t of retryTimers) clearTimeout(t);
      retryTimers.clear();
      queue = new Set();
      await running;
      for (const w of idleWaiters.splice(0)) w();
    },
  };
}
