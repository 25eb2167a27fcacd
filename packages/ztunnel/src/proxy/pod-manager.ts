import type { Logger } from 'pino';
import { DEFAULT_SERVICE_ACCOUNT, formatSpiffeId } from '@ambit/api';
import { applyPodRedirection, checkPodRedirection, removePodRedirection, repairPodRedirection, runInNetns } from '@ambit/netns';
import type { CaptureOutcome, PodSpec } from '../inpod/enrollment-contract.js';
import type { PodCapturer } from '../inpod/pod-spec.js';
import { canonicalizeIp } from '../state/ip.js';
import type { ProxyInputs, ProxyPod } from './context.js';
import { PodProxy } from './pod-proxy.js';

export interface PodManagerOptions {
  inputs: ProxyInputs;
  /** Whether a pod is to be captured; Kubernetes mode checks the namespace and pod labels. Default: capture. */
  shouldCapture?: (pod: PodSpec) => { capture: true } | { capture: false; reason: string };
  certificateTimeoutMs?: number;
  /** How often each captured pod's rules are checked for drift and repaired; 0 disables. Default 30 s. */
  driftCheckIntervalMs?: number;
}

/**
 * Captures pods: installs the in-pod redirection rules and starts the pod's proxy; releases them on CNI DEL.
 * Agent shutdown only stops accepting: the rules stay, so a new agent process serves the pod without a gap.
 */
export class PodManager implements PodCapturer {
  private readonly proxies = new Map<string, PodProxy>();
  private readonly log: Logger;
  private unsubscribe: () => void;
  private driftTimer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(private readonly options: PodManagerOptions) {
    this.log = options.inputs.logger.child({ component: 'pod-manager' });
    const { inputs } = options;
    inputs.secrets.onRotate = (identity, creds) => {
      for (const p of this.proxies.values()) if (p.pod.identity === identity) p.rotate(creds);
    };
    // A policy or workload change applies to live connections too (spec §6.1): re-check and close denied ones.
    this.unsubscribe = inputs.state.onChange((c) => {
      if (c.policies.length === 0 && c.workloads.length === 0) return;
      const closed = inputs.connections.recheck();
      if (closed > 0) this.log.info({ closed, version: c.version }, 'closed connections denied by the new policy');
    });
    const every = options.driftCheckIntervalMs ?? 30_000;
    if (every > 0) {
      this.driftTimer = setInterval(() => { void this.repairDrift(); }, every);
      this.driftTimer.unref();
    }
  }

  /**
   * Someone (an init container, an operator, another tool) may have changed a pod's redirection rules: a pod
   * whose rules drifted would silently bypass the mesh. Each check compares the live rules with the desired set
   * and restores them, logging what was wrong.
   */
  async repairDrift(): Promise<number> {
    if (this.checking) return 0;
    this.checking = true;
    let repaired = 0;
    try {
      const { config } = this.options.inputs;
      for (const p of this.proxies.values()) {
        const target = { netns: p.pod.netns, dnsCapture: config.dnsCapture, ...(config.probeSnatIpv4 ? { probeSnatIpv4: config.probeSnatIpv4 } : {}) };
        try {
          const check = await checkPodRedirection(target);
          if (check.inSync) continue;
          await repairPodRedirection(target);
          repaired++;
          this.log.warn({ pod: `${p.pod.namespace}/${p.pod.name}`, drift: check.summary }, 'redirection rules drifted; repaired');
        } catch (err) {
          this.log.debug({ pod: `${p.pod.namespace}/${p.pod.name}`, err: (err as Error).message }, 'drift check failed (pod going away?)');
        }
      }
    } finally {
      this.checking = false;
    }
    return repaired;
  }

  isCaptured(uid: string): boolean {
    return this.proxies.get(uid)?.isAccepting === true;
  }

  list(): ProxyPod[] {
    return [...this.proxies.values()].map((p) => p.pod);
  }

  async capture(spec: PodSpec): Promise<CaptureOutcome> {
    const decision = this.options.shouldCapture?.(spec) ?? { capture: true as const };
    if (!decision.capture) return { captured: false, reason: decision.reason };
    if (this.isCaptured(spec.uid)) return { captured: true };
    const { inputs } = this.options;
    const { config, state } = inputs;
    const ips = spec.ips?.length ? spec.ips.map((ip) => canonicalizeIp(ip) ?? ip) : await discoverPodIps(spec.netns);
    if (ips.length === 0) throw new Error(`pod ${spec.namespace}/${spec.name} has no IPv4 or IPv6 address in ${spec.netns}`);
    const known = ips.map((ip) => state.workloadByAddress(config.network, ip)).find(Boolean);
    const serviceAccount = spec.serviceAccount || known?.serviceAccount || DEFAULT_SERVICE_ACCOUNT;
    const pod: ProxyPod = {
      uid: spec.uid, name: spec.name, namespace: spec.namespace, serviceAccount,
      identity: formatSpiffeId({ trustDomain: config.trustDomain, namespace: spec.namespace, serviceAccount }),
      netns: spec.netns, ips,
    };
    await applyPodRedirection({ netns: spec.netns, dnsCapture: config.dnsCapture, ...(config.probeSnatIpv4 ? { probeSnatIpv4: config.probeSnatIpv4 } : {}) });
    await enableRequestMigration(spec.netns, this.log);
    inputs.secrets.retain(pod.identity);
    let proxy: PodProxy;
    try {
      proxy = await PodProxy.start(pod, inputs, { certificateTimeoutMs: this.options.certificateTimeoutMs ?? 10_000 });
    } catch (err) {
      inputs.secrets.release(pod.identity);
      throw err;
    }
    this.proxies.set(spec.uid, proxy);
    this.log.info({ pod: `${pod.namespace}/${pod.name}`, uid: pod.uid, ips, identity: pod.identity, netns: pod.netns }, 'pod captured');
    return { captured: true };
  }

  async release(uid: string): Promise<void> {
    const proxy = this.proxies.get(uid);
    if (!proxy) return;
    this.proxies.delete(uid);
    proxy.destroy('pod released');
    this.options.inputs.secrets.release(proxy.pod.identity);
    // The netns may already be gone when the pod is deleted: nothing left to clean then.
    await removePodRedirection({ netns: proxy.pod.netns }).catch((err: Error) => this.log.debug({ uid, err: err.message }, 'rules not removed (netns gone?)'));
    this.log.info({ pod: `${proxy.pod.namespace}/${proxy.pod.name}`, uid }, 'pod released');
  }

  /** Shutdown: stop accepting on every pod (another agent takes new connections); rules stay installed. */
  stopAccepting(): void {
    for (const p of this.proxies.values()) p.stopAccepting();
  }

  destroyAll(reason: string): void {
    this.unsubscribe();
    clearInterval(this.driftTimer);
    for (const p of this.proxies.values()) p.destroy(reason);
  }
}

async function discoverPodIps(netns: string): Promise<string[]> {
  const { stdout } = await runInNetns(netns, ['ip', '-j', 'addr', 'show', 'scope', 'global']);
  const links = JSON.parse(stdout) as Array<{ addr_info?: Array<{ local?: string }> }>;
  return links.flatMap((l) => l.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a).map((ip) => canonicalizeIp(ip) ?? ip);
}

/**
 * With SO_REUSEPORT, connections still in a closing listener's accept queue would be reset when it closes; since
 * Linux 5.14 `tcp_migrate_req` moves them to another listener of the group, so an agent handover loses none.
 */
async function enableRequestMigration(netns: string, log: Logger): Promise<void> {
  try {
    await runInNetns(netns, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/tcp_migrate_req']);
  } catch (err) {
    log.debug({ netns, err: (err as Error).message }, 'tcp_migrate_req not available');
  }
}
