/**
 * The parts of the CNI specification (containernetworking/cni SPEC.md, 0.3.0 to 1.1.0) that a chained plugin
 * needs: versions, well-known error codes, the error object, and converting a result between versions.
 * It imports only @ambit/api/cni, which imports nothing: the plugin runs once per pod start and must start fast.
 */
import { CNI_STANDARD_ERRORS, CniError, compareVersions } from '@ambit/api/cni';

export { CniError, compareVersions } from '@ambit/api/cni';

export const SUPPORTED_CNI_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_CNI_VERSIONS)[number];
export const LATEST_CNI_VERSION: CniVersion = '1.1.0';

/** The standard codes plus the plugin's own (100 and up). */
export const CNI_ERROR = Object.freeze({
  ...CNI_STANDARD_ERRORS,
  /** Ambit: the agent answered that it could not capture the pod. */
  captureFailed: 100,
  /** Ambit: CHECK found the pod not captured (any more). */
  notCaptured: 101,
} as const);

export interface CniErrorResult {
  cniVersion: string;
  code: number;
  msg: string;
  details: string;
}

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_CNI_VERSIONS as readonly string[]).includes(v);
}

/** A result object (prevResult) as it travels: we keep every key we do not need to touch. */
export type CniResult = Record<string, unknown> & { cniVersion?: string; ips?: unknown[] };

/**
 * Returns `result` in version `to`, changing only what differs between versions: 0.3.x/0.4.0 IP configs carry
 * `version: "4"|"6"`, which 1.0.0 removed. Everything else (interfaces, routes, dns, unknown keys) passes through,
 * because a chained plugin that does not change the network must hand on the previous result unchanged.
 */
export function convertResult(result: CniResult, to: CniVersion): CniResult {
  if (result.ip4 !== undefined || result.ip6 !== undefined) {
    throw new CniError(CNI_ERROR.incompatibleVersion, `prevResult is in the pre-0.3.0 format (ip4/ip6), which this plugin cannot convert to ${to}`);
  }
  const out: CniResult = { ...result, cniVersion: to };
  if (Array.isArray(result.ips)) {
    const legacy = compareVersions(to, '1.0.0') < 0;
    out.ips = result.ips.map((entry) => {
      if (typeof entry !== 'object' || entry === null) return entry;
      const ip = { ...(entry as Record<string, unknown>) };
      if (legacy) {
        if (ip.version === undefined && typeof ip.address === 'string') ip.version = ip.address.includes(':') ? '6' : '4';
      } else {
        delete ip.version;
      }
      return ip;
    });
  }
  return out;
}

/** Pod IPs from a result's `ips[].address` (CIDR notation, e.g. 10.0.1.5/24). */
export function podIpsOf(result: CniResult): string[] {
  if (!Array.isArray(result.ips)) return [];
  const out: string[] = [];
  for (const entry of result.ips) {
    const address = (entry as { address?: unknown } | null)?.address;
    if (typeof address === 'string' && address.length > 0) out.push(address.split('/')[0]!);
  }
  return out;
}
