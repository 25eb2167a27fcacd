// A de-duplicating, delaying work queue with one consumer (client-go's workqueue, reduced to what the deployer
// needs): a key added while queued keeps its earliest due time; a key added while being processed is run again
// after the current run ends, so no change is lost and no key runs twice at once.

export interface WorkQueue {
  add(key: string, delayMs?: number): void;
  /** The next due key; undefined once stopped. Call done(key) after processing it. */
  next(): Promise<string | undefined>;
  done(key: string): void;
  readonly size: number;
  stop(): void;
}

export function createWorkQueue(now: () => number = Date.now): WorkQueue {
  const due = new Map<string, number>();
  const processing = new Set<string>();
  const dirty = new Map<string, number>();
  let stopped = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;

  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  return {
    add(key, delayMs = 0) {
      if (stopped) return;
      const at = now() + Math.max(0, delayMs);
      if (processing.has(key)) {
        const prev = dirty.get(key);
        dirty.set(key, prev === undefined ? at : Math.min(prev, at));
        return;
      }
      const prev = due.get(key);
      due.set(key, prev === undefined ? at : Math.min(prev, at));
      notify();
    },
    async next() {
      for (;;) {
        if (stopped) return undefined;
        const t = now();
        let bestKey: string | undefined;
        let bestAt = Infinity;
        for (const [k, at] of due) {
          if (at < bestAt) {
            bestAt = at;
            bestKey = k;
          }
        }
        if (bestKey !== undefined && bestAt <= t) {
          due.delete(bestKey);
          processing.add(bestKey);
          return bestKey;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (bestKey !== undefined) {
            timer = setTimeout(() => {
              timer = undefined;
              notify();
            }, bestAt - t);
          }
        });
        if (timer) clearTimeout(timer);
        timer = undefined;
      }
    },
    done(key) {
      processing.delete(key);
      const again = dirty.get(key);
      if (again !== undefined) {
        dirty.delete(key);
        const prev = due.get(key);
        due.set(key, prev === undefined ? again : Math.min(prev, again));
        notify();
      }
    },
    get size() {
      return due.size + dirty.size;
    },
    stop() {
      stopped = true;
      due.clear();
      dirty.clear();
      notify();
    },
  };
}
