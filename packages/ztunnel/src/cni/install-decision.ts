// Whether an exiting agent takes its CNI plugin out of the node's configuration.
//
// Leaving the entry in place while no agent runs makes every new pod on the node (outside the excluded namespaces)
// fail its CNI ADD until an agent is back: right during a restart or upgrade (pods wait instead of starting
// uncaptured), wrong after an uninstall (the node cannot start pods at all). So, in order:
//  1. AMBIT_CNI_UNINSTALL_ON_EXIT=false: never remove.
//  2. Another agent answers on the enrollment socket: keep. During a rolling upgrade (maxSurge 1) the new agent is
//     already serving (it renamed its socket over ours), and it keeps the entry it wrote. The probe runs after our
//     own enrollment server closed, so only another process can answer; a crashed agent holds no socket, so
//     nothing stale can block an uninstall (which a lease file left by a SIGKILLed agent could).
//  3. =true: remove.
//  4. =auto (default), istio-cni's rule: keep while the agent's DaemonSet exists and is not being deleted (a pod
//     restart or an upgrade: the DaemonSet brings an agent back), remove when it is gone or being deleted (helm
//     uninstall). Outside Kubernetes mode, or for a pod no DaemonSet owns, there is no one to bring an agent back:
//     remove. When the API server cannot be asked, remove too: a node that cannot start pods is the worse outcome,
//     and the Kubernetes watch captures pods that start in the gap once an agent is back.
import { connect } from 'node:net';
import { ApiException, AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeApiError } from '../k8s/kube-client.js';

export type UninstallOnExit = 'auto' | 'true' | 'false';

/** The agent's DaemonSet as seen at exit. */
export type DaemonSetState =
  | { kind: 'present'; name: string }
  | { kind: 'deleting'; name: string }
  | { kind: 'gone'; name: string }
  | { kind: 'not-owned' }
  | { kind: 'unknown'; error: string };

export interface UninstallDecisionInput {
  mode: UninstallOnExit;
  /** The enrollment socket: does another agent answer there? */
  socketPath: string;
  /** Asks the API server about the agent's DaemonSet; absent outside Kubernetes mode. */
  daemonSet?: () => Promise<DaemonSetState>;
  /** Connect timeout of the socket probe; default 1000 ms. */
  probeTimeoutMs?: number;
}

export interface UninstallDecision {
  uninstall: boolean;
  reason: string;
}

/** True when something accepts a connection on the unix socket `path`. */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (v: boolean) => { clearTimeout(timer); s.destroy(); resolve(v); };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export async function decideUninstall(input: UninstallDecisionInput): Promise<UninstallDecision> {
  if (input.mode === 'false') return { uninstall: false, reason: 'AMBIT_CNI_UNINSTALL_ON_EXIT=false' };
  if (await socketAnswers(input.socketPath, input.probeTimeoutMs)) {
    return { uninstall: false, reason: `another agent serves ${input.socketPath} (rolling upgrade); it keeps the plugin` };
  }
  if (input.mode === 'true') return { uninstall: true, reason: 'AMBIT_CNI_UNINSTALL_ON_EXIT=true and no other agent serves the socket' };
  if (!input.daemonSet) return { uninstall: true, reason: 'not in Kubernetes mode: no DaemonSet will bring an agent back' };
  const ds = await input.daemonSet();
  switch (ds.kind) {
    case 'present': return { uninstall: false, reason: `DaemonSet ${ds.name} still exists (pod restart or upgrade): new pods wait for the next agent` };
    case 'deleting': return { uninstall: true, reason: `DaemonSet ${ds.name} is being deleted` };
    case 'gone': return { uninstall: true, reason: `DaemonSet ${ds.name} is gone` };
    case 'not-owned': return { uninstall: true, reason: 'the agent pod is not owned by a DaemonSet: nothing will bring an agent back' };
    case 'unknown': return { uninstall: true, reason: `could not read the agent's DaemonSet (${ds.error}) and no other agent serves the socket` };
  }
}

export interface DaemonSetLookupOptions {
  kubeConfig: KubeConfig;
  podNamespace: string;
  podName: string;
}

/**
 * Finds the agent's DaemonSet through its pod's ownerReferences (read once, while the pod surely exists) and asks
 * for its state at exit. RBAC: pods get (the agent has it), apps daemonsets get.
 */
export function createDaemonSetLookup(options: DaemonSetLookupOptions): { prefetch(): Promise<void>; state(): Promise<DaemonSetState> } {
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const apps = options.kubeConfig.makeApiClient(AppsV1Api);
  const namespace = options.podNamespace;
  let owner: Promise<string | undefined> | undefined;
  const ownerName = (): Promise<string | undefined> => {
    owner ??= core.readNamespacedPod({ namespace, name: options.podName }).then(
      (pod) => pod.metadata?.ownerReferences?.find((r) => r.kind === 'DaemonSet' && r.apiVersion.startsWith('apps/'))?.name,
    );
    // A failed read is retried at the next call.
    owner.catch(() => { owner = undefined; });
    return owner;
  };
  return {
    async prefetch() {
      await ownerName().catch(() => undefined);
    },
    async state() {
      let name: string | undefined;
      try {
        name = await ownerName();
      } catch (err) {
        return { kind: 'unknown', error: `pod ${namespace}/${options.podName}: ${describeApiError(err)}` };
      }
      if (!name) return { kind: 'not-owned' };
      const full = `${namespace}/${name}`;
      try {
        const ds = await apps.readNamespacedDaemonSet({ namespace, name });
        return ds.metadata?.deletionTimestamp ? { kind: 'deleting', name: full } : { kind: 'present', name: full };
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return { kind: 'gone', name: full };
        return { kind: 'unknown', error: `DaemonSet ${full}: ${describeApiError(err)}` };
      }
    },
  };
}
