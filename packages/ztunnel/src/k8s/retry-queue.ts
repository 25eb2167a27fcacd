/**
 * Keys to reconcile (pod uids), each processed by one worker at a time (STYLE.md: informer callbacks only add keys).
 * Adding a key that is waiting changes nothing; adding a key that is being processed runs it once more afterwards,
 * so the last event always wins. A failed key is retried after an exponential delay (base * 2^(failures-1), capped)
 * for as long as it keeps failing: a pod that cannot be captured now (its netns not up yet, the API server away)
 * must be captured as soon as it can be, as Istio's node agent retries without limit. A new event for the key
 * processes it at once; its failure count is kept, so a flapping key still backs off.
 */
export interface RetryQueue {
  add(key: string): void;
  /** Keys waiting, running or scheduled for a retry. */
  readonly size: number;
  /** Failures in a row of a key (0 once it succeeded). */
  failures(key: string): number;
  /** Resolves when nothing waits or runs (scheduled retries do not count). */
  idle(): Promise<void>;
  /** Drops pending work and timers; waits for running keys to finish. */
  stop(): Promise<void>;
}

export interface RetryQueueOptions {
  process(key: string): Promise<void>;
  /** Called for each failure, with the delay before the next attempt. */
  onError?(key: string, err: unknown, failures: number, retryInMs: number): void;
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export function createRetryQueue(options: RetryQueueOptions): RetryQueue {
  const concurrency = options.concurrency ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 200;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const waiting: string[] = [];
  const waitingSet = new Set<string>();
  const running = new Map<string, Promise<void>>();
  const again = new Set<string>();
  const retryTimers = new Map<string, NodeJS.Timeout>();
  const failureCounts = new Map<string, number>();
  let idleWaiters: Array<() => void> = [];
  let stopped = false;

  const notifyIdle = (): void => {
    if (waiting.length > 0 || running.size > 0) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const resolve of w) resolve();
  };

  const enqueue = (key: string): void => {
    if (stopped) return;
    const timer = retryTimers.get(key);
    if (timer) { clearTimeout(timer); retryTimers.delete(key); }
    if (running.has(key)) { again.add(key); return; }
    if (waitingSet.has(key)) return;
    waitingSet.add(key);
    waiting.push(key);
    drain();
  };

  const runKey = async (key: string): Promise<void> => {
    try {
      await options.process(key);
      failureCounts.delete(key);
    } catch (err) {
      const n = (failureCounts.get(key) ?? 0) + 1;
      failureCounts.set(key, n);
      const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(n - 1, 30));
      options.onError?.(key, err, n, delay);
      // A newer event (again) processes the key at once; otherwise it comes back after the delay.
      if (!stopped && !again.has(key)) {
        const t = setTimeout(() => { retryTimers.delete(key); enqueue(key); }, delay);
        t.unref();
        retryTimers.set(key, t);
      }
    }
  };

  function drain(): void {
    while (!stopped && running.size < concurrency && waiting.length > 0) {
      const key = waiting.shift()!;
      waitingSet.delete(key);
      const p = runKey(key).finally(() => {
        running.delete(key);
        if (again.delete(key)) enqueue(key);
        drain();
        notifyIdle();
      });
      running.set(key, p);
    }
    notifyIdle();
  }

  return {
    add: enqueue,
    get size() {
      return new Set([...waiting, ...running.keys(), ...retryTimers.keys()]).size;
    },
    failures: (key) => failureCounts.get(key) ?? 0,
    idle() {
      if (waiting.length === 0 && running.size === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      stopped = true;
      for (const t of retryTimers.values()) clearTimeout(t);
      retryTimers.clear();
      waiting.length = 0;
      waitingSet.clear();
      again.clear();
      await Promise.allSettled([...running.values()]);
      notifyIdle();
    },
  };
}
