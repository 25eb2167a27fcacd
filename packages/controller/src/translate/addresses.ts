// IP text -> the bytes the workload API carries, with errors that name the object and field.
import { isIP } from 'node:net';
import type { KubeObject, NetworkAddress } from '@ambit/api';
import { ipToBytes } from '../xds/ip.js';
import { TranslationError } from './context.js';

/** Bytes of an IP address, or undefined when `text` is not one (no zone ids, no brackets). */
export function parseIp(text: string): Buffer | undefined {
  return isIP(text) ? ipToBytes(text) : undefined;
}

export function requireIp(obj: KubeObject, field: string, text: unknown): Buffer {
  const b = typeof text === 'string' ? parseIp(text) : undefined;
  if (!b) throw new TranslationError(obj, field, `${JSON.stringify(text)} is not an IP address`);
  return b;
}

/** `a.b.c.d`, `a.b.c.d/len`, IPv6 likewise; the prefix length defaults to the full length. */
export function parseCidr(text: string): { address: Buffer; length: number } | undefined {
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const address = parseIp(ip);
  if (!address) return undefined;
  const full = address.length * 8;
  if (slash < 0) return { address, length: full };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const length = Number(lenText);
  return length <= full ? { address, length } : undefined;
}

export function networkAddress(network: string, address: Buffer): NetworkAddress {
  return { network, address };
}
