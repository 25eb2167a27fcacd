// A tiny request/response protocol over the fork() IPC channel between the bench orchestrator (run.ts) and its
// child processes (app, proxies, load generator). Every child answers `cpu` with its own process.cpuUsage(), so
// CPU is attributed per process with microsecond resolution (getrusage covers all of the process's threads).
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PerformanceObserver, performance } from 'node:perf_hooks';

export interface CpuSample {
  userUs: number;
  systemUs: number;
  rssBytes: number;
  /** Garbage collections and their summed pause, since the process started. */
  gcCount: number;
  gcMs: number;
  /** Time the event loop spent running callbacks (not waiting in epoll), since start. */
  loopActiveMs: number;
}

/** What one process spent between two samples. */
export interface CpuDelta { cpuS: number; userS: number; systemS: number; gcCount: number; gcMs: number; loopActiveS: number }

interface RpcRequest { id: number; method: string; params: unknown }
interface RpcResponse { id: number; result?: unknown; error?: string }
interface RpcEvent { event: string; data: unknown }

export type Handler = (params: unknown) => unknown;

let gcCount = 0;
let gcMs = 0;
let gcObserver: PerformanceObserver | undefined;

export function cpuSample(): CpuSample {
  const u = process.cpuUsage();
  return {
    userUs: u.user, systemUs: u.system, rssBytes: process.memoryUsage.rss(),
    gcCount, gcMs, loopActiveMs: performance.eventLoopUtilization().active,
  };
}

export function cpuDelta(a: CpuSample, b: CpuSample): CpuDelta {
  return {
    cpuS: cpuSeconds(a, b), userS: (b.userUs - a.userUs) / 1e6, systemS: (b.systemUs - a.systemUs) / 1e6,
    gcCount: b.gcCount - a.gcCount, gcMs: b.gcMs - a.gcMs, loopActiveS: (b.loopActiveMs - a.loopActiveMs) / 1000,
  };
}

/** CPU seconds (user + system) between two samples. */
export function cpuSeconds(before: CpuSample, after: CpuSample): number {
  return (after.userUs - before.userUs + after.systemUs - before.systemUs) / 1e6;
}

/** Child side: answers the parent's calls; exits when the parent goes away (so no orphan survives a crash). */
export function serveParent(handlers: Record<string, Handler>): void {
  const send = process.send?.bind(process);
  if (!send) {
    console.error('this is a bench child process; run `npm run bench` (dist/bench/run.js) instead');
    process.exit(2);
  }
  gcObserver ??= new PerformanceObserver((list) => { for (const e of list.getEntries()) { gcCount++; gcMs += e.duration; } });
  gcObserver.observe({ entryTypes: ['gc'] });
  const all: Record<string, Handler> = { cpu: () => cpuSample(), ...handlers };
  process.on('message', (raw) => {
    const m = raw as RpcRequest;
    Promise.resolve()
      .then(() => {
        const h = all[m.method];
        if (!h) throw new Error(`unknown method ${m.method}`);
        return h(m.params);
      })
      .then(
        (result) => send({ id: m.id, result } satisfies RpcResponse),
        (err: Error) => send({ id: m.id, error: err.stack ?? String(err) } satisfies RpcResponse),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Child side: a one-way notification to the parent. */
export function emitToParent(event: string, data: unknown = null): void {
  process.send?.({ event, data } satisfies RpcEvent);
}

/** Parent side: one forked child with calls, events and a hard kill. */
export class BenchChild {
  readonly events = new EventEmitter();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private exited = false;

  private constructor(readonly name: string, readonly proc: ChildProcess) {
    proc.on('message', (raw) => {
      const m = raw as RpcResponse | RpcEvent;
      if ('event' in m) { this.events.emit(m.event, m.data); return; }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error !== undefined) p.reject(new Error(`${this.name}: ${m.error}`));
      else p.resolve(m.result);
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(new Error(`${this.name} exited (${code ?? signal})`)); }
      this.pending.clear();
    });
  }

  static spawn(name: string, script: URL, args: string[] = [], execArgv: string[] = []): BenchChild {
    const proc = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    return new BenchChild(name, proc);
  }

  get pid(): number { return this.proc.pid ?? -1; }

  call<T>(method: string, params: unknown = null, timeoutMs = 15_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ id, method, params } satisfies RpcRequest);
    });
  }

  cpu(): Promise<CpuSample> { return this.call<CpuSample>('cpu'); }

  /** Closes the IPC channel (the child exits on 'disconnect', writing e.g. --cpu-prof output); SIGKILL after `ms`. */
  async stop(ms = 3000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    try { this.proc.disconnect(); } catch { /* already closed */ }
    const timer = setTimeout(() => this.kill(), ms);
    await gone;
    clearTimeout(timer);
  }

  /** SIGKILL to this child only (by its pid); safe to call twice. */
  kill(): void {
    if (!this.exited && this.proc.pid !== undefined) {
      try { this.proc.kill('SIGKILL'); } catch { /* already gone */ }
    }
  }
}
