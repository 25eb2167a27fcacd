// CPU of the proxies, read from outside through /proc (they run as shipped and expose nothing for the benchmark).
// A proxy is a group of processes: nginx is a master plus its workers, the mesh path is two agents plus (maybe) a
// waypoint. utime+stime in /proc/PID/stat cover every thread of a process; the unit is CLK_TCK (100 Hz here), so a
// 5 s window at 0.25 cores is ~125 ticks and +-1 tick is under 1 %.
import { readdirSync, readFileSync } from 'node:fs';

/** user and system CPU seconds of a set of processes, summed, at one instant. */
export interface CpuReading { userS: number; systemS: number; atMs: number }
export interface CpuSpent { cpuS: number; userS: number; systemS: number; wallS: number }

/** Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** Sums utime and stime (fields 14 and 15 of stat; [11] and [12] after the name) over `pids`. */
export function readGroupCpu(pids: readonly number[], ticksPerS: number): CpuReading {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    user += Number(f[11]);
    system += Number(f[12]);
  }
  return { userS: user / ticksPerS, systemS: system / ticksPerS, atMs: performance.now() };
}

export function spentBetween(a: CpuReading, b: CpuReading): CpuSpent {
  const userS = b.userS - a.userS;
  const systemS = b.systemS - a.systemS;
  return { cpuS: userS + systemS, userS, systemS, wallS: (b.atMs - a.atMs) / 1000 };
}

/** Direct children of `pid` (nginx's workers), found by their stat's ppid: this kernel has no /proc/PID/task/TID/children. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (Number(statFields(Number(name))[1]) === pid) out.push(Number(name));
    } catch {
      // exited between readdir and read
    }
  }
  return out;
}
