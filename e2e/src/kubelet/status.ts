// Pod status as the kubelet reports it (pkg/kubelet/status, kubelet_pods.go getPhase/generateAPIPodStatus), built
// from a snapshot of what the kubelet runs. Pure, so phases and conditions are unit-tested. Condition transition
// times are carried over from the previous status while a condition keeps its value, so an unchanged pod produces
// an identical status and the kubelet writes nothing.
import type { V1ContainerState, V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';

export interface ContainerSnapshot {
  name: string;
  image: string;
  containerID?: string;
  restartCount: number;
  ready: boolean;
  started: boolean;
  state: V1ContainerState;
  lastState?: V1ContainerState;
}

export interface PodSnapshot {
  /** The sandbox (netns + CNI) is up. */
  sandboxReady: boolean;
  podIP?: string;
  podIPs: string[];
  hostIP: string;
  startTime: Date;
  containers: ContainerSnapshot[];
  /** Set when the pod cannot start at all (e.g. the CNI chain failed). */
  message?: string;
  reason?: string;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

/** The pod phase from its containers' states and restart policy (kubelet getPhase). */
export function computePhase(restartPolicy: string | undefined, containers: readonly ContainerSnapshot[]): PodPhase {
  let pending = 0;
  let running = 0;
  let succeeded = 0;
  let failed = 0;
  let restarting = 0;
  for (const c of containers) {
    if (c.state.running) running++;
    else if (c.state.terminated) {
      if (c.state.terminated.exitCode === 0) succeeded++;
      else failed++;
    } else if (c.state.waiting && c.lastState?.terminated) restarting++;
    else pending++;
  }
  if (containers.length === 0) return 'Pending';
  if (pending > 0) return 'Pending';
  if (running > 0 || restarting > 0) return 'Running';
  const policy = restartPolicy ?? 'Always';
  // All containers have terminated and will not run again, else they would be waiting.
  if (policy === 'Always') return 'Running';
  if (failed > 0) return policy === 'Never' ? 'Failed' : 'Running';
  return succeeded > 0 ? 'Succeeded' : 'Pending';
}

function condition(type: string, ok: boolean, previous: readonly V1PodCondition[], now: Date, reason?: string, message?: string): V1PodCondition {
  const status = ok ? 'True' : 'False';
  const old = previous.find((c) => c.type === type);
  const lastTransitionTime = old && old.status === status && old.lastTransitionTime ? new Date(old.lastTransitionTime) : now;
  const c: V1PodCondition = { type, status, lastTransitionTime };
  if (!ok && reason) c.reason = reason;
  if (!ok && message) c.message = message;
  return c;
}

/** The status to write for `pod` given what the kubelet runs now. */
export function buildPodStatus(pod: V1Pod, snap: PodSnapshot, now: Date): V1PodStatus {
  const previous = pod.status?.conditions ?? [];
  const specOrder = (pod.spec?.containers ?? []).map((c) => c.name);
  const containers = [...snap.containers].sort((a, b) => specOrder.indexOf(a.name) - specOrder.indexOf(b.name));
  const phase = computePhase(pod.spec?.restartPolicy, containers);
  const notReady = containers.filter((c) => !c.ready).map((c) => c.name);
  const allReady = containers.length > 0 && notReady.length === 0 && snap.sandboxReady;
  const unreadyMessage = notReady.length > 0 ? `containers with unready status: [${notReady.join(' ')}]` : undefined;
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const conditions: V1PodCondition[] = [
    condition('PodReadyToStartContainers', snap.sandboxReady, previous, now),
    condition('Initialized', true, previous, now),
    condition('Ready', allReady && !terminal, previous, now, terminal ? 'PodCompleted' : 'ContainersNotReady', unreadyMessage),
    condition('ContainersReady', allReady && !terminal, previous, now, terminal ? 'PodCompleted' : 'ContainersNotReady', unreadyMessage),
    condition('PodScheduled', true, previous, now),
  ];
  const containerStatuses: V1ContainerStatus[] = containers.map((c) => ({
    name: c.name,
    image: c.image,
    imageID: '',
    ...(c.containerID ? { containerID: c.containerID } : {}),
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
    state: c.state,
    lastState: c.lastState ?? {},
  }));
  const status: V1PodStatus = {
    phase,
    conditions,
    hostIP: snap.hostIP,
    hostIPs: [{ ip: snap.hostIP }],
    startTime: snap.startTime,
    containerStatuses,
    qosClass: pod.status?.qosClass ?? 'BestEffort',
  };
  if (snap.podIP) {
    status.podIP = snap.podIP;
    status.podIPs = snap.podIPs.map((ip) => ({ ip }));
  }
  if (snap.reason) status.reason = snap.reason;
  if (snap.message) status.message = snap.message;
  return status;
}

/** JSON form of a status for change detection (Dates and strings compare alike, key order normalized). */
export function statusKey(status: V1PodStatus | undefined): string {
  const norm = (v: unknown): unknown => {
    if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v)) return v.replace(/\.\d+Z$/, 'Z');
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null).sort().map((k) => [k, norm(o[k])]));
    }
    return v;
  };
  if (!status) return '';
  const { phase, conditions, hostIP, podIP, podIPs, containerStatuses, reason, message } = status;
  return JSON.stringify(norm({ phase, conditions, hostIP, podIP, podIPs, containerStatuses, reason, message }));
}
