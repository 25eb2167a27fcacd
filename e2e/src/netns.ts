// Small synchronous facts about network namespaces and processes, read from /proc and /var/run/netns.
// Synchronous on purpose: teardown also runs from the process 'exit' handler, where nothing can be awaited.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { netnsPath } from './naming.js';

/** Inode of a named netns (the nsfs inode /var/run/netns/NAME is bind-mounted from), or undefined if absent. */
export function netnsInode(name: string): number | undefined {
  try {
    return statSync(netnsPath(name)).ino;
  } catch {
    return undefined;
  }
}

/** Inode of the netns a process is in; undefined if the process is gone or a zombie (it has left its netns). */
export function processNetnsInode(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}/ns/net`).ino;
  } catch {
    return undefined;
  }
}

/** True if the process exists and is not a zombie. Zombies hold no namespace and cannot be killed further. */
export function isProcessAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // Field 3 (state) follows the parenthesised comm, which may itself contain spaces or parentheses.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Every live process whose network namespace is one of `inodes`. */
export function pidsInNetns(inodes: ReadonlySet<number>): number[] {
  if (inodes.size === 0) return [];
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const ino = processNetnsInode(pid);
    if (ino !== undefined && inodes.has(ino) && isProcessAlive(pid)) out.push(pid);
  }
  return out;
}

/** Names of all named network namespaces (what `ip netns list` shows), read from the directory. */
export function listNetns(): string[] {
  try {
    return readdirSync(netnsPath('')).sort();
  } catch {
    return [];
  }
}

/** Sends a signal, ignoring "no such process" (it may have exited meanwhile). */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
