import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { summarizeUs, type LatencySummary } from './stats.js';

export interface RequestResponseOptions {
  /** Connected sockets to the benchmark app (bench-app.ts); each is switched to echo mode here. */
  sockets: Socket[];
  /** Bytes per request (and per answer). */
  size: number;
  /**
   * Requests per second, sent open loop: on a fixed schedule, round-robin over the connections and pipelined,
   * whether or not earlier answers are in, so a slow path queues instead of slowing the schedule. Undefined:
   * closed loop, each connection sends its next request when the previous answer arrived (the highest rate).
   */
  rate?: number;
  warmupMs: number;
  durationMs: number;
  /** Called when the measured window opens and closes (CPU sampling, markers for the parent). */
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}

export interface RequestResponseResult {
  windowS: number;
  sent: number;
  completed: number;
  rps: number;
  /** Request written -> last byte of its answer read. */
  latency: LatencySummary;
  /** How late the generator itself sent against the schedule (open loop only). */
  lag: LatencySummary | null;
  errors: number;
}

interface Conn { s: Socket; pending: Array<{ t: number; rec: boolean }>; got: number; dead: boolean }

/**
 * The request/response load both benchmarks use. Answers still in flight when the window closes belong to the
 * window: they are waited for (at most 3 s), then the sockets are destroyed.
 */
export async function runRequestResponse(o: RequestResponseOptions): Promise<RequestResponseResult> {
  const payload = Buffer.alloc(o.size, 0x61);
  const conns: Conn[] = o.sockets.map((s) => { s.write('E'); return { s, pending: [], got: 0, dead: false }; });
  const closedLoop = o.rate === undefined;
  const latUs: number[] = [];
  const lagUs: number[] = [];
  let phase: 'warmup' | 'window' | 'done' = 'warmup';
  let sent = 0;
  let completed = 0;
  let outstanding = 0;
  let errors = 0;
  let onIdle: (() => void) | undefined;

  const send = (c: Conn) => {
    if (c.dead) return;
    const rec = phase === 'window';
    c.pending.push({ t: performance.now(), rec });
    outstanding++;
    if (rec) sent++;
    c.s.write(payload);
  };
  for (const c of conns) {
    c.s.on('data', (chunk: Buffer) => {
      const now = performance.now();
      c.got += chunk.length;
      while (c.got >= o.size) {
        c.got -= o.size;
        const req = c.pending.shift();
        if (!req) { errors++; continue; }
        outstanding--;
        if (req.rec) { completed++; latUs.push((now - req.t) * 1000); }
        if (closedLoop && phase !== 'done') send(c);
      }
      if (outstanding === 0 && onIdle) onIdle();
    });
    const down = () => {
      if (c.dead) return;
      c.dead = true;
      if (phase !== 'done') errors++;
      outstanding -= c.pending.length;
      c.pending.length = 0;
      if (outstanding === 0 && onIdle) onIdle();
    };
    c.s.on('error', down);
    c.s.on('close', down);
  }

  let windowStart = 0;
  let windowEnd = 0;
  const t0 = performance.now();
  const startAt = t0 + o.warmupMs;
  const endAt = startAt + o.durationMs;
  let scheduler: NodeJS.Timeout | undefined;
  await new Promise<void>((resolveWindow) => {
    const openWindow = () => {
      phase = 'window';
      windowStart = performance.now();
      o.onWindowStart?.();
    };
    const closeWindow = () => {
      phase = 'done';
      windowEnd = performance.now();
      o.onWindowEnd?.();
      clearTimeout(scheduler);
      resolveWindow();
    };
    if (closedLoop) {
      for (const c of conns) send(c);
      setTimeout(openWindow, o.warmupMs);
      setTimeout(closeWindow, o.warmupMs + o.durationMs);
      return;
    }
    const interval = 1000 / o.rate!;
    let next = t0;
    let i = 0;
    const tick = () => {
      const now = performance.now();
      if (phase === 'warmup' && now >= startAt) openWindow();
      if (phase === 'window' && now >= endAt) { closeWindow(); return; }
      while (next <= now) {
        if (phase === 'window') lagUs.push((now - next) * 1000);
        send(conns[i++ % conns.length]!);
        next += interval;
      }
      scheduler = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  });
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      onIdle = resolve;
      setTimeout(resolve, 3000).unref();
    });
  }
  for (const c of conns) c.s.destroy();
  const windowS = (windowEnd - windowStart) / 1000;
  return {
    windowS, sent, completed, rps: completed / windowS,
    latency: summarizeUs(latUs), lag: closedLoop ? null : summarizeUs(lagUs), errors: errors + (sent - completed),
  };
}
