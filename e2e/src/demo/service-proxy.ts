// A minimal kube-proxy for the embedded demo: without Kubernetes nothing turns a Service VIP into an endpoint, so
// plain (not yet enrolled) pods could not reach each other by Service. In each node netns, nat PREROUTING DNATs
// VIP:port to one endpoint picked with `statistic --mode random` (kube-proxy's iptables mode), and traffic DNATed
// back onto the node's own bridge is masqueraded, or the reply would go pod-to-pod around the node's conntrack.
// Enrolled pods never get here: their traffic is redirected to the agent inside the pod netns first.
import { runCommand } from '../process.js';

export interface ServiceRule {
  /** `namespace/name`, for the rule comments. */
  name: string;
  vip: string;
  port: number;
  endpoints: { ip: string; port: number }[];
}

export const SERVICE_CHAIN = 'AMBIT-DEMO-SERVICES';

/** iptables-restore input (with --noflush) that replaces the contents of our chain in the nat table. */
export function buildServiceRules(services: readonly ServiceRule[]): string {
  const lines = ['*nat', `:${SERVICE_CHAIN} - [0:0]`, `-F ${SERVICE_CHAIN}`];
  for (const s of services) {
    const n = s.endpoints.length;
    const match = `-A ${SERVICE_CHAIN} -d ${s.vip}/32 -p tcp --dport ${s.port} -m comment --comment "${s.name}:${s.port}"`;
    // No endpoint: refuse at once, as kube-proxy does, rather than letting the client time out.
    if (n === 0) lines.push(`${match} -j REJECT --reject-with tcp-reset`);
    s.endpoints.forEach((ep, i) => {
      // kube-proxy's spreading: endpoint i of n is taken with probability 1/(n-i) among what is left.
      const pick = i < n - 1 ? ` -m statistic --mode random --probability ${(1 / (n - i)).toFixed(5)}` : '';
      lines.push(`${match}${pick} -j DNAT --to-destination ${ep.ip}:${ep.port}`);
    });
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Installs (or replaces) the service rules in a node netns whose pods hang off `bridge` with addresses in `podCidr`. */
export async function applyServiceRules(netns: string, services: readonly ServiceRule[], bridge: string, podCidr: string): Promise<void> {
  const inNs = (argv: string[]): string[] => ['ip', 'netns', 'exec', netns, ...argv];
  const exists = (await runCommand(inNs(['iptables', '-t', 'nat', '-S', SERVICE_CHAIN]))).code === 0;
  await runCommand(inNs(['iptables-restore', '--noflush']), { input: buildServiceRules(services), check: true });
  if (exists) return;
  await runCommand(inNs(['iptables', '-t', 'nat', '-A', 'PREROUTING', '-j', SERVICE_CHAIN]), { check: true });
  await runCommand(inNs(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', bridge, '-s', podCidr, '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'MASQUERADE']), { check: true });
}
