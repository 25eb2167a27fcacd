// The Node object our kubelet registers and keeps alive: podCIDR, InternalIP (the node's underlay address),
// capacity/allocatable so the scheduler binds pods to it, Ready condition; heartbeats through a Lease in
// kube-node-lease (the node lifecycle controller marks a node NotReady, and taints it, when its lease goes stale).
import type { V1Lease, V1Node, V1NodeCondition, V1NodeStatus } from '@kubernetes/client-node';
import { isApiStatus, MERGE_PATCH, type KubeApi } from './kube-api.js';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
export const KUBELET_VERSION = 'v1.33.0-ambit';
export const NODE_INDEX_LABEL = 'ambit.dev/node-index';

export interface NodeFacts {
  name: string;
  index: number;
  internalIP: string;
  podCIDR: string;
  capacity: { cpu: string; memory: string; pods: string };
  labels?: Record<string, string>;
}

/** The Node object to create (spec and metadata; status is written through the status subresource). */
export function buildNode(f: NodeFacts): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: f.name,
      labels: {
        'kubernetes.io/hostname': f.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
        'beta.kubernetes.io/os': 'linux',
        [NODE_INDEX_LABEL]: String(f.index),
        ...(f.labels ?? {}),
      },
    },
    spec: { podCIDR: f.podCIDR, podCIDRs: [f.podCIDR] },
  };
}

function nodeCondition(type: string, status: 'True' | 'False', reason: string, message: string, now: Date, previous: V1NodeCondition[] | undefined): V1NodeCondition {
  const old = previous?.find((c) => c.type === type);
  return { type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now };
}

/** Node status: Ready, no pressure, network available, addresses and capacity. */
export function buildNodeStatus(f: NodeFacts, now: Date, previous?: V1NodeCondition[]): V1NodeStatus {
  const resources = { cpu: f.capacity.cpu, memory: f.capacity.memory, pods: f.capacity.pods, 'ephemeral-storage': '100Gi' };
  return {
    capacity: resources,
    allocatable: resources,
    conditions: [
      nodeCondition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available', now, previous),
      nodeCondition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure', now, previous),
      nodeCondition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available', now, previous),
      nodeCondition('Ready', 'True', 'KubeletReady', 'ambit cluster-in-a-box kubelet is posting ready status', now, previous),
    ],
    addresses: [
      { type: 'InternalIP', address: f.internalIP },
      { type: 'Hostname', address: f.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
    nodeInfo: {
      machineID: `ambit-${f.name}`,
      systemUUID: `ambit-${f.name}`,
      bootID: `ambit-${f.name}`,
      kernelVersion: '',
      osImage: 'Ambit cluster-in-a-box',
      containerRuntimeVersion: 'ambit://0.1.0',
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: 'linux',
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    },
  };
}

/** Creates the Node (or adopts an existing one), then writes its status. */
export async function registerNode(api: KubeApi, f: NodeFacts): Promise<V1Node> {
  try {
    await api.request('POST', '/api/v1/nodes', buildNode(f));
  } catch (err) {
    if (!isApiStatus(err, 409)) throw err;
    // Re-registration (a kubelet restart): keep the Node, refresh our labels; spec.podCIDR is immutable once set.
    await api.request('PATCH', `/api/v1/nodes/${f.name}`, { metadata: { labels: buildNode(f).metadata!.labels } }, MERGE_PATCH);
  }
  return updateNodeStatus(api, f);
}

export async function updateNodeStatus(api: KubeApi, f: NodeFacts): Promise<V1Node> {
  const current = await api.request<V1Node>('GET', `/api/v1/nodes/${f.name}`);
  return api.request<V1Node>('PATCH', `/api/v1/nodes/${f.name}/status`, { status: buildNodeStatus(f, new Date(), current.status?.conditions) }, MERGE_PATCH);
}

/** Creates or renews the node's Lease (owned by the Node, so it goes with it). */
export async function renewLease(api: KubeApi, nodeName: string, node: V1Node | undefined, durationSeconds: number): Promise<void> {
  const path = `/apis/coordination.k8s.io/v1/namespaces/${NODE_LEASE_NAMESPACE}/leases`;
  const now = new Date().toISOString().replace('Z', '000Z'); // MicroTime: microsecond precision
  try {
    const lease = await api.request<V1Lease>('GET', `${path}/${nodeName}`);
    lease.spec = { ...lease.spec, holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime: now as unknown as Date };
    await api.request('PUT', `${path}/${nodeName}`, lease);
  } catch (err) {
    if (!isApiStatus(err, 404)) throw err;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: nodeName,
        namespace: NODE_LEASE_NAMESPACE,
        ...(node?.metadata?.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: node.metadata.uid }] } : {}),
      },
      spec: { holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime: now as unknown as Date },
    };
    await api.request('POST', path, body);
  }
}
