// The load generator, run inside the client pod's netns (so a captured pod's own iptables rules send its
// connections to the node agent, exactly as an app's would). Modes:
//   bulk   one connection, --bytes written as fast as the path takes them; done when the responder acknowledges the
//          last byte. Gbit/s = bytes / (first write -> ack).
//   rate   --conns keep-alive connections, 1 KB request -> 1 KB echo, open loop: requests leave on a fixed schedule
//          (--rate per second, round-robin over the connections, pipelined) whether or not earlier answers are in,
//          so a slow path queues instead of slowing the schedule. Latency = request written -> last byte of its
//          answer read. `lag` is how late the generator itself sent against the schedule (a busy generator shows).
//          The agents' CPU (--watch-pids) is read from /proc right here at the window's start and end: the pod netns
//          shares the PID namespace, and sampling in-process has no IPC delay.
//   idle   --conns connections, each proven end to end by one echoed byte, then held open (no traffic) until
//          SIGTERM or --hold-ms; prints {"event":"holding"} once all are open.
// Output: JSON lines on stdout; the last one is {"event":"result",...} or {"event":"error",...}. Every mode is
// bounded by --deadline-ms (the process exits 3 when it passes).
import net, { type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { cpuBetween, readCpu, type CpuTicks, type CpuUse } from './proc.js';
import { runRequestResponse } from '@ambit/bench-kit';

const argv = process.argv.slice(2);
const arg = (name: string, dflt?: string): string => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
};
const num = (name: string, dflt?: number) => Number(arg(name, dflt === undefined ? undefined : String(dflt)));
const mode = arg('mode');
const host = arg('host');
const port = num('port', 8080);
const tck = num('clk-tck', 100);
const watchPids = arg('watch-pids', '').split(',').filter(Boolean).map(Number);
const deadlineMs = num('deadline-ms', 60_000);

const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
setTimeout(() => { emit({ event: 'error', message: `deadline of ${deadlineMs} ms passed in mode ${mode}` }); process.exit(3); }, deadlineMs).unref();

function sampleWatched(): CpuTicks[] {
  return watchPids.map((pid) => readCpu(pid, tck));
}
function watchedBetween(a: CpuTicks[], b: CpuTicks[]): Record<string, CpuUse> {
  return Object.fromEntries(a.map((x, i) => [String(x.pid), cpuBetween(x, b[i]!)]));
}
function ownCpuS(a: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(a);
  return (d.user + d.system) / 1e6;
}

function connect(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    s.setNoDelay(true);
    const t = setTimeout(() => s.destroy(new Error(`connect to ${host}:${port} timed out`)), 10_000);
    s.once('connect', () => { clearTimeout(t); s.off('error', reject); resolve(s); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

async function bulk(): Promise<Record<string, unknown>> {
  const bytes = num('bytes');
  const chunkBytes = num('chunk', 256 << 10);
  const s = await connect();
  try {
    const ack = new Promise<bigint>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => { buf = Buffer.concat([buf, c]); if (buf.length >= 8) resolve(buf.readBigUInt64BE(0)); });
      s.once('error', reject);
      s.once('close', () => reject(new Error('connection closed before the responder acknowledged')));
    });
    ack.catch(() => {});
    const header = Buffer.alloc(9);
    header[0] = 0x42; // B
    header.writeBigUInt64BE(BigInt(bytes), 1);
    const chunk = Buffer.alloc(chunkBytes, 0xa5);
    const cpu0 = sampleWatched();
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    s.write(header);
    let left = bytes;
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!s.write(piece)) {
        await new Promise<void>((resolve, reject) => {
          const onErr = (e: Error) => { s.off('drain', onDrain); reject(e); };
          const onDrain = () => { s.off('error', onErr); resolve(); };
          s.once('drain', onDrain);
          s.once('error', onErr);
        });
      }
    }
    const got = await ack;
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = sampleWatched();
    if (got !== BigInt(bytes)) throw new Error(`responder acknowledged ${got} bytes, sent ${bytes}`);
    return { bytes, seconds, gbitPerS: (bytes * 8) / seconds / 1e9, agentCpu: watchedBetween(cpu0, cpu1), loadgenCpuS: ownCpuS(own0) };
  } finally {
    s.destroy();
  }
}


async function rate(): Promise<Record<string, unknown>> {
  const rps = num('rate', 1000);
  const nConns = num('conns', 10);
  const size = num('size', 1024);
  const sockets: Socket[] = [];
  try {
    sockets.push(...(await Promise.all(Array.from({ length: nConns }, () => connect()))));
  } catch (err) {
    for (const s of sockets) s.destroy();
    throw err;
  }
  // The agents' CPU is read from /proc at the window's edges, in-process (no IPC delay).
  let cpu0: CpuTicks[] = [];
  let cpu1: CpuTicks[] = [];
  let own0 = process.cpuUsage();
  let ownS = 0;
  const r = await runRequestResponse({
    sockets, size, rate: rps, warmupMs: num('warmup-ms', 1000), durationMs: num('duration-ms', 5000),
    onWindowStart: () => { cpu0 = sampleWatched(); own0 = process.cpuUsage(); },
    onWindowEnd: () => { cpu1 = sampleWatched(); ownS = ownCpuS(own0); },
  });
  return { conns: nConns, targetRate: rps, size, ...r, agentCpu: watchedBetween(cpu0, cpu1), loadgenCpuS: ownS };
}

/** Opens one connection and proves it reaches the responder (one echoed byte). */
async function openProven(): Promise<Socket> {
  const s = await connect();
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no echo on an idle connection within 10 s')), 10_000);
    s.once('data', () => { clearTimeout(t); resolve(); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
    s.write('Ex');
  });
  return s;
}

async function idle(): Promise<Record<string, unknown>> {
  const nConns = num('conns', 1000);
  const concurrency = num('concurrency', 50);
  const holdMs = num('hold-ms', 30_000);
  const sockets: Socket[] = [];
  let closedEarly = 0;
  const t0 = performance.now();
  try {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(concurrency, nConns) }, async () => {
      while (next < nConns) {
        next++;
        const s = await openProven();
        s.on('error', () => {});
        s.on('close', () => { closedEarly++; });
        sockets.push(s);
      }
    }));
  } catch (err) {
    for (const s of sockets) s.destroy();
    throw err;
  }
  const openMs = performance.now() - t0;
  emit({ event: 'holding', open: sockets.length, openMs });
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, holdMs);
    process.once('SIGTERM', () => { clearTimeout(t); resolve(); });
  });
  const dropped = closedEarly;
  for (const s of sockets) s.destroy();
  return { opened: sockets.length, openMs, droppedWhileHeld: dropped };
}

const modes: Record<string, () => Promise<Record<string, unknown>>> = { bulk, rate, idle };
const run = modes[mode];
if (!run) throw new Error(`unknown --mode ${mode}`);
run().then(
  (r) => { emit({ event: 'result', mode, ...r }); process.exit(0); },
  (err: unknown) => { emit({ event: 'error', mode, message: err instanceof Error ? err.message : String(err) }); process.exit(1); },
);
