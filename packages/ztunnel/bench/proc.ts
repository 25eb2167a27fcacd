// Reading another process's CPU and memory from /proc, so the agents are measured from outside (they run the real
// main.js and expose nothing for the bench). utime+stime cover every thread of the process; the tick is CLK_TCK
// (100 Hz here), so a 5 s window at 0.06 cores is ~30 ticks: +-1 tick is ~3 %.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`). */
export function clockTicks(): number {
  clkTck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clkTck;
}

export interface CpuTicks { pid: number; userS: number; systemS: number; atMs: number }
export interface CpuUse { cpuS: number; userS: number; systemS: number; wallS: number }

/** utime and stime of a process (all threads), in seconds. */
export function readCpu(pid: number, tck = clockTicks()): CpuTicks {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm may contain spaces and parentheses: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return { pid, userS: Number(fields[11]) / tck, systemS: Number(fields[12]) / tck, atMs: performance.now() };
}

export function cpuBetween(a: CpuTicks, b: CpuTicks): CpuUse {
  const userS = b.userS - a.userS;
  const systemS = b.systemS - a.systemS;
  return { cpuS: userS + systemS, userS, systemS, wallS: (b.atMs - a.atMs) / 1000 };
}

export interface MemSample { rssMB: number; anonMB: number; fileMB: number; hwmMB: number; threads: number }

/** VmRSS and its split from /proc/PID/status (RssFile is mostly the node binary's text, shared between agents). */
export function readMem(pid: number): MemSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return {
    rssMB: kb('VmRSS') / 1024, anonMB: kb('RssAnon') / 1024, fileMB: kb('RssFile') / 1024, hwmMB: kb('VmHWM') / 1024,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
  };
}
