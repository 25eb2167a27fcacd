// Fixtures shared by the telemetry and admin tests (not exported from the package).
import { pino, type Logger } from 'pino';
import { createStateStore, type StateStore } from '../state/store.js';
import { createStateUpdater } from '../state/updater.js';
import type { Service, Workload, WorkloadInput } from '../state/types.js';

export const ECHO_HOST = 'echo.echo.svc.cluster.local';

export interface Mesh {
  readonly store: StateStore;
  readonly sleep: Workload;
  readonly echo: Workload;
  readonly echoService: Service;
}

/** sleep (default/sleep, v1) calling echo (echo/echo, v2) through the service echo.echo.svc.cluster.local. */
export function createMesh(extra: { sleep?: Partial<WorkloadInput>; echo?: Partial<WorkloadInput> } = {}): Mesh {
  const store = createStateStore();
  const updater = createStateUpdater({ store });
  const result = updater.applyDelta({
    workloads: [
      {
        uid: 'Kubernetes//Pod/default/sleep-7d9c4b5f6-abcde', name: 'sleep-7d9c4b5f6-abcde', namespace: 'default',
        workloadIps: ['10.0.1.5'], protocol: 'HBONE', serviceAccount: 'sleep', workloadName: 'sleep',
        canonicalName: 'sleep', canonicalRevision: 'v1', workloadType: 'deployment', node: 'node-1', ...extra.sleep,
      },
      {
        uid: 'Kubernetes//Pod/echo/echo-5b4f8d7c9-xyz12', name: 'echo-5b4f8d7c9-xyz12', namespace: 'echo',
        workloadIps: ['10.0.2.7'], protocol: 'HBONE', serviceAccount: 'echo', workloadName: 'echo',
        canonicalName: 'echo', canonicalRevision: 'v2', workloadType: 'deployment', node: 'node-2',
        services: { [`echo/${ECHO_HOST}`]: { '80': 8080 } }, ...extra.echo,
      },
    ],
    services: [
      { name: 'echo', namespace: 'echo', hostname: ECHO_HOST, vips: [{ network: '', address: '10.96.0.20' }], ports: [{ servicePort: 80, targetPort: 8080 }] },
    ],
  });
  if (result.rejected.length) throw new Error(`fixture rejected: ${JSON.stringify(result.rejected)}`);
  return {
    store,
    sleep: store.workloadByUid('Kubernetes//Pod/default/sleep-7d9c4b5f6-abcde')!,
    echo: store.workloadByUid('Kubernetes//Pod/echo/echo-5b4f8d7c9-xyz12')!,
    echoService: store.serviceByKey(`echo/${ECHO_HOST}`)!,
  };
}

/** A pino logger whose lines are parsed into `lines`; no time, pid or hostname so lines compare whole. */
export function captureLogger(level = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  // pino calls write() synchronously, so a line is there when the logging call returns.
  const stream = {
    write(text: string): void {
      for (const l of text.split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  };
  const logger = pino({ level, base: null, timestamp: false }, stream);
  return { logger, lines };
}

/** Exposition lines of one metric family (no HELP/TYPE). */
export async function seriesOf(registry: { metrics(): Promise<string> }, name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}
