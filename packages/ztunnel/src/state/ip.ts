import { isIP } from 'node:net';

/**
 * Canonical text form of an IP, so that one address has one key in the indexes whatever way a peer or a config
 * file spelled it: IPv6 lower case with the longest zero run compressed (RFC 5952), IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`, what a dual-stack socket reports for an IPv4 peer) unwrapped to IPv4.
 * Returns undefined when the text is not an IP address (zone ids such as `fe80::1%eth0` are refused too).
 */
export function canonicalizeIp(text: string): string | undefined {
  const family = isIP(text);
  if (family === 4) return text.split('.').map((o) => String(Number(o))).join('.');
  if (family !== 6 || text.includes('%')) return undefined;
  const groups = expandIpv6(text.toLowerCase());
  if (!groups) return undefined;
  // ::ffff:a.b.c.d
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const hi = groups[6]!;
    const lo = groups[7]!;
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return formatIpv6(groups);
}

/** 4 or 6 for a valid IP, else 0. */
export function ipFamilyOf(text: string): 0 | 4 | 6 {
  return isIP(text) as 0 | 4 | 6;
}

function expandIpv6(text: string): number[] | undefined {
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const o = g.split('.').map(Number);
        out.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  if (dbl < 0) return h.length === 8 ? h : undefined;
  const zeros = 8 - h.length - t.length;
  if (zeros < 0) return undefined;
  return [...h, ...new Array<number>(zeros).fill(0), ...t];
}

function formatIpv6(groups: number[]): string {
  // Longest run of >= 2 zero groups, first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

/**
 * Parses `ip/len` (a bare IP means a host route). Host bits may be set, as ztunnel's IpNet allows; matching uses
 * the network part. Returns an error message instead of throwing so validators can name the field.
 */
export function parseCidr(text: string): Cidr | string {
  if (typeof text !== 'string') return 'is not a string';
  const slash = text.indexOf('/');
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const address = canonicalizeIp(ipText);
  if (!address) return 'is not an IP address or CIDR';
  const family = ipFamilyOf(address) as 4 | 6;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) return `has an invalid prefix length (0..${max} for IPv${family})`;
  return { address, prefix: Number(lenText), family };
}

/** `<network>/<ip>`: the index key of an address (the xDS alias form). */
export function keyOfNetworkAddress(network: string, ip: string): string {
  return `${network}/${ip}`;
}
