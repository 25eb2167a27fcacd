// The user's YAML (e2e/demo/*.yaml) -> what the embedded controller reads. The embedded source knows the kinds
// the controller watches (Namespace, Pod, Service, Istio and Gateway API objects), not Deployments or
// ServiceAccounts: without Kubernetes nobody runs a ReplicaSet controller, a scheduler or an IP allocator, so the
// demo does their jobs here, visibly: each Deployment becomes `replicas` Pods placed on a node with the IP of a
// topology pod, each Service gets a ClusterIP, ServiceAccounts only name identities.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isWatchedKind, type KubeObject } from '@ambit/api';

export interface ContainerSpec {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { containerPort: number }[];
}

export interface DeploymentSpec {
  name: string;
  namespace: string;
  replicas: number;
  labels: Record<string, string>;
  serviceAccountName: string;
  containers: ContainerSpec[];
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort: number;
  protocol: string;
}

export interface ParsedManifests {
  /** Objects the controller reads as they are (Namespace, Service, Istio, Gateway API). */
  objects: KubeObject[];
  deployments: DeploymentSpec[];
  serviceAccounts: { namespace: string; name: string }[];
}

/** Parses a user's manifest file. Unknown kinds are an error naming the file, document and kind. */
export function parseManifests(file: string, text = readFileSync(file, 'utf8')): ParsedManifests {
  const out: ParsedManifests = { objects: [], deployments: [], serviceAccounts: [] };
  const docs = parseAllDocuments(text);
  let i = 0;
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    i++;
    const where = `${basename(file)} document ${i}`;
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0]!.message.split('\n')[0]}`);
    const obj = doc.toJS() as KubeObject | null;
    if (!obj) continue;
    if (!obj.kind || !obj.metadata?.name) throw new Error(`${where}: kind and metadata.name are required`);
    const namespace = obj.metadata.namespace ?? 'default';
    if (obj.kind === 'Deployment') out.deployments.push(deploymentOf(obj, `${where} (Deployment ${namespace}/${obj.metadata.name})`));
    else if (obj.kind === 'ServiceAccount') out.serviceAccounts.push({ namespace, name: obj.metadata.name });
    else if (isWatchedKind(obj.kind)) out.objects.push(obj);
    else throw new Error(`${where}: kind ${obj.kind} is neither a Deployment, a ServiceAccount nor a kind the controller reads`);
  }
  return out;
}

function deploymentOf(obj: KubeObject, where: string): DeploymentSpec {
  const spec = obj.spec as { replicas?: number; template?: { metadata?: { labels?: Record<string, string> }; spec?: { serviceAccountName?: string; containers?: ContainerSpec[] } } } | undefined;
  const labels = spec?.template?.metadata?.labels;
  const containers = spec?.template?.spec?.containers;
  if (!labels || Object.keys(labels).length === 0) throw new Error(`${where}: spec.template.metadata.labels: required`);
  if (!containers?.length) throw new Error(`${where}: spec.template.spec.containers: at least one container is required`);
  const replicas = spec?.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`${where}: spec.replicas: must be an integer >= 0`);
  return {
    name: obj.metadata.name,
    namespace: obj.metadata.namespace ?? 'default',
    replicas,
    labels,
    serviceAccountName: spec?.template?.spec?.serviceAccountName ?? 'default',
    containers,
  };
}

/** Ports of a Service, with numeric target ports (named target ports are not used by the samples). */
export function servicePorts(svc: KubeObject): ServicePort[] {
  const ports = (svc.spec?.ports ?? []) as { name?: string; port: number; targetPort?: number | string; protocol?: string }[];
  return ports.map((p, i) => {
    const target = p.targetPort ?? p.port;
    if (typeof target !== 'number') throw new Error(`Service ${svc.metadata.namespace}/${svc.metadata.name}: spec.ports[${i}].targetPort: named ports are not supported by the demo`);
    return { ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: target, protocol: p.protocol ?? 'TCP' };
  });
}

/** A pod name like the ReplicaSet controller's: `<deployment>-<10 chars>-<5 chars>`, stable for a given input. */
export function podNameFor(deployment: string, replica: number): string {
  const h = createHash('sha256').update(`${deployment}/${replica}`).digest('hex');
  const alnum = (s: string): string => s.replace(/[0-9a-f]/g, (c) => 'bcdfghjklmnpqrstvwxz2456789'[parseInt(c, 16)]!);
  return `${deployment}-${alnum(h.slice(0, 10))}-${alnum(h.slice(10, 15))}`;
}

export interface PodPlacement {
  name: string;
  namespace: string;
  nodeName: string;
  ip: string;
  labels: Record<string, string>;
  serviceAccountName: string;
  annotations?: Record<string, string>;
  hostNetwork?: boolean;
  containers?: ContainerSpec[];
}

/** The Pod object the kubelet would have reported for a running, ready pod. */
export function podObject(p: PodPlacement): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      labels: p.labels,
      ...(p.annotations && Object.keys(p.annotations).length ? { annotations: p.annotations } : {}),
    },
    spec: {
      nodeName: p.nodeName,
      serviceAccountName: p.serviceAccountName,
      ...(p.hostNetwork ? { hostNetwork: true } : {}),
      containers: (p.containers ?? [{ name: 'main' }]).map((c) => ({ name: c.name, ...(c.image ? { image: c.image } : {}), ...(c.ports ? { ports: c.ports } : {}) })),
    },
    status: {
      phase: 'Running',
      podIP: p.ip,
      podIPs: [{ ip: p.ip }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

/** Does `labels` match a Service's equality selector? (A Service without a selector selects nothing.) */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Kubernetes' service environment variables (`<NAME>_SERVICE_HOST`/`_PORT`) for the Services of a namespace. */
export function serviceEnv(services: readonly KubeObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const svc of services) {
    const ip = svc.spec?.clusterIP as string | undefined;
    const first = servicePorts(svc)[0];
    if (!ip || !first) continue;
    const name = svc.metadata.name.toUpperCase().replace(/-/g, '_');
    env[`${name}_SERVICE_HOST`] = ip;
    env[`${name}_SERVICE_PORT`] = String(first.port);
  }
  return env;
}
