// Which pods the node agent captures, decided from the Pod and its Namespace exactly as Istio's CNI node agent does
// (istio/istio cni/pkg/util: PodRedirectionEnabled and the default enablement selectors of 1.24+):
//   - pod label istio.io/dataplane-mode=ambient, OR namespace label istio.io/dataplane-mode=ambient;
//   - a pod carrying the sidecar.istio.io/status annotation (it has a sidecar) is never captured;
//   - pod label istio.io/dataplane-mode=none opts the pod out even in an ambient namespace;
//   - hostNetwork pods are never captured (their "pod netns" is the node's).
// Waypoints are not special-cased: Istio (and our controller) label waypoint pods istio.io/dataplane-mode=none.
import { ANNOTATIONS, DATAPLANE_MODE, LABELS } from '@ambit/api';
import type { V1Pod } from '@kubernetes/client-node';

/** The parts of a Pod the decision reads (a V1Pod, or the raw JSON a watch delivers). */
export type PodFacts = Pick<V1Pod, 'metadata' | 'spec' | 'status'>;

export type AmbientDecision = { ambient: true } | { ambient: false; reason: string };

export function decideAmbient(pod: PodFacts, namespaceLabels: Readonly<Record<string, string>> | undefined): AmbientDecision {
  const podLabels = pod.metadata?.labels ?? {};
  const podMode = podLabels[LABELS.dataplaneMode];
  const nsMode = namespaceLabels?.[LABELS.dataplaneMode];
  const ns = pod.metadata?.namespace ?? '';
  if (podMode !== DATAPLANE_MODE.ambient && nsMode !== DATAPLANE_MODE.ambient) {
    return { ambient: false, reason: `neither namespace ${ns} nor the pod is labelled ${LABELS.dataplaneMode}=${DATAPLANE_MODE.ambient}` };
  }
  if (pod.metadata?.annotations?.[ANNOTATIONS.sidecarStatus] !== undefined) {
    return { ambient: false, reason: `the pod has a sidecar (annotation ${ANNOTATIONS.sidecarStatus})` };
  }
  if (podMode === DATAPLANE_MODE.none) {
    return { ambient: false, reason: `the pod opts out with ${LABELS.dataplaneMode}=${DATAPLANE_MODE.none}` };
  }
  if (pod.spec?.hostNetwork === true) {
    return { ambient: false, reason: 'the pod uses the host network' };
  }
  return { ambient: true };
}

/** A pod whose containers will not run again (Succeeded or Failed): its capture is released, as Istio does. */
export function isPodTerminal(pod: PodFacts): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/** status.podIPs, else status.podIP (early in a pod's life neither may be set). */
export function podIpsOf(pod: PodFacts): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => typeof ip === 'string' && ip.length > 0);
  if (ips.length > 0) return ips;
  return pod.status?.podIP ? [pod.status.podIP] : [];
}

export function redirectionAnnotationOf(pod: PodFacts): string | undefined {
  return pod.metadata?.annotations?.[ANNOTATIONS.redirection];
}
