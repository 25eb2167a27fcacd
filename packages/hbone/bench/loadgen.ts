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
import { runRequestResponse, type LatencySummary } from '@ambit/bench-kit';

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

async function rr(p: RrParams): Promise<RrResult> {
  const sockets: Socket[] = [];
  try {
    sockets.push(...(await Promise.all(Array.from({ length: p.conns }, () => connect(p.port)))));
  } catch (err) {
    for (const s of sockets) s.destroy();
    throw err;
  }
  let cpu0 = cpuSample();
  let cpu1 = cpu0;
  const r = await runRequestResponse({
    sockets, size: p.size, ...(p.rate !== undefined ? { rate: p.rate } : {}), warmupMs: p.warmupMs, durationMs: p.durationMs,
    onWindowStart: () => { cpu0 = cpuSample(); emitToParent('window', 'start'); },
    onWindowEnd: () => { cpu1 = cpuSample(); emitToParent('window', 'end'); },
  });
  return { conns: p.conns, targetRate: p.rate ?? null, ...r, loadgenCpu: cpuDelta(cpu0, cpu1) };
}

serveParent({
  bulk: (params) => bulk(params as BulkParams),
  rr: (params) => rr(params as RrParams),
});
