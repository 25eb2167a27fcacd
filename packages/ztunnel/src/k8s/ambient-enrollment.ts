// The node agent's Kubernetes side of ambient enrollment (Istio's cni/pkg/nodeagent informers): it watches every
// Namespace and the Pods of its own node, and makes what is captured follow what the labels ask:
//   - a running pod that should be ambient and is not captured (its namespace was labelled after it started, or
//     the agent restarted) is captured: its netns comes from the agent's registry (CNI ADD recorded it, even when
//     it declined) or from a scan for the namespace holding the pod's IP;
//   - a captured pod that should no longer be ambient (namespace unlabelled, pod labelled none) is released and
//     recorded as declined, so a later label captures it again without a scan;
//   - a deleted or finished pod is released;
//   - `ambient.istio.io/redirection: enabled` is set on captured pods (after a CNI ADD too) and removed from pods
//     that are not captured.
// It also decides CNI ADDs: the capturer it wraps around the real one captures a pod only if its labels say so.
// Informer callbacks only queue pod uids; one reconcile per uid at a time reads the caches. Failures are logged
// with the pod and the reason and retried with backoff, for as long as the pod exists; nothing here throws into
// the agent.
import type { KubernetesObject, V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ANNOTATIONS, REDIRECTION } from '@ambit/api';
import type { CaptureOutcome, PodSpec } from '../inpod/enrollment-contract.js';
import type { PodEnrollment } from '../inpod/pod-enrollment.js';
import { EnrollmentError, type PodCapturer } from '../inpod/pod-spec.js';
import { decideAmbient, isPodTerminal, podIpsOf, redirectionAnnotationOf, type AmbientDecision } from './ambient-selection.js';
import { describeApiError, type NodeAgentApi } from './kube-client.js';
import type { NetnsFinder } from './netns-finder.js';
import { startResourceWatch, type ResourceWatch } from './resource-watch.js';
import { createRetryQueue, type RetryQueue } from './retry-queue.js';
import { netnsIdentity } from '../inpod/pod-registry.js';

export interface AmbientEnrollmentOptions {
  nodeName: string;
  api: NodeAgentApi;
  finder: NetnsFinder;
  logger: Logger;
  /** Watch restart backoff (default 500 ms .. 30 s) and reconcile retry backoff (default 200 ms .. 30 s). */
  watchBackoff?: { baseMs: number; maxMs: number };
  retryBackoff?: { baseMs: number; maxMs: number };
}

export interface AmbientEnrollment {
  /**
   * Wraps the real capturer (the PodManager) so that CNI ADDs and start-up re-enrollment capture a pod only when its
   * Pod and Namespace say so, with the service account from the Pod; a captured pod is then queued for its annotation.
   */
  wrapCapturer(inner: PodCapturer): PodCapturer;
  /** Starts the watches; resolves once pods and namespaces are listed (or `stop()` was called). */
  start(): Promise<void>;
  /** Starts reconciling: every cached pod and every pod the enrollment knows. Call after `enrollment.restore()`. */
  reconcileAll(enrollment: PodEnrollment): void;
  readonly synced: boolean;
  /** Resolves when no reconcile is waiting or running (tests). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

type Namespace = V1Namespace & KubernetesObject;
type Pod = V1Pod & KubernetesObject;

const describe = (p: Pod): string => `${p.metadata?.namespace}/${p.metadata?.name}`;

export function createAmbientEnrollment(options: AmbientEnrollmentOptions): AmbientEnrollment {
  const { api, finder } = options;
  const log = options.logger.child({ component: 'ambient-enrollment' });
  /** The pods of this node by uid (the ListWatch cache is keyed by namespace/name). */
  const podsByUid = new Map<string, Pod>();
  let enrollment: PodEnrollment | undefined;
  let podWatch: ResourceWatch<Pod> | undefined;
  let nsWatch: ResourceWatch<Namespace> | undefined;
  let stopped = false;
  let reconciling = false;
  let stopWaiter: (() => void) | undefined;
  /** The real capturer, once wrapped: whether a pod is captured right now (the registry records it a moment later). */
  let inner: PodCapturer | undefined;

  const queue: RetryQueue = createRetryQueue({
    process: (uid) => reconcile(uid),
    onError: (uid, err, failures, retryInMs) => {
      const pod = podsByUid.get(uid);
      const status = enrollment?.status(uid);
      const name = pod ? describe(pod) : status ? `${status.pod.namespace}/${status.pod.name}` : uid;
      log.warn({ pod: name, uid, failures, retryInMs, reason: describeApiError(err) }, `reconcile of pod ${name} failed: ${describeApiError(err)}; retrying`);
    },
    ...(options.retryBackoff ? { baseDelayMs: options.retryBackoff.baseMs, maxDelayMs: options.retryBackoff.maxMs } : {}),
  });
  const enqueue = (uid: string | undefined): void => {
    if (uid && reconciling) queue.add(uid);
  };

  function namespaceLabels(name: string | undefined): Record<string, string> | undefined {
    return name ? nsWatch?.get(name)?.metadata?.labels ?? undefined : undefined;
  }

  /** The Pod for a CNI request: from the cache (by uid, else by name: the uid may be a sandbox id), else the API. */
  async function podFor(spec: PodSpec): Promise<Pod | undefined> {
    const cached = podsByUid.get(spec.uid) ?? podWatch?.get(spec.name, spec.namespace);
    if (cached) return cached;
    return (await api.getPod(spec.namespace, spec.name)) as Pod | undefined;
  }

  async function decisionFor(pod: Pod): Promise<AmbientDecision> {
    const ns = pod.metadata?.namespace;
    let labels = namespaceLabels(ns);
    if (labels === undefined && ns && !nsWatch?.get(ns)) labels = (await api.getNamespace(ns))?.metadata?.labels ?? {};
    if (isPodTerminal(pod)) return { ambient: false, reason: `the pod has finished (phase ${pod.status?.phase})` };
    return decideAmbient(pod, labels);
  }

  async function patchRedirection(pod: Pod, value: string | null): Promise<void> {
    const { namespace, name } = pod.metadata ?? {};
    try {
      await api.patchPodAnnotations(namespace!, name!, { [ANNOTATIONS.redirection]: value });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 404) return; // gone: its delete event releases it
      throw err;
    }
    log.info({ pod: describe(pod), uid: pod.metadata?.uid }, value === null ? `removed ${ANNOTATIONS.redirection} from pod ${describe(pod)}` : `annotated pod ${describe(pod)} ${ANNOTATIONS.redirection}=${value}`);
  }

  /** The netns of a running pod: the registry's path if it still names a namespace, else a scan for its IPs. */
  async function netnsOf(pod: Pod, ips: string[]): Promise<string | undefined> {
    const known = enrollment?.status(pod.metadata!.uid!)?.pod.netns;
    if (known && (await netnsIdentity(known)) !== undefined) return known;
    return finder.find(ips, pod.metadata!.uid!);
  }

  async function reconcile(uid: string): Promise<void> {
    if (!enrollment || stopped) return;
    let pod = podsByUid.get(uid);
    const status = enrollment.status(uid);
    if (!pod) {
      if (!status) return;
      // Not in the cache but known to the enrollment: deleted while we were not watching, or a CNI ADD that ran
      // before the watch delivered the pod. Only the API can tell.
      const live = (await api.getPod(status.pod.namespace, status.pod.name)) as Pod | undefined;
      if (live?.metadata?.uid !== uid || live.spec?.nodeName !== options.nodeName) {
        await enrollment.release(uid);
        log.info({ pod: `${status.pod.namespace}/${status.pod.name}`, uid }, `released pod ${status.pod.namespace}/${status.pod.name}: it no longer exists`);
        return;
      }
      pod = live;
    }
    if (isPodTerminal(pod)) {
      if (status) {
        await enrollment.release(uid);
        log.info({ pod: describe(pod), uid, phase: pod.status?.phase }, `released pod ${describe(pod)}: it has finished`);
      }
      return;
    }
    const nsName = pod.metadata?.namespace;
    if (nsName && !nsWatch?.get(nsName)) {
      log.debug({ pod: describe(pod) }, 'namespace not in the cache yet; the namespace event reconciles the pod');
      return;
    }
    const decision = decideAmbient(pod, namespaceLabels(nsName));
    const annotation = redirectionAnnotationOf(pod);
    const capturedNow = (inner?.isCaptured(uid) ?? false) || status?.captured === true;
    if (decision.ambient) {
      if (!capturedNow) {
        const ips = podIpsOf(pod);
        if (ips.length === 0) {
          log.debug({ pod: describe(pod) }, 'no pod IP yet; waiting for the status update');
          return;
        }
        const netns = await netnsOf(pod, ips);
        if (!netns) throw new Error(`no network namespace on this node holds the pod's IP ${ips.join(', ')}`);
        const outcome = await enrollment.enroll({
          uid, name: pod.metadata!.name!, namespace: nsName!, netns, ips,
          ...(pod.spec?.serviceAccountName ? { serviceAccount: pod.spec.serviceAccountName } : {}),
        });
        // The wrapped capturer decides from the same caches; a decline means the labels changed meanwhile, and
        // that change has queued this pod again.
        if (!outcome.captured) return;
        log.info({ pod: describe(pod), uid, netns }, `captured running pod ${describe(pod)}`);
      }
      if (annotation !== REDIRECTION.enabled) await patchRedirection(pod, REDIRECTION.enabled);
      return;
    }
    if (capturedNow || status?.outcome === 'captured') {
      // Enrolling again lets the wrapped capturer decline: it releases the capture and the registry keeps the pod
      // as declined with its netns, ready for a later label.
      try {
        if (status) await enrollment.enroll(status.pod);
        else await enrollment.release(uid);
      } catch (err) {
        if (!(err instanceof EnrollmentError && err.status === 400)) throw err;
        await enrollment.release(uid); // its netns is gone
      }
      log.info({ pod: describe(pod), uid, reason: decision.reason }, `released pod ${describe(pod)}: ${decision.reason}`);
    }
    if (annotation !== undefined) await patchRedirection(pod, null);
  }

  const upsertPod = (p: Pod): void => {
    const uid = p.metadata?.uid;
    if (!uid) return;
    podsByUid.set(uid, p);
    enqueue(uid);
  };
  const deletePod = (p: Pod): void => {
    const uid = p.metadata?.uid;
    if (!uid) return;
    podsByUid.delete(uid);
    enqueue(uid);
  };
  const namespaceChanged = (ns: Namespace): void => {
    for (const p of podWatch?.list(ns.metadata?.name) ?? []) enqueue(p.metadata?.uid);
  };

  const wrapCapturer = (real: PodCapturer): PodCapturer => {
    inner = real;
    return { capture: (spec) => captureIfAmbient(real, spec), release: (uid) => real.release(uid), isCaptured: (uid) => real.isCaptured(uid) };
  };

  async function captureIfAmbient(real: PodCapturer, spec: PodSpec): Promise<CaptureOutcome> {
    let pod: Pod | undefined;
    let decision: AmbientDecision;
    try {
      pod = await podFor(spec);
      if (!pod) {
        throw new EnrollmentError(`pod ${spec.namespace}/${spec.name} is not known to the API server yet`, { status: 503 });
      }
      decision = await decisionFor(pod);
    } catch (err) {
      if (err instanceof EnrollmentError) throw err;
      // The kubelet retries a failed ADD: "not now" rather than "broken" while the API server is away.
      throw new EnrollmentError(`cannot read pod ${spec.namespace}/${spec.name} from the API server: ${describeApiError(err)}`, { status: 503, cause: err });
    }
    if (!decision.ambient) {
      await real.release(spec.uid);
      return { captured: false, reason: decision.reason };
    }
    const serviceAccount = pod.spec?.serviceAccountName;
    const ips = spec.ips?.length ? spec.ips : podIpsOf(pod);
    const outcome = await real.capture({ ...spec, ...(serviceAccount ? { serviceAccount } : {}), ...(ips.length ? { ips } : {}) });
    // The annotation is written by the reconcile (by the pod's uid from the API: the CNI uid may be a sandbox id).
    if (outcome.captured) enqueue(pod.metadata?.uid);
    return outcome;
  }

  return {
    wrapCapturer,
    get synced() {
      return (podWatch?.hasSynced() ?? false) && (nsWatch?.hasSynced() ?? false);
    },
    async start() {
      nsWatch = startResourceWatch<Namespace>({
        kind: 'namespaces', path: '/api/v1/namespaces', list: () => api.listNamespaces(), watch: api.watch,
        onUpsert: namespaceChanged, onDelete: namespaceChanged, logger: log,
        ...(options.watchBackoff ? { backoff: options.watchBackoff } : {}),
      });
      podWatch = startResourceWatch<Pod>({
        kind: 'pods', path: '/api/v1/pods', list: () => api.listPods(`spec.nodeName=${options.nodeName}`), watch: api.watch,
        fieldSelector: `spec.nodeName=${options.nodeName}`, onUpsert: upsertPod, onDelete: deletePod, logger: log,
        ...(options.watchBackoff ? { backoff: options.watchBackoff } : {}),
      });
      const stopping = new Promise<void>((resolve) => { stopWaiter = resolve; });
      await Promise.race([Promise.all([nsWatch.synced, podWatch.synced]), stopping]);
    },
    reconcileAll(e) {
      enrollment = e;
      reconciling = true;
      for (const uid of podsByUid.keys()) queue.add(uid);
      for (const s of e.list()) queue.add(s.pod.uid);
    },
    idle: () => queue.idle(),
    async stop() {
      stopped = true;
      stopWaiter?.();
      podWatch?.stop();
      nsWatch?.stop();
      await queue.stop();
    },
  };
}
