/**
 * Runs tasks one at a time per key, in arrival order, and tasks for different keys in parallel. The enrollment API
 * uses the pod uid as key so that a DEL arriving while its ADD is still capturing waits for the ADD to finish
 * (the runtime sends DEL after a timed-out ADD), and a re-ADD cannot overtake the DEL before it.
 */
export interface KeyedQueue {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Keys with a task running or waiting; for tests and the admin dump. */
  pendingKeys(): string[];
}

export function createKeyedQueue(): KeyedQueue {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run<T>(key: string, task: () => Promise<T>): Promise<T> {
      const previous = tails.get(key) ?? Promise.resolve();
      // A failed task must not block the ones after it, hence both handlers.
      const result = previous.then(task, task);
      const tail = result.then(() => undefined, () => undefined);
      tails.set(key, tail);
      void tail.then(() => {
        // Forget the key only if nothing queued behind us, so the map holds only busy pods.
        if (tails.get(key) === tail) tails.delete(key);
      });
      return result;
    },
    pendingKeys: () => [...tails.keys()],
  };
}
