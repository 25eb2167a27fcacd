// The load generator (its own process, so its CPU is not charged to any proxy).
//   bulk: one connection, `bytes` written as fast as the path takes them; done when the app acknowledges the last
//         byte. Throughput = bytes / (first write -> ack).
//   rr:   `conns` connections, 1 KB request -> 1 KB echo.
//         closed loop (rate omitted): each connection sends its next request when the previous answer is in: the
//           highest request rate the path sustains.
//         open loop (rate given): requests leave on a fixed schedule, round-robin over the connections, whether or
//           not earlier answers are in (pipelined: the echo keeps order); a slow path queues, it does not slow the
//           schedule. Latency = first byte written -> last byte of the answer read; how late the generator itself
//           sent against the schedule is reported as `lag` so a busy generator is visible.
//         A warm-up precedes the measured window; `window` events mark its start and end so run.ts can sample the
//         proxies' CPU over exactly that window.
import net, { type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { cpuDelta, cpuSample, emitToParent, serveParent, type CpuDelta } from './ipc.js';
import { summarizeUs, type LatencySummary } from '@ambit/bench-kit';

export interface BulkParams { port: number; bytes: number; chunkBytes: number; timeoutMs: number }
export interface BulkResult { bytes: number; seconds: number; gbitPerS: number; loadgenCpu: CpuDelta }

export interface RrParams { port: number; conns: number; rate?: number; size: number; warmupMs: number; durationMs: number }
export interface RrResult {
  conns: number;
  targetRate: number | null;
  windowS: number;
  sent: number;
  completed: number;
  rps: number;
  latency: LatencySummary;
  lag: LatencySummary | null;
  errors: number;
  loadgenCpu: CpuDelta;
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.setNoDelay(true);
    s.once('connect', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

async function bulk(p: BulkParams): Promise<BulkResult> {
  const s = await connect(p.port);
  const cpu0 = cpuSample();
  try {
    const ack = new Promise<bigint>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => { buf = Buffer.concat([buf, c]); if (buf.length >= 8) resolve(buf.readBigUInt64BE(0)); });
      s.once('error', reject);
      s.once('close', () => reject(new Error('connection closed before the app acknowledged')));
      setTimeout(() => reject(new Error(`bulk transfer did not finish in ${p.timeoutMs} ms`)), p.timeoutMs).unref();
    });
    const header = Buffer.alloc(9);
    header[0] = 0x42; // B
    header.writeBigUInt64BE(BigInt(p.bytes), 1);
    const chunk = Buffer.alloc(p.chunkBytes, 0xa5);
    const t0 = performance.now();
    s.write(header);
    let left = p.bytes;
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!s.write(piece)) await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => { s.off('drain', onDrain); reject(e); };
        const onDrain = () => { s.off('error', onErr); resolve(); };
        s.once('drain', onDrain);
        s.once('error', onErr);
      });
    }
    const got = await ack;
    const seconds = (performance.now() - t0) / 1000;
    if (got !== BigInt(p.bytes)) throw new Error(`app acknowledged ${got} bytes, sent ${p.bytes}`);
    return { bytes: p.bytes, seconds, gbitPerS: (p.bytes * 8) / seconds / 1e9, loadgenCpu: cpuDelta(cpu0, cpuSample()) };
  } finally {
    s.destroy();
  }
}

interface Conn { s: Socket; pending: Array<{ t: number; rec: boolean }>; got: number; dead: boolean }

async function rr(p: RrParams): Promise<RrResult> {
  const payload = Buffer.alloc(p.size, 0x61);
  const conns: Conn[] = [];
  let errors = 0;
  try {
    for (const s of await Promise.all(Array.from({ length: p.conns }, () => connect(p.port)))) {
      s.write('E');
      conns.push({ s, pending: [], got: 0, dead: false });
    }
  } catch (err) {
    for (const c of conns) c.s.destroy();
    throw err;
  }
  const latUs: number[] = [];
  const lagUs: number[] = [];
  let phase: 'warmup' | 'window' | 'done' = 'warmup';
  let sent = 0;
  let completed = 0;
  let outstanding = 0;
  let onIdle: (() => void) | undefined;

  const send = (c: Conn) => {
    if (c.dead) return;
    const rec = phase === 'window';
    c.pending.push({ t: performance.now(), rec });
    outstanding++;
    if (rec) sent++;
    c.s.write(payload);
  };
  const closedLoop = p.rate === undefined;

  for (const c of conns) {
    c.s.on('data', (chunk: Buffer) => {
      const now = performance.now();
      c.got += chunk.length;
      while (c.got >= p.size) {
        c.got -= p.size;
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

  let cpu0 = cpuSample();
  let windowStart = 0;
  let windowEnd = 0;
  const t0 = performance.now();
  const startAt = t0 + p.warmupMs;
  const endAt = startAt + p.durationMs;
  let scheduler: NodeJS.Timeout | undefined;

  await new Promise<void>((resolveWindow) => {
    const openWindow = () => {
      phase = 'window';
      windowStart = performance.now();
      cpu0 = cpuSample();
      emitToParent('window', 'start');
    };
    const closeWindow = () => {
      phase = 'done';
      windowEnd = performance.now();
      emitToParent('window', 'end');
      clearTimeout(scheduler);
      resolveWindow();
    };
    if (closedLoop) {
      for (const c of conns) send(c);
      setTimeout(openWindow, p.warmupMs);
      setTimeout(closeWindow, p.warmupMs + p.durationMs);
      return;
    }
    const interval = 1000 / p.rate!;
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
  const cpu1 = cpuSample();
  // Answers still in flight belong to the window: wait for them (bounded), then drop the connections.
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      onIdle = resolve;
      setTimeout(resolve, 3000).unref();
    });
  }
  for (const c of conns) c.s.destroy();
  const windowS = (windowEnd - windowStart) / 1000;
  return {
    conns: p.conns,
    targetRate: p.rate ?? null,
    windowS,
    sent,
    completed,
    rps: completed / windowS,
    latency: summarizeUs(latUs),
    lag: closedLoop ? null : summarizeUs(lagUs),
    errors: errors + (sent - completed),
    loadgenCpu: cpuDelta(cpu0, cpu1),
  };
}

serveParent({
  bulk: (params) => bulk(params as BulkParams),
  rr: (params) => rr(params as RrParams),
});
