// Host-local style IPAM for ambit-bridge: one directory per network and node, one file per allocated address
// (named after the address, holding the container id and interface), as the reference host-local plugin does.
// Allocation is `open(O_CREAT|O_EXCL)` of the address's file, which the kernel makes atomic, so two plugin
// processes started at once for two pods can never hand out the same address and no lock file is needed.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CNI_ERROR, CniError } from './spec.js';

export interface Ipv4Range {
  /** e.g. 10.0.1.0/24 */
  subnet: string;
  /** Gateway, never handed out; default the subnet's first address. */
  gateway: string;
  /** First and last address handed out (inclusive). */
  rangeStart: string;
  rangeEnd: string;
  prefixLength: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new CniError(CNI_ERROR.invalidNetworkConfig, `invalid IPv4 address ${JSON.stringify(ip)}`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Builds the usable range of a subnet: network+2 .. broadcast-1 by default (network+1 is the gateway). */
export function parseRange(options: { subnet: string; gateway?: string; rangeStart?: string; rangeEnd?: string }): Ipv4Range {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(options.subnet);
  if (!m || Number(m[2]) > 30) throw new CniError(CNI_ERROR.invalidNetworkConfig, `ipam.subnet ${JSON.stringify(options.subnet)} must be an IPv4 CIDR up to /30`);
  const prefixLength = Number(m[2]);
  const size = 2 ** (32 - prefixLength);
  const network = Math.floor(ipToInt(m[1]!) / size) * size;
  const inSubnet = (ip: number) => ip > network && ip < network + size - 1;
  const gateway = options.gateway ? ipToInt(options.gateway) : network + 1;
  const start = options.rangeStart ? ipToInt(options.rangeStart) : network + 2;
  const end = options.rangeEnd ? ipToInt(options.rangeEnd) : network + size - 2;
  for (const [k, v] of [['gateway', gateway], ['rangeStart', start], ['rangeEnd', end]] as const) {
    if (!inSubnet(v)) throw new CniError(CNI_ERROR.invalidNetworkConfig, `ipam.${k} ${intToIp(v)} is not a host address of ${options.subnet}`);
  }
  if (start > end) throw new CniError(CNI_ERROR.invalidNetworkConfig, `ipam.rangeStart is after ipam.rangeEnd`);
  return { subnet: `${intToIp(network)}/${prefixLength}`, gateway: intToIp(gateway), rangeStart: intToIp(start), rangeEnd: intToIp(end), prefixLength };
}

export interface Allocation {
  ip: string;
  containerId: string;
  ifName: string;
}

export interface HostLocalStore {
  readonly dir: string;
  /** Allocates `requested` (CNI_ARGS IP=, checked to be free and in range) or the lowest free address. */
  allocate(containerId: string, ifName: string, requested?: string): Allocation;
  /** Releases every address held by the container; returns them. Idempotent (DEL may be repeated). */
  release(containerId: string, ifName?: string): string[];
  /** Addresses held by the container. */
  lookup(containerId: string, ifName?: string): string[];
  list(): Allocation[];
}

/** Opens the store for one network on one node; `dataDir` is created if missing. */
export function openHostLocalStore(dataDir: string, network: string, range: Ipv4Range): HostLocalStore {
  const dir = join(dataDir, network);
  mkdirSync(dir, { recursive: true });
  const read = (ip: string): Allocation | undefined => {
    try {
      const [containerId = '', ifName = ''] = readFileSync(join(dir, ip), 'utf8').split('\n');
      return { ip, containerId: containerId.trim(), ifName: ifName.trim() };
    } catch {
      return undefined;
    }
  };
  const list = (): Allocation[] =>
    readdirSync(dir)
      .filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))
      .map(read)
      .filter((a): a is Allocation => a !== undefined);
  const held = (containerId: string, ifName?: string) => list().filter((a) => a.containerId === containerId && (ifName === undefined || a.ifName === ifName));
  const tryTake = (ip: string, containerId: string, ifName: string): boolean => {
    try {
      writeFileSync(join(dir, ip), `${containerId}\n${ifName}\n`, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new CniError(CNI_ERROR.ioFailure, `ipam: cannot write ${join(dir, ip)}: ${(err as Error).message}`);
    }
  };
  return {
    dir,
    allocate(containerId, ifName, requested) {
      // A repeated ADD for the same attachment gets the same address back instead of a second one.
      const existing = held(containerId, ifName)[0];
      if (existing && (requested === undefined || existing.ip === requested)) return existing;
      const lo = ipToInt(range.rangeStart);
      const hi = ipToInt(range.rangeEnd);
      if (requested !== undefined) {
        const r = ipToInt(requested);
        if (r < lo || r > hi) throw new CniError(CNI_ERROR.invalidEnvironment, `ipam: requested IP ${requested} is outside ${range.rangeStart}-${range.rangeEnd}`);
        if (!tryTake(requested, containerId, ifName)) {
          const owner = read(requested);
          throw new CniError(CNI_ERROR.invalidEnvironment, `ipam: requested IP ${requested} is already allocated to container ${owner?.containerId ?? '?'}`);
        }
        return { ip: requested, containerId, ifName };
      }
      for (let n = lo; n <= hi; n++) {
        const ip = intToIp(n);
        if (tryTake(ip, containerId, ifName)) return { ip, containerId, ifName };
      }
      throw new CniError(CNI_ERROR.rangeFull, `ipam: no free address in ${range.rangeStart}-${range.rangeEnd} (${dir} holds ${list().length})`);
    },
    release(containerId, ifName) {
      const mine = held(containerId, ifName);
      for (const a of mine) rmSync(join(dir, a.ip), { force: true });
      return mine.map((a) => a.ip);
    },
    lookup(containerId, ifName) {
      return held(containerId, ifName).map((a) => a.ip);
    },
    list,
  };
}
