// The synthetic cluster of the scale benchmark and the single-pod changes made to it. Pure data: the controller
// child loads the objects into its index, the replay baseline applies the same changes to the encoded resources,
// and the agents are told what each change must look like once it has arrived.
import { LABELS, ANNOTATIONS, DATAPLANE_MODE, REDIRECTION, type KubeObject } from '@ambit/api';
import { podUid, serviceHostname, serviceKey } from '../src/translate/index.js';
import { authorizationPolicy, namespace, peerAuthentication, pod, service } from '../src/translate/test-fixtures.js';

export const CLUSTER_ID = 'Kubernetes';
const CLUSTER_DOMAIN = 'cluster.local';
const ROOT_NAMESPACE = 'istio-system';

export interface SceneSize {
  services: number;
  pods: number;
  /** Services and pods are spread round-robin over these namespaces. */
  namespaces: number;
  /** Pods are spread over this many nodes (one agent per node in a real cluster). */
  nodes: number;
}

/** What an agent's state must show for a changed workload before the change counts as arrived. */
export interface WorkloadExpectation {
  uid: string;
  status: 'Healthy' | 'Unhealthy';
  /** Key (`<ns>/<hostname>`) the workload's services must now contain, and the one it must no longer contain. */
  servicePresent?: string;
  serviceAbsent?: string;
}

export interface PodChange {
  seq: number;
  namespace: string;
  name: string;
  /** `readiness`: the Ready condition turns False. `label`: the `app` label moves the pod to another Service. */
  kind: 'readiness' | 'label';
  /** For `label`: the new `app` label value. */
  app?: string;
  expect: WorkloadExpectation;
}

/** ~50 Services per namespace, at most 20 namespaces (1000 Services -> 20), at least 1. */
export function defaultNamespaces(services: number): number {
  return Math.min(20, Math.max(1, Math.round(services / 50)));
}

const nsName = (i: number): string => `bench-${i}`;
const svcName = (s: number): string => `svc-${s}`;
const appOf = (s: number): string => `app-${s}`;
/** Pod p backs Service p % services, so every Service has pods/services endpoints. */
const serviceOfPod = (size: SceneSize, p: number): number => p % size.services;
const nsOfService = (size: SceneSize, s: number): string => nsName(s % size.namespaces);
const ipv4 = (prefix: string, i: number): string => `${prefix}.${(i >> 8) & 255}.${i & 255}`;

export function serviceKeyOf(size: SceneSize, s: number): string {
  const ns = nsOfService(size, s);
  return serviceKey(ns, serviceHostname(svcName(s), ns, CLUSTER_DOMAIN));
}

export function validateSize(size: SceneSize): void {
  for (const [k, v] of Object.entries(size)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`scene: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (size.services <= size.namespaces) throw new Error(`scene: services (${size.services}) must outnumber namespaces (${size.namespaces}) so a pod can move between Services of its namespace`);
  if (size.services > 65_535 || size.pods > 65_535) throw new Error('scene: at most 65535 services and pods (one /16 each)');
}

/**
 * Namespaces labelled ambient; per namespace a namespace-wide ALLOW policy and a workload-selector DENY policy;
 * a mesh-wide STRICT PeerAuthentication (which adds the static strict policy); Services with two ports selecting
 * `app=app-<s>`; Ready, captured Pods with IPs, `app` and `version` labels, spread over the nodes.
 */
export function buildScene(size: SceneSize): KubeObject[] {
  validateSize(size);
  const objects: KubeObject[] = [namespace(ROOT_NAMESPACE)];
  objects.push(peerAuthentication(ROOT_NAMESPACE, 'default', { mtls: { mode: 'STRICT' } }));
  for (let n = 0; n < size.namespaces; n++) {
    const ns = nsName(n);
    objects.push(namespace(ns, { [LABELS.dataplaneMode]: DATAPLANE_MODE.ambient }));
    objects.push(authorizationPolicy(ns, 'allow-same-namespace', {
      action: 'ALLOW', rules: [{ from: [{ source: { namespaces: [ns, ROOT_NAMESPACE] } }] }],
    }));
    objects.push(authorizationPolicy(ns, 'deny-admin-port', {
      selector: { matchLabels: { [LABELS.app]: appOf(n) } },
      action: 'DENY', rules: [{ from: [{ source: { notNamespaces: [ns] } }], to: [{ operation: { ports: ['9090'] } }] }],
    }));
  }
  for (let s = 0; s < size.services; s++) {
    objects.push(service(nsOfService(size, s), svcName(s), {
      selector: { [LABELS.app]: appOf(s) },
      clusterIP: ipv4('10.96', s),
      ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'grpc', port: 9090, targetPort: 9090, appProtocol: 'grpc' }],
    }));
  }
  for (let p = 0; p < size.pods; p++) {
    const s = serviceOfPod(size, p);
    objects.push(pod(nsOfService(size, s), `pod-${p}`, {
      ip: ipv4('10.1', p),
      labels: { [LABELS.app]: appOf(s), [LABELS.version]: 'v1' },
      annotations: { [ANNOTATIONS.redirection]: REDIRECTION.enabled },
      serviceAccount: `sa-${s % 7}`,
      node: `node-${p % size.nodes}`,
      ports: [{ name: 'http', containerPort: 8080 }],
    }));
  }
  return objects;
}

/**
 * `count` changes, each to a different pod (stride coprime to the pod count), alternating a readiness flip and a
 * label change that moves the pod to another Service of its namespace. Every pod starts Ready with its own app.
 */
export function planChanges(size: SceneSize, count: number): PodChange[] {
  if (count > size.pods) throw new Error(`scene: ${count} changes need as many distinct pods, there are ${size.pods}`);
  let stride = 37;
  while (gcd(stride, size.pods) !== 1) stride++;
  const out: PodChange[] = [];
  for (let i = 0; i < count; i++) {
    const p = (i * stride) % size.pods;
    const s = serviceOfPod(size, p);
    const ns = nsOfService(size, s);
    const name = `pod-${p}`;
    const uid = podUid(CLUSTER_ID, ns, name);
    if (i % 2 === 0) {
      out.push({ seq: i, namespace: ns, name, kind: 'readiness', expect: { uid, status: 'Unhealthy' } });
    } else {
      // A Service of the same namespace: s +- namespaces keeps s % namespaces.
      const t = s + size.namespaces < size.services ? s + size.namespaces : s - size.namespaces;
      out.push({
        seq: i, namespace: ns, name, kind: 'label', app: appOf(t),
        expect: { uid, status: 'Healthy', servicePresent: serviceKeyOf(size, t), serviceAbsent: serviceKeyOf(size, s) },
      });
    }
  }
  return out;
}

/** Applies a change to a copy of the Pod object as the API server would report it. */
export function changedPod(current: KubeObject, change: PodChange): KubeObject {
  const o = structuredClone(current);
  if (change.kind === 'readiness') {
    o.status.conditions = [{ type: 'Ready', status: 'False' }];
  } else {
    o.metadata.labels = { ...o.metadata.labels, [LABELS.app]: change.app! };
  }
  o.metadata.resourceVersion = String(1000 + change.seq);
  return o;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
