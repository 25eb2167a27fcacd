/**
 * Named readiness tasks (ztunnel's `readiness.rs`): each thing the agent must have before it can serve (the
 * first xDS sync, the ZDS connection and its first snapshot, ...) registers a task and calls its `done` when
 * it is there. The agent is ready when no task is pending; `/healthz/ready` lists the pending ones by name, so
 * a stuck rollout says what it waits for.
 */

export interface Readiness {
  /** Adds a pending task. The returned function marks it done; calling it again does nothing. */
  register(name: string): () => void;
  /** Names of pending tasks, sorted (a name registered twice and done once is listed once). */
  pending(): string[];
  isReady(): boolean;
  /** Resolves as soon as no task is pending (at once if none is). */
  whenReady(): Promise<void>;
}

export function createReadiness(): Readiness {
  // One token per registration, so two tasks with the same name are tracked apart.
  const tasks = new Map<symbol, string>();
  let waiters: Array<() => void> = [];

  const settle = (): void => {
    if (tasks.size > 0) return;
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  };

  return {
    register(name) {
      const token = Symbol(name);
      tasks.set(token, name);
      return () => {
        if (tasks.delete(token)) settle();
      };
    },
    pending() {
      return [...new Set(tasks.values())].sort();
    },
    isReady() {
      return tasks.size === 0;
    },
    whenReady() {
      if (tasks.size === 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}
