// Start-up check that the agent holds the capabilities the addon and the redirection rules need, so it can exit
// with one clear message instead of failing on the first pod.
import { readFileSync } from 'node:fs';
import { AmbitError } from '@ambit/api';

/** Capability numbers from linux/capability.h. */
export const CAPABILITIES = Object.freeze({
  CAP_NET_ADMIN: 12, // SO_MARK, IP_TRANSPARENT, iptables, ip rule/route
  CAP_SYS_ADMIN: 21, // setns() into a pod's network namespace
} as const);

export type CapabilityName = keyof typeof CAPABILITIES;

export interface PrivilegeReport {
  ok: boolean;
  /** Effective capabilities we need but lack, e.g. ['CAP_SYS_ADMIN']. */
  missing: CapabilityName[];
  /** Empty when ok. */
  message: string;
}

export class PrivilegeError extends AmbitError {
  readonly missing: CapabilityName[];
  constructor(message: string, missing: CapabilityName[]) {
    super('AMB_ERR_PRIVILEGES', message);
    this.missing = missing;
  }
}

/** Parses the CapEff line of /proc/<pid>/status into a bit set. */
export function parseEffectiveCapabilities(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  if (!m) throw new Error('no CapEff line in /proc/self/status');
  return BigInt(`0x${m[1]}`);
}

/** Which of the needed capabilities the effective set lacks, with a message naming them and why they are needed. */
export function evaluatePrivileges(effective: bigint): PrivilegeReport {
  const missing = (Object.keys(CAPABILITIES) as CapabilityName[])
    .filter((name) => (effective & (1n << BigInt(CAPABILITIES[name]))) === 0n);
  const why: Record<CapabilityName, string> = {
    CAP_NET_ADMIN: 'CAP_NET_ADMIN (socket marks, IP_TRANSPARENT, iptables in pod namespaces)',
    CAP_SYS_ADMIN: 'CAP_SYS_ADMIN (setns into pod network namespaces)',
  };
  const message = missing.length === 0 ? ''
    : `the node agent lacks ${missing.map((c) => why[c]).join(' and ')}; run it as root or grant the capabilities`;
  return { ok: missing.length === 0, missing, message };
}

/** Reads /proc/self/status and reports missing capabilities; never throws for a missing capability. */
export function checkPrivileges(statusPath = '/proc/self/status'): PrivilegeReport {
  return evaluatePrivileges(parseEffectiveCapabilities(readFileSync(statusPath, 'utf8')));
}

/** Throws PrivilegeError naming the missing capabilities; the agent calls this at start-up and exits non-zero. */
export function assertPrivileges(statusPath?: string): void {
  const report = checkPrivileges(statusPath);
  if (!report.ok) throw new PrivilegeError(report.message, report.missing);
}
