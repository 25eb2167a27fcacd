// Finds the network namespace of a pod that was already running before it became ambient (no CNI ADD told us its
// netns). As Istio's node agent does, we look for the namespace that holds the pod's IP: every namespace on the
// node is reachable through a named netns file (/var/run/netns/*) or a process (/proc/<pid>/ns/net); they are
// deduplicated by inode, and each namespace's addresses are read once and cached by inode.
//
// Addresses are read without entering the namespace where a process lives in it: /proc/<pid>/net/fib_trie (IPv4
// local addresses) and /proc/<pid>/net/if_inet6 show that process's namespace, so a scan costs file reads, not one
// nsenter+ip process per namespace (tens of milliseconds each). A namespace with no process (only a bind mount)
// falls back to `ip -j addr` through nsenter. A cached answer is read again before it is returned, because an inode
// can be reused by a new namespace once the old one is gone.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { runInNetns } from '@ambit/netns';
import { canonicalizeIp } from '../state/ip.js';
import { netnsIdentity } from '../inpod/pod-registry.js';

export interface NetnsFinder {
  /** A path naming the namespace that holds one of `ips` (a named netns file preferred), or undefined. */
  find(ips: readonly string[]): Promise<string | undefined>;
}

export interface NetnsFinderOptions {
  /** The host's /proc (a DaemonSet mounts it at /host/proc). */
  procDir: string;
  /** The host's named network namespaces (/var/run/netns; a DaemonSet mounts it at /host/var/run/netns). */
  netnsDir: string;
  logger: Logger;
  /** Reads the addresses of a namespace that has no process; default: `ip -j addr show` through nsenter. */
  readAddressesByPath?: (path: string) => Promise<string[]>;
}

interface Candidate {
  id: string;
  /** Named netns files first, then /proc/<pid>/ns/net. */
  paths: string[];
  pid: number | undefined;
}

/** Local IPv4 addresses from /proc/<pid>/net/fib_trie: each leaf `|-- a.b.c.d` followed by `/32 host LOCAL`. */
export function parseFibTrieLocal(text: string): string[] {
  const out = new Set<string>();
  let leaf: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
    if (m) { leaf = m[1]; continue; }
    if (line.startsWith('+--') || line.endsWith(':')) { leaf = undefined; continue; }
    if (leaf && /^\/32 host LOCAL$/.test(line)) out.add(leaf);
  }
  return [...out];
}

/** IPv6 addresses from /proc/<pid>/net/if_inet6 (32 hex digits per address, then index, prefix, scope, flags, name). */
export function parseIfInet6(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const hex = line.trim().split(/\s+/)[0];
    if (!hex || !/^[0-9a-f]{32}$/i.test(hex)) continue;
    const ip = canonicalizeIp(hex.match(/.{4}/g)!.join(':'));
    if (ip) out.push(ip);
  }
  return out;
}

async function ipAddrInNetns(path: string): Promise<string[]> {
  const { stdout } = await runInNetns(path, ['ip', '-j', 'addr', 'show']);
  const links = JSON.parse(stdout) as Array<{ addr_info?: Array<{ local?: string }> }>;
  return links.flatMap((l) => l.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a).map((ip) => canonicalizeIp(ip) ?? ip);
}

const gone = (err: unknown): boolean => ['ENOENT', 'ESRCH', 'ENOTDIR', 'EACCES', 'EINVAL'].includes((err as NodeJS.ErrnoException).code ?? '');

export function createNetnsFinder(options: NetnsFinderOptions): NetnsFinder {
  const log = options.logger.child({ component: 'netns-finder' });
  const readByPath = options.readAddressesByPath ?? ipAddrInNetns;
  /** Addresses by netns id (`dev:ino`), for namespaces seen in the last scan only. */
  const cache = new Map<string, string[]>();
  let scanning: Promise<Map<string, Candidate>> | undefined;

  // A process may exit, or be out of our reach (EACCES), between readdir and stat: skip it.
  const idOf = (path: string): Promise<string | undefined> =>
    netnsIdentity(path).catch((err: unknown) => { if (gone(err)) return undefined; throw err; });

  async function scan(): Promise<Map<string, Candidate>> {
    const found = new Map<string, Candidate>();
    const named = await readdir(options.netnsDir).catch((err: unknown) => { if (gone(err)) return [] as string[]; throw err; });
    for (const name of named) {
      const path = join(options.netnsDir, name);
      const id = await idOf(path);
      if (!id) continue;
      const c = found.get(id);
      if (c) c.paths.push(path);
      else found.set(id, { id, paths: [path], pid: undefined });
    }
    const pids = (await readdir(options.procDir)).filter((e) => /^\d+$/.test(e)).map(Number);
    // Stat in small batches: hundreds of processes, one cheap syscall each.
    for (let i = 0; i < pids.length; i += 64) {
      const batch = pids.slice(i, i + 64);
      const ids = await Promise.all(batch.map((pid) => idOf(join(options.procDir, String(pid), 'ns', 'net'))));
      batch.forEach((pid, j) => {
        const id = ids[j];
        if (!id) return;
        const c = found.get(id);
        if (!c) found.set(id, { id, paths: [join(options.procDir, String(pid), 'ns', 'net')], pid });
        else if (c.pid === undefined) { c.pid = pid; c.paths.push(join(options.procDir, String(pid), 'ns', 'net')); }
      });
    }
    for (const id of cache.keys()) if (!found.has(id)) cache.delete(id);
    return found;
  }

  // Concurrent finds (many pods becoming ambient at once) share one scan of /proc.
  function inventory(): Promise<Map<string, Candidate>> {
    scanning ??= scan().finally(() => { scanning = undefined; });
    return scanning;
  }

  async function addressesOf(c: Candidate): Promise<string[]> {
    if (c.pid !== undefined) {
      const base = join(options.procDir, String(c.pid), 'net');
      try {
        const [v4, v6] = await Promise.all([
          readFile(join(base, 'fib_trie'), 'utf8'),
          readFile(join(base, 'if_inet6'), 'utf8').catch(() => ''), // no IPv6 in this kernel or namespace
        ]);
        return [...parseFibTrieLocal(v4), ...parseIfInet6(v6)];
      } catch (err) {
        if (!gone(err)) throw err;
        // The process exited since the scan; the namespace may live on through its named file.
        if (c.paths.length === 1) return [];
      }
    }
    try {
      return await readByPath(c.paths[0]!);
    } catch (err) {
      log.debug({ netns: c.paths[0], err: (err as Error).message }, 'cannot read the addresses of a network namespace');
      return [];
    }
  }

  return {
    async find(ips) {
      const wanted = new Set(ips.map((ip) => canonicalizeIp(ip) ?? ip));
      if (wanted.size === 0) return undefined;
      const holds = (addrs: readonly string[]) => addrs.some((a) => wanted.has(a));
      const candidates = await inventory();
      // Cached namespaces first: their check is free; a hit is confirmed with a fresh read below.
      for (const c of candidates.values()) {
        const cached = cache.get(c.id);
        if (!cached || !holds(cached)) continue;
        const fresh = await addressesOf(c);
        cache.set(c.id, fresh);
        if (holds(fresh)) return c.paths[0];
      }
      // Then namespaces not read before; last, on a miss, the cached ones again (addresses can change, e.g. a
      // namespace first seen while its sandbox was being wired). A miss is retried with backoff by the caller.
      const readNow = new Set<string>();
      for (const pass of ['new', 'refresh'] as const) {
        for (const c of candidates.values()) {
          if (readNow.has(c.id) || (pass === 'new' && cache.has(c.id))) continue;
          readNow.add(c.id);
          const addrs = await addressesOf(c);
          cache.set(c.id, addrs);
          if (holds(addrs)) {
            log.debug({ ips, netns: c.paths[0], candidates: candidates.size, pass }, 'found the network namespace of a pod');
            return c.paths[0];
          }
        }
      }
      return undefined;
    },
  };
}
