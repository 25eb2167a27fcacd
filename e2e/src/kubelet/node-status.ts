// The Node object our kubelet registers and keeps alive: podCIDR, InternalIP (the node's underlay address),
// capacity/allocatable so the scheduler binds pods to it, Ready condition; heartbeats through a Lease in
// kube-node-lease (the node lifecycle controller marks a node NotReady, and taints it, when its lease goes stale).
import { CoordinationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Lease, type V1Node, type V1NodeCondition, type V1NodeStatus } from '@kubernetes/client-node';

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

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function isStatus(err: unknown, code: number): boolean {
  return (err as { code?: number }).code === code;
}

/** Creates the Node (or adopts an existing one), then writes its status. */
export async function registerNode(core: CoreV1Api, f: NodeFacts): Promise<void> {
  try {
    await core.createNode({ body: buildNode(f) });
  } catch (err) {
    if (!isStatus(err, 409)) throw err;
    // Re-registration (a kubelet restart): keep the Node, refresh our labels; spec.podCIDR is immutable once set.
    await core.patchNode({ name: f.name, body: { metadata: { labels: buildNode(f).metadata!.labels } } }, mergePatch);
  }
  await updateNodeStatus(core, f);
}

export async function updateNodeStatus(core: CoreV1Api, f: NodeFacts): Promise<void> {
  const current = await core.readNodeStatus({ name: f.name });
  await core.patchNodeStatus({ name: f.name, body: { status: buildNodeStatus(f, new Date(), current.status?.conditions) } }, mergePatch);
}

/** Creates or renews the node's Lease. */
export async function renewLease(coord: CoordinationV1Api, nodeName: string, node: V1Node | undefined, durationSeconds: number): Promise<void> {
  const now = new Date();
  try {
    const lease = await coord.readNamespacedLease({ name: nodeName, namespace: NODE_LEASE_NAMESPACE });
    lease.spec = { ...lease.spec, holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime: now };
    await coord.replaceNamespacedLease({ name: nodeName, namespace: NODE_LEASE_NAMESPACE, body: lease });
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
    const body: V1Lease = {
      metadata: {
        name: nodeName,
        namespace: NODE_LEASE_NAMESPACE,
        ...(node?.metadata?.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: node.metadata.uid }] } : {}),
      },
      spec: { holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime: now },
    };
    await coord.createNamespacedLease({ namespace: NODE_LEASE_NAMESPACE, body });
  }
}
