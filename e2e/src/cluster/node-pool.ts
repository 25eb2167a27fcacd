// The nodes of a cluster-in-a-box: the netns topology (one node netns per Kubernetes node), a CNI conflist per
// node (ambit-bridge, as kubelet/kubelet.e2e.test.ts writes it) and one of our kubelets per node, acting with node
// credentials (CN=system:node:<name>, O=system:nodes). stop() stops the kubelets (pods torn down: processes, CNI
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
  cniBinDirs?: readonly string[];
  log?: (line: string) => void;
}

export interface NodePool {
  readonly topology: Topology;
  readonly kubelets: readonly Kubelet[];
  /** Holds CNI confs, IPAM state and per-node pod logs. */
  readonly dir: string;
  nodeName(index: number): string;
  kubeletFor(nodeName: string): Kubelet | undefined;
  /** Copies every node's pod logs (one directory per node) and the cluster services' logs into `dir`. */
  copyLogsTo(dir: string): string[];
  stop(): Promise<void>;
}

export const nodeNameOf = (index: number): string => `node-${index}`;

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
      const confDir = join(dir, `cni-n${n}`);
      mkdirSync(confDir, { recursive: true });
      writeFileSync(
        join(confDir, '10-ambit.conflist'),
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'ambit',
          plugins: [
            { type: 'ambit-bridge', bridge: node.bridge, hostNetns: node.netns, ipam: { subnet: node.podCidr, gateway: node.bridgeIp, dataDir: join(dir, 'ipam', `n${n}`) } },
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
          cniConfDir: confDir,
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
