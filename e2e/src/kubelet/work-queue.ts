// A de-duplicating work queue (client-go workqueue semantics, STYLE.md "Informer as cache, work in a queue"):
// informer callbacks and process-exit/probe events only add keys; a key is processed by one worker at a time; a
// key added while it is being processed runs once more afterwards; failures are retried with per-key exponential
// backoff; `addAfter` schedules a key (probe periods, restart backoff, grace periods).

export interface WorkQueueOptions<K> {
  /** Reconciles one key. Throwing retries it with backoff; returning `{ requeueAfterMs }` schedules it again. */
  process: (key: K) => Promise<{ requeueAfterMs?: number } | void>;
  /** Keys processed at once (different keys only). Default 4. */
  concurrency?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  onError?: (key: K, err: unknown, attempt: number) => void;
}

export interface WorkQueue<K> {
  add(key: K): void;
  addAfter(key: K, delayMs: number): void;
  /** Number of keys waiting (not counting those being processed or delayed). */
  readonly length: number;
  /** Resolves when nothing is queued or running (for tests and shutdown). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export function createWorkQueue<K>(options: WorkQueueOptions<K>): WorkQueue<K> {
  const concurrency = options.concurrency ?? 4;
  const base = options.baseBackoffMs ?? 200;
  const max = options.maxBackoffMs ?? 30_000;
  const queue: K[] = [];
  const queued = new Set<K>();
  const running = new Set<K>();
  const dirty = new Set<K>();
  const timers = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  const failures = new Map<K, number>();
  let stopped = false;
  let idleWaiters: Array<() => void> = [];

  const checkIdle = () => {
    if (queue.length === 0 && running.size === 0) {
      const w = idleWaiters;
      idleWaiters = [];
      for (const f of w) f();
    }
  };

  const pump = () => {
    while (!stopped && running.size < concurrency) {
      const i = queue.findIndex((k) => !running.has(k));
      if (i < 0) break;
      const [key] = queue.splice(i, 1) as [K];
      queued.delete(key);
      running.add(key);
      void runOne(key);
    }
    checkIdle();
  };

  const runOne = async (key: K) => {
    try {
      const r = await options.process(key);
      failures.delete(key);
      if (r?.requeueAfterMs !== undefined) addAfter(key, r.requeueAfterMs);
    } catch (err) {
      const attempt = (failures.get(key) ?? 0) + 1;
      failures.set(key, attempt);
      options.onError?.(key, err, attempt);
      addAfter(key, Math.min(max, base * 2 ** (attempt - 1)));
    } finally {
      running.delete(key);
      if (dirty.delete(key)) add(key);
      pump();
    }
  };

  function add(key: K): void {
    if (stopped) return;
    if (running.has(key)) {
      dirty.add(key);
      return;
    }
    if (queued.has(key)) return;
    queued.add(key);
    queue.push(key);
    pump();
  }

  function addAfter(key: K, delayMs: number): void {
    if (stopped) return;
    if (delayMs <= 0) return add(key);
    const at = Date.now() + delayMs;
    const existing = timers.get(key);
    // Keep the earliest: a later request is covered by the earlier run, which reschedules what it still needs.
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      timers.delete(key);
      add(key);
    }, delayMs);
    timer.unref();
    timers.set(key, { at, timer });
  }

  return {
    add,
    addAfter,
    get length() {
      return queue.length;
    },
    idle: () => (queue.length === 0 && running.size === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r))),
    async stop() {
      stopped = true;
      for (const t of timers.values()) clearTimeout(t.timer);
      timers.clear();
      queue.length = 0;
      queued.clear();
      if (running.size > 0) await new Promise<void>((r) => idleWaiters.push(r));
    },
  };
}
