/**
 * The HTTP contract between the chained CNI plugin and the node agent's enrollment API, as plain types and
 * constants. This module imports nothing, so the CNI plugin (which runs once per pod start and must stay light)
 * can share it without pulling in the agent's dependencies.
 *
 *   POST   /v1/pods        PodSpec           -> 200 AddPodResponse | 4xx/5xx ErrorResponse
 *   DELETE /v1/pods/:uid                     -> 200 DeletePodResponse (idempotent) | 5xx ErrorResponse
 *   GET    /v1/pods                          -> 200 ListPodsResponse
 *   GET    /v1/pods/:uid                     -> 200 PodStatus | 404 ErrorResponse
 */

/** Where the agent listens and the plugin connects unless configured otherwise. */
export const DEFAULT_CNI_SOCKET_PATH = '/var/run/ambit/cni.sock';
/** Where the agent keeps the snapshot of enrolled pods; /var/run is tmpfs, so it lives exactly as long as the pods. */
export const DEFAULT_POD_SNAPSHOT_PATH = '/var/run/ambit/pods.json';
export const PODS_PATH = '/v1/pods';

/** What the agent needs to know to capture a pod. Only the CNI plugin's facts are required; the agent's informer adds the rest. */
export interface PodSpec {
  /** Kubernetes pod UID (the ZDS uid). The plugin falls back to the sandbox container id when the runtime gives no K8S_POD_UID. */
  uid: string;
  name: string;
  namespace: string;
  serviceAccount?: string;
  /** Path to the pod's network namespace: /var/run/netns/<name> or /proc/<pid>/ns/net. */
  netns: string;
  ips?: string[];
  /** Sandbox (infra) container id, from CNI_CONTAINERID. */
  containerId?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** What the agent's policy decided. A capture that failed is not an outcome: it is an error (5xx), and the ADD must fail. */
export type CaptureOutcome = { captured: true } | { captured: false; reason: string };

export type AddPodResponse = CaptureOutcome;
export interface DeletePodResponse {
  released: true;
  /** False when the agent had no record of the pod; DEL still succeeds. */
  known: boolean;
}
/**
 * One enrolled pod. `outcome` is what the agent decided at ADD; `captured` is live (asks the capturer now), so
 * `outcome: 'captured', captured: false` means the capture was lost and CNI CHECK must fail.
 */
export interface PodStatus {
  pod: PodSpec;
  outcome: 'captured' | 'declined';
  reason?: string;
  captured: boolean;
  enrolledAt: string;
}
export interface ListPodsResponse {
  pods: PodStatus[];
}
export interface ErrorResponse {
  error: string;
  /** Stable `AMB_ERR_*` code when the agent has one. */
  code?: string;
  /** For validation errors: the request field at fault, e.g. `ips[1]`. */
  field?: string;
}
