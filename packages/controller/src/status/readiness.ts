// Named readiness tasks: the controller is ready when every registered task has completed.
export interface Readiness {
  /** Registers a task; call the returned function when it is done. */
  register(name: string): () => void;
  ready(): boolean;
  pending(): string[];
}

export function createReadiness(): Readiness {
  const tasks = new Map<string, boolean>();
  return {
    register(name) {
      tasks.set(name, false);
      return () => void tasks.set(name, true);
    },
    ready: () => [...tasks.values()].every(Boolean),
    pending: () => [...tasks].filter(([, done]) => !done).map(([n]) => n),
  };
}
