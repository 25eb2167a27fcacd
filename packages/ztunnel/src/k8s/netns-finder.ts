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
  /**
   * A path naming the namespace that holds one of `ips` (a named netns file preferred), or undefined. When several
   * namespaces hold the IP, the one whose processes' cgroup names the pod UID wins (Istio finds pods by cgroup); if
   * that does not single one out it throws rather than capture a stranger's namespace.
   */
  find(ips: readonly string[], podUid: string): Promise<string | undefined>;
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
  /** A few processes living in the namespace (for its addresses and cgroups). */
  pids: number[];
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
      else found.set(id, { id, paths: [path], pids: [] });
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
        const path = join(options.procDir, String(pid), 'ns', 'net');
        if (!c) found.set(id, { id, paths: [path], pids: [pid] });
        else if (c.pids.length < 8) { if (c.pids.length === 0) c.paths.push(path); c.pids.push(pid); }
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
    if (c.pids.length > 0) {
      const base = join(options.procDir, String(c.pids[0]), 'net');
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

  /** Whether a process of the namespace sits in a cgroup named after the pod (kubepods-...-pod<uid>.slice). */
  async function cgroupNamesPod(c: Candidate, podUid: string): Promise<boolean> {
    const forms = [podUid, podUid.replace(/-/g, '_')];
    for (const pid of c.pids) {
      const text = await readFile(join(options.procDir, String(pid), 'cgroup'), 'utf8').catch(() => '');
      if (forms.some((f) => text.includes(f))) return true;
    }
    return false;
  }

  return {
    async find(ips, podUid) {
      const wanted = new Set(ips.map((ip) => canonicalizeIp(ip) ?? ip));
      if (wanted.size === 0) return undefined;
      const holds = (addrs: readonly string[]) => addrs.some((a) => wanted.has(a));
      const candidates = [...(await inventory()).values()];
      const readNow = new Map<string, string[]>();
      const read = async (c: Candidate): Promise<string[]> => {
        const addrs = await addressesOf(c);
        cache.set(c.id, addrs);
        readNow.set(c.id, addrs);
        return addrs;
      };
      let matches: Candidate[] = [];
      for (const c of candidates) if (holds(cache.get(c.id) ?? await read(c))) matches.push(c);
      // A cached hit is confirmed with a fresh read (an inode can be reused by a new namespace).
      const confirmed: Candidate[] = [];
      for (const c of matches) if (holds(readNow.get(c.id) ?? await read(c))) confirmed.push(c);
      matches = confirmed;
      if (matches.length === 0) {
        // Addresses can change (a namespace first seen while its sandbox was being wired): read the rest again. A
        // miss is retried with backoff by the caller, which bounds this cost.
        for (const c of candidates) if (!readNow.has(c.id) && holds(await read(c))) matches.push(c);
      }
      if (matches.length === 0) return undefined;
      let chosen = matches;
      if (matches.length > 1) {
        const named = await Promise.all(matches.map((c) => cgroupNamesPod(c, podUid)));
        chosen = matches.filter((_, i) => named[i]);
      }
      if (chosen.length !== 1) {
        throw new Error(`${matches.length} network namespaces hold ${ips.join(', ')} (${matches.map((c) => c.paths[0]).join(', ')}) and `
          + `${chosen.length === 0 ? 'no process cgroup names' : 'several name'} pod uid ${podUid}; not capturing a namespace that may not be the pod's`);
      }
      log.debug({ ips, netns: chosen[0]!.paths[0], candidates: candidates.length, ambiguous: matches.length > 1 }, 'found the network namespace of a pod');
      return chosen[0]!.paths[0];
    },
  };
}
