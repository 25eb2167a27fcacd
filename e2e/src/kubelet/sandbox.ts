// A pod sandbox without a container runtime: a named network namespace `<prefix>-n<N>p<P>` wired by the CNI chain.
// The kubelet picks P (the lowest index with no netns of that name) and asks the primary plugin for 10.0.N.P via
// CNI_ARGS IP=, so names, host veth (vp<P>) and address agree as in the static topology; the plugin's IPAM still
// owns the address and refuses a duplicate. Teardown is CNI DEL (all plugins, reverse order), then whatever still
// runs in the netns is killed, then the netns is deleted.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execInNetns, runCommand } from '../process.js';
import { listNetns, netnsInode, pidsInNetns, signalPid } from '../netns.js';
import { MAX_POD_INDEX, MIN_POD_INDEX, netnsPath, podIp, podNetnsName } from '../naming.js';
import { pollSync } from '../wait.js';
import { resultIps, type CniResult, type NetworkConfigList } from '../cni/spec.js';
import type { CniAttachment, CniRuntime } from './cni-runtime.js';

export const POD_IFNAME = 'eth0';

export interface SandboxPodRef {
  uid: string;
  name: string;
  namespace: string;
}

export interface Sandbox {
  /** Sandbox id, passed as CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID. */
  id: string;
  netns: string;
  nsPath: string;
  inode: number;
  podIndex: number;
  podIP: string;
  result: CniResult;
  network: NetworkConfigList;
  attachment: CniAttachment;
}

export interface SandboxManagerOptions {
  prefix: string;
  nodeIndex: number;
  cni: CniRuntime;
  /** Leave IPv6 on in pod namespaces; default off, like the topology (quiet captures). */
  ipv6?: boolean;
}

export interface SandboxManager {
  create(pod: SandboxPodRef): Promise<Sandbox>;
  destroy(sandbox: Sandbox): Promise<void>;
  /** Synchronous last-resort teardown (process exit): kill, delete netns; no CNI. */
  destroySync(sandbox: Sandbox): void;
}

export function createSandboxManager(options: SandboxManagerOptions): SandboxManager {
  const reserved = new Set<number>();

  const pickIndex = (): number => {
    const existing = new Set(listNetns());
    for (let p = MIN_POD_INDEX; p <= MAX_POD_INDEX; p++) {
      if (!reserved.has(p) && !existing.has(podNetnsName(options.prefix, options.nodeIndex, p))) return p;
    }
    throw new Error(`node ${options.nodeIndex} has no free pod index (all of ${MIN_POD_INDEX}..${MAX_POD_INDEX} in use)`);
  };

  const killAll = (inode: number) => {
    pollSync(
      () => {
        const pids = pidsInNetns(new Set([inode]));
        for (const pid of pids) signalPid(pid, 'SIGKILL');
        return pids.length === 0;
      },
      { timeoutMs: 5000 },
    );
  };

  return {
    async create(pod) {
      const p = pickIndex();
      reserved.add(p);
      const netns = podNetnsName(options.prefix, options.nodeIndex, p);
      const id = `ambit-${pod.uid.slice(0, 8)}-${randomBytes(4).toString('hex')}`;
      const nsPath = netnsPath(netns);
      try {
        const add = await runCommand(['ip', 'netns', 'add', netns]);
        if (add.code !== 0) throw new Error(`ip netns add ${netns}: ${add.stderr.trim()}`);
        const inode = netnsInode(netns);
        if (inode === undefined) throw new Error(`netns ${netns} vanished right after creation`);
        try {
          if (!options.ipv6) {
            await execInNetns(netns, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { check: true });
          }
          const attachment: CniAttachment = {
            containerId: id,
            netnsPath: nsPath,
            ifName: POD_IFNAME,
            args: {
              K8S_POD_NAMESPACE: pod.namespace,
              K8S_POD_NAME: pod.name,
              K8S_POD_INFRA_CONTAINER_ID: id,
              K8S_POD_UID: pod.uid,
              IP: podIp(options.nodeIndex, p),
            },
          };
          const { result, network } = await options.cni.add(attachment);
          const podIP = resultIps(result)[0];
          if (!podIP) throw new Error(`CNI ADD for ${pod.namespace}/${pod.name} returned no IP`);
          return { id, netns, nsPath, inode, podIndex: p, podIP, result, network, attachment };
        } catch (err) {
          killAll(inode);
          await runCommand(['ip', 'netns', 'del', netns]);
          throw err;
        }
      } finally {
        // Once the netns exists (or failed), its name is what keeps the index taken.
        reserved.delete(p);
      }
    },
    async destroy(sandbox) {
      let cniError: unknown;
      try {
        await options.cni.del(sandbox.attachment, sandbox.network, sandbox.result);
      } catch (err) {
        cniError = err;
      }
      killAll(sandbox.inode);
      const r = await runCommand(['ip', 'netns', 'del', sandbox.netns]);
      if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new Error(`ip netns del ${sandbox.netns}: ${r.stderr.trim()}`);
      if (cniError) throw cniError;
    },
    destroySync(sandbox) {
      killAll(sandbox.inode);
      try {
        runCommandSync(['ip', 'netns', 'del', sandbox.netns]);
      } catch {
        // best effort at exit; scripts/cleanup-netns.sh covers the rest
      }
    },
  };
}

function runCommandSync(argv: readonly string[]): void {
  execFileSync(argv[0]!, argv.slice(1), { stdio: 'pipe', timeout: 10_000 });
}
