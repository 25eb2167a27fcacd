// xDS resource names and aliases as Istio forms them (spec §3.2).
import { ipStringify } from './ip.js';

/** `<network>/<ip>`, or `<network>/<ip>/<len>` for a CIDR. The network may be empty ("/10.0.0.1"). */
export function formatNetworkAlias(network: string, address: Uint8Array | string, prefixLength?: number): string {
  const ip = typeof address === 'string' ? address : ipStringify(address);
  const full = ip.includes(':') ? 128 : 32;
  return prefixLength !== undefined && prefixLength !== full ? `${network}/${ip}/${prefixLength}` : `${network}/${ip}`;
}
