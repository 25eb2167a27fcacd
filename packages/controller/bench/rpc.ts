// Calls over the fork() IPC channel between the orchestrator (run.ts) and its children (controller, replay server,
// agent fleets), plus one clock all processes share. Every child answers `cpu` (process.cpuUsage and the RSS) and
// `clock`, so CPU is attributed per process and timestamps taken in different processes can be compared.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/** Milliseconds since the epoch with sub-millisecond resolution (monotonic within one process). */
export function clockMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface ProcessSample {
  userUs: number;
  systemUs: number;
  rssBytes: number;
}

export function sampleProcess(): ProcessSample {
  const u = process.cpuUsage();
  return { userUs: u.user, systemUs: u.system, rssBytes: process.memoryUsage.rss() };
}

/** CPU seconds (user + system) spent between two samples of the same process. */
export function cpuSecondsBetween(a: ProcessSample, b: ProcessSample): number {
  return (b.userUs + b.systemUs - a.userUs - a.systemUs) / 1e6;
}

/**
 * One digest of what a holder has of a type: sha256 over the sorted `name=version` lines. The controller digests
 * its store, every agent what its xDS client holds; equal digests mean the agent holds every resource at the
 * controller's version and nothing else.
 */
export function digestVersions(entries: Iterable<readonly [string, string]>): { count: number; digest: string } {
  const lines = [...entries].map(([n, v]) => `${n}=${v}`).sort();
  const h = createHash('sha256');
  for (const l of lines) h.update(l).update('\n');
  return { count: lines.length, digest: h.digest('hex').slice(0, 32) };
}

/**
 * A pino destination that counts warnings and errors by message and keeps a few examples, so a benchmark run can
 * report reconnects and refusals without printing thousands of lines.
 */
export function createLogTally(): { write(line: string): void; counts: Record<string, number>; examples: unknown[] } {
  const counts: Record<string, number> = {};
  const examples: unknown[] = [];
  return {
    counts,
    examples,
    write(line: string) {
      const o = JSON.parse(line) as { msg?: string };
      const msg = o.msg ?? '(no message)';
      counts[msg] = (counts[msg] ?? 0) + 1;
      if (examples.length < 5) examples.push(o);
    },
  };
}

type Message =
  | { kind: 'call'; id: number; method: string; params: unknown }
  | { kind: 'reply'; id: number; ok: true; value: unknown }
  | { kind: 'reply'; id: number; ok: false; error: string }
  | { kind: 'event'; name: string; data: unknown };

export type Handlers = Record<string, (params: any) => unknown>;

/** Child side: serve the orchestrator's calls. The child exits when the orchestrator goes away. */
export function serveOrchestrator(handlers: Handlers): void {
  if (!process.send) {
    console.error('this is a benchmark child process; start the benchmark with `npm run bench` (dist/bench/run.js)');
    process.exit(2);
  }
  const reply = (m: Message): void => { process.send!(m); };
  const all: Handlers = { cpu: () => sampleProcess(), clock: () => clockMs(), ...handlers };
  process.on('message', (raw) => {
    const m = raw as Message;
    if (m.kind !== 'call') return;
    const h = all[m.method];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`no method ${m.method}`);
        return h(m.params);
      })
      .then(
        (value) => reply({ kind: 'reply', id: m.id, ok: true, value }),
        (err: unknown) => reply({ kind: 'reply', id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Child side: an unsolicited notification (e.g. "every agent of this fleet saw change 7"). */
export function notifyOrchestrator(name: string, data: unknown): void {
  process.send?.({ kind: 'event', name, data } satisfies Message);
}

/** Orchestrator side: one forked child. */
export class BenchProcess {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readonly listeners = new Map<string, Set<(data: unknown) => void>>();
  private exitCode: string | undefined;
  /** This process's clock minus the orchestrator's, in ms (see calibrateClock). */
  clockOffsetMs = 0;
  clockRttMs = NaN;

  private constructor(readonly name: string, private readonly child: ChildProcess) {
    child.on('message', (raw) => {
      const m = raw as Message;
      if (m.kind === 'event') {
        for (const l of this.listeners.get(m.name) ?? []) l(m.data);
        return;
      }
      if (m.kind !== 'reply') return;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(`${this.name}: ${m.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exitCode = String(code ?? signal);
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`${this.name} exited (${this.exitCode})`));
      }
      this.waiting.clear();
    });
  }

  static start(name: string, script: URL, execArgv: string[] = []): BenchProcess {
    return new BenchProcess(name, fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv }));
  }

  get pid(): number | undefined { return this.child.pid; }

  call<T>(method: string, params: unknown = null, timeoutMs = 30_000): Promise<T> {
    if (this.exitCode !== undefined) return Promise.reject(new Error(`${this.name} has exited (${this.exitCode})`));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${method} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ kind: 'call', id, method, params } satisfies Message);
    });
  }

  on(event: string, listener: (data: unknown) => void): () => void {
    let s = this.listeners.get(event);
    if (!s) this.listeners.set(event, (s = new Set()));
    s.add(listener);
    return () => s!.delete(listener);
  }

  sample(): Promise<ProcessSample> { return this.call<ProcessSample>('cpu'); }

  /**
   * Estimates this child's clock offset from `rounds` pings: the ping with the shortest round trip bounds the
   * error by half its RTT (well under 1 ms on an idle loopback IPC channel).
   */
  async calibrateClock(rounds = 12): Promise<void> {
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < rounds; i++) {
      const before = clockMs();
      const theirs = await this.call<number>('clock');
      const after = clockMs();
      if (after - before < best.rtt) best = { rtt: after - before, offset: theirs - (before + after) / 2 };
    }
    this.clockOffsetMs = best.offset;
    this.clockRttMs = best.rtt;
  }

  /** A timestamp taken by this child, on the orchestrator's clock. */
  toLocalMs(theirs: number): number { return theirs - this.clockOffsetMs; }

  /** Closes the IPC channel (the child exits, writing --cpu-prof output); SIGKILL to this pid after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitCode !== undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try { this.child.disconnect(); } catch { /* already disconnected */ }
    const timer = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.exitCode === undefined) {
      try { this.child.kill('SIGKILL'); } catch { /* gone */ }
    }
  }
}
