// The nodes of a cluster-in-a-box: the netns topology (one node netns per Kubernetes node), a root directory per
// node (`<dir>/node-<N>/root`: node-local hostPaths such as /etc/cni/net.d and /opt/cni/bin live under it, so
// DaemonSet pods on different nodes see different directories), the primary CNI conflist in the node's
// /etc/cni/net.d (ambit-bridge, as kubelet/kubelet.e2e.test.ts writes it) and one of our kubelets per node, acting
// with node credentials (CN=system:node:<name>, O=system:nodes). stop() stops the kubelets (pods torn down: processes, CNI
// DEL, netns) and then destroys the topology; a failed start undoes what it had started.
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTopology, type Topology } from '../topology.js';
import { startKubelet, type Kubelet } from '../kubelet/kubelet.js';
import type { ImageRegistry } from '../kubelet/image-registry.js';
import type { ControlPlane } from './control-plane.js';
import { registerForCleanup, unregisterFromCleanup } from '../cleanup.js';

const BIN_DIR = fileURLToPath(new URL('../../../bin', import.meta.url));

export interface NodePoolOptions {
  imageRegistry?: ImageRegistry;
  /** Extra CNI plugins chained after ambit-bridge (e.g. the Ambit CNI plugin), per node index. */
  chainedPlugins?: (nodeIndex: number) => object[];
  /** Plugin directories searched after the node's own /opt/cni/bin and the built-in e2e/bin. */
  cniBinDirs?: readonly string[];
  /** Host paths that are each node's own (kubelet option; default DEFAULT_NODE_LOCAL_PATHS). */
  nodeLocalPaths?: readonly string[];
  /** Cluster DNS the kubelets give pods (kubelet --cluster-dns/--cluster-domain). */
  clusterDns?: { server: string; clusterDomain: string };
  log?: (line: string) => void;
}

/** Name of the primary conflist in each node's /etc/cni/net.d. */
export const PRIMARY_CONFLIST = '10-ambit.conflist';

export interface NodePool {
  readonly topology: Topology;
  readonly kubelets: readonly Kubelet[];
  /** Holds the node roots (CNI confs and binaries, IPAM state) and per-node pod logs. */
  readonly dir: string;
  nodeName(index: number): string;
  /** The root directory of node `index` (1-based): node-local host path P is `<nodeRoot>P`. */
  nodeRoot(index: number): string;
  kubeletFor(nodeName: string): Kubelet | undefined;
  /** Copies every node's pod logs (one directory per node) and the cluster services' logs into `dir`. */
  copyLogsTo(dir: string): string[];
  stop(): Promise<void>;
}

export const nodeNameOf = (index: number): string => `node-${index}`;
const nodeRootOf = (dir: string, index: number): string => join(dir, `node-${index}`, 'root');

export async function startNodePool(cp: ControlPlane, count: number, options: NodePoolOptions = {}): Promise<NodePool> {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-nodes-'));
  const kubelets: Kubelet[] = [];
  let topology: Topology | undefined;
  // At process exit the kubelets and the topology clean up through their own registrations (processes in the
  // node and pod namespaces included: kube-proxy, CoreDNS); this removes the directory they leave.
  const safety = { prefix: `nodes ${dir}`, destroySync: () => rmSync(dir, { recursive: true, force: true }) };
  registerForCleanup(safety);
  const stop = async () => {
    for (const k of [...kubelets].reverse()) await k.stop().catch(() => undefined);
    kubelets.length = 0;
    try {
      await topology?.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      unregisterFromCleanup(safety);
    }
  };
  try {
    topology = await createTopology({ nodes: count });
    const topo = topology;
    for (let n = 1; n <= count; n++) {
      const node = topo.node(n);
      const root = nodeRootOf(dir, n);
      const confDir = join(root, 'etc/cni/net.d');
      mkdirSync(confDir, { recursive: true });
      mkdirSync(join(root, 'opt/cni/bin'), { recursive: true });
      writeFileSync(
        join(confDir, PRIMARY_CONFLIST),
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'ambit',
          plugins: [
            { type: 'ambit-bridge', bridge: node.bridge, hostNetns: node.netns, ipam: { subnet: node.podCidr, gateway: node.bridgeIp, dataDir: join(root, 'var/lib/cni/networks/ambit') } },
            ...(options.chainedPlugins?.(n) ?? []),
          ],
        }),
      );
      const name = nodeNameOf(n);
      const kubeConfig = await cp.kubeconfigFor({ commonName: `system:node:${name}`, organizations: ['system:nodes'] });
      kubelets.push(
        await startKubelet({
          kubeConfig,
          nodeName: name,
          nodeIndex: n,
          topology: topo,
          nodeRoot: root,
          ...(options.nodeLocalPaths ? { nodeLocalPaths: options.nodeLocalPaths } : {}),
          ...(options.clusterDns ? { clusterDns: options.clusterDns } : {}),
          // The node's <root>/opt/cni/bin comes first (the kubelet adds it), then the built-in plugins.
          cniBinDir: [BIN_DIR, ...(options.cniBinDirs ?? [])],
          logDir: join(dir, `logs-n${n}`),
          restartBackoff: { baseMs: 500, maxMs: 5000 },
          ...(options.imageRegistry ? { imageRegistry: options.imageRegistry } : {}),
          ...(options.log ? { log: options.log } : {}),
        }),
      );
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  const topo = topology;
  return {
    topology: topo,
    kubelets,
    dir,
    nodeName: nodeNameOf,
    nodeRoot: (index) => {
      if (!Number.isInteger(index) || index < 1 || index > count) throw new RangeError(`nodeRoot: node index ${index} is not 1..${count}`);
      return nodeRootOf(dir, index);
    },
    kubeletFor: (name) => kubelets.find((k) => k.nodeName === name),
    copyLogsTo(out) {
      const files: string[] = [];
      for (let n = 1; n <= count; n++) {
        const src = join(dir, `logs-n${n}`, 'pods');
        if (!existsSync(src)) continue;
        const dst = join(out, `${nodeNameOf(n)}-pods`);
        cpSync(src, dst, { recursive: true });
        files.push(dst);
      }
      // kube-proxy, CoreDNS and the apiserver relays (services.ts) log here too.
      const services = join(dir, 'services');
      if (existsSync(services)) {
        const dst = join(out, 'cluster-services');
        cpSync(services, dst, { recursive: true, filter: (src) => !src.endsWith('.kubeconfig') });
        files.push(dst);
      }
      return files;
    },
    stop,
  };
}
