// The fixed-rate HTTP/1.1 load, run inside the client pod's netns (a captured pod's own iptables rules send its
// connections to the node agent, exactly as an app's would):
//   node loadgen.js --host VIP --port 8080 --authority NAME --rate 1000 --conns 10 --warmup-ms 1000 --duration-ms 5000
//                   --max-requests N --deadline-ms N --clk-tck 100 [--cpu NAME=PID,PID ...]
// Open loop: requests leave on a fixed schedule (--rate per second) whether or not earlier answers are in, so a slow
// path queues instead of slowing the schedule (bench-kit's loop does the same for its echo protocol, which is not
// HTTP: the proxies under test here must parse requests). Each request goes to an idle keep-alive connection if
// there is one, else it is pipelined on the least loaded. Latency = request written -> last byte of its answer;
// `lag` = how late the generator itself sent against the schedule. The proxies' CPU (--cpu groups) is read from
// /proc here, at the measured window's edges (the pod shares the PID namespace; in-process means no IPC delay).
// Bounded: at most --max-requests requests, and the process exits 3 when --deadline-ms passes.
// Output: JSON lines; the last is {"event":"result",...} or {"event":"error",...}.
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { summarizeUs } from '@ambit/bench-kit';
import { readGroupCpu, spentBetween, type CpuReading } from './proc-cpu.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string' }, port: { type: 'string', default: '8080' }, path: { type: 'string', default: '/' }, authority: { type: 'string' },
    rate: { type: 'string', default: '1000' }, conns: { type: 'string', default: '10' },
    'warmup-ms': { type: 'string', default: '1000' }, 'duration-ms': { type: 'string', default: '5000' },
    'max-requests': { type: 'string', default: '100000' }, 'deadline-ms': { type: 'string', default: '60000' },
    'clk-tck': { type: 'string', default: '100' }, cpu: { type: 'string', multiple: true, default: [] },
  },
});
const emit = (o: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };
const host = values.host ?? '';
const port = Number(values.port);
const rate = Number(values.rate);
const nConns = Number(values.conns);
const warmupMs = Number(values['warmup-ms']);
const durationMs = Number(values['duration-ms']);
const maxRequests = Number(values['max-requests']);
const deadlineMs = Number(values['deadline-ms']);
const tck = Number(values['clk-tck']);
if (!host || !(rate > 0) || !(nConns > 0) || !(durationMs > 0) || !(maxRequests > 0)) {
  emit({ event: 'error', message: '--host, --rate > 0, --conns > 0, --duration-ms > 0 and --max-requests > 0 are required' });
  process.exit(2);
}
const groups = values.cpu.map((g) => {
  const [name, pids] = g.split('=');
  return { name: name!, pids: (pids ?? '').split(',').filter(Boolean).map(Number) };
});
setTimeout(() => { emit({ event: 'error', message: `deadline of ${deadlineMs} ms passed` }); process.exit(3); }, deadlineMs).unref();

const request = Buffer.from(`GET ${values.path} HTTP/1.1\r\nHost: ${values.authority ?? host}\r\nUser-Agent: ambit-bench\r\n\r\n`);
const HEAD_END = Buffer.from('\r\n\r\n');

interface Pending { t: number; rec: boolean }

/**
 * One keep-alive connection and its answers in order. Answers are framed by Content-Length or chunked encoding (a
 * proxy may re-frame the backend's answer); the head is parsed only as far as status and framing.
 */
class Conn {
  readonly pending: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  /** Body bytes still to skip of the current answer; -1: reading a head; -2: reading chunked framing. */
  private bodyLeft = -1;
  private status = 0;
  dead = false;

  constructor(readonly s: Socket, private readonly onAnswer: (p: Pending, status: number) => void, private readonly onBroken: (why: string) => void,
    onDown: (lost: number) => void) {
    s.on('data', (chunk: Buffer) => this.feed(chunk));
    const down = (): void => {
      if (this.dead) return;
      this.dead = true;
      onDown(this.pending.splice(0).length);
    };
    s.on('error', down).on('close', down);
  }

  send(p: Pending): void {
    this.pending.push(p);
    this.s.write(request);
  }

  private feed(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.bodyLeft === -1) {
        const end = this.buf.indexOf(HEAD_END);
        if (end < 0) return;
        const head = this.buf.subarray(0, end).toString('latin1');
        this.buf = this.buf.subarray(end + 4);
        this.status = Number(head.slice(9, 12));
        if (!head.startsWith('HTTP/1.') || !Number.isInteger(this.status)) { this.onBroken(`not an HTTP/1.x status line: ${JSON.stringify(head.slice(0, 60))}`); return; }
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (length) this.bodyLeft = Number(length[1]);
        else if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) this.bodyLeft = -2;
        else { this.onBroken(`answer without Content-Length or chunked framing: ${head.split('\r\n')[0]}`); return; }
      }
      if (this.bodyLeft === -2) {
        // chunk-size CRLF data CRLF ... 0 CRLF CRLF (no trailers from these backends)
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) return;
        const size = parseInt(this.buf.subarray(0, eol).toString('latin1'), 16);
        if (!Number.isFinite(size)) { this.onBroken('bad chunk size'); return; }
        if (this.buf.length < eol + 2 + size + 2) return;
        this.buf = this.buf.subarray(eol + 2 + size + 2);
        if (size > 0) continue;
        this.bodyLeft = 0;
      }
      if (this.buf.length < this.bodyLeft) return;
      this.buf = this.buf.subarray(this.bodyLeft);
      this.bodyLeft = -1;
      const p = this.pending.shift();
      if (!p) { this.onBroken('an answer to no request'); return; }
      this.onAnswer(p, this.status);
    }
  }
}

async function connect(): Promise<Socket> {
  const s = net.connect({ host, port, noDelay: true, timeout: 10_000 });
  s.once('timeout', () => s.destroy(new Error(`connect to ${host}:${port} timed out`)));
  await once(s, 'connect');
  s.setTimeout(0);
  return s;
}

async function main(): Promise<Record<string, unknown>> {
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < nConns; i++) sockets.push(await connect());
  } catch (err) {
    for (const s of sockets) s.destroy();
    throw err;
  }
  const latUs: number[] = [];
  const lagUs: number[] = [];
  const statuses: Record<string, number> = {};
  let phase: 'warmup' | 'window' | 'done' = 'warmup';
  let total = 0;
  let sent = 0;
  let completed = 0;
  let outstanding = 0;
  /** What went wrong on connections that broke (a malformed answer, a close mid-run); those connections are dropped. */
  const broken: string[] = [];
  const noteBroken = (why: string): void => { if (broken.length < 5 && !broken.includes(why)) broken.push(why); };
  let brokenConns = 0;
  let onIdle: (() => void) | undefined;
  const conns = sockets.map((s) => new Conn(s, (p, status) => {
    outstanding--;
    if (p.rec) {
      completed++;
      latUs.push((performance.now() - p.t) * 1000);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    if (outstanding === 0 && onIdle) onIdle();
  }, (why) => { noteBroken(why); s.destroy(); }, (lost) => {
    if (phase !== 'done') { brokenConns++; noteBroken('a connection closed during the run'); }
    outstanding -= lost;
    if (outstanding === 0 && onIdle) onIdle();
  }));
  let rr = 0;
  const pick = (): Conn | undefined => {
    let best: Conn | undefined;
    for (let k = 0; k < conns.length; k++) {
      const c = conns[(rr + k) % conns.length]!;
      if (c.dead) continue;
      if (c.pending.length === 0) { rr = (rr + k + 1) % conns.length; return c; }
      if (!best || c.pending.length < best.pending.length) best = c;
    }
    return best;
  };

  let cpu0: CpuReading[] = [];
  let cpu1: CpuReading[] = [];
  let own0 = process.cpuUsage();
  let ownS = 0;
  let windowStart = 0;
  let windowEnd = 0;
  const t0 = performance.now();
  const startAt = t0 + warmupMs;
  const endAt = startAt + durationMs;
  const interval = 1000 / rate;
  await new Promise<void>((resolve) => {
    let next = t0;
    const tick = (): void => {
      const now = performance.now();
      if (phase === 'warmup' && now >= startAt) {
        phase = 'window';
        windowStart = performance.now();
        cpu0 = groups.map((g) => readGroupCpu(g.pids, tck));
        own0 = process.cpuUsage();
      }
      if ((phase === 'window' && now >= endAt) || total >= maxRequests || brokenConns === conns.length) {
        phase = 'done';
        windowEnd = performance.now();
        cpu1 = groups.map((g) => readGroupCpu(g.pids, tck));
        const d = process.cpuUsage(own0);
        ownS = (d.user + d.system) / 1e6;
        resolve();
        return;
      }
      while (next <= now && total < maxRequests) {
        const c = pick();
        if (!c) break;
        const rec = phase === 'window';
        if (rec) { lagUs.push((now - next) * 1000); sent++; }
        total++;
        outstanding++;
        c.send({ t: performance.now(), rec });
        next += interval;
      }
      setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  });
  // Answers still in flight belong to the window: wait for them (at most 3 s).
  if (outstanding > 0) await new Promise<void>((resolve) => { onIdle = resolve; setTimeout(resolve, 3000).unref(); });
  for (const s of sockets) s.destroy();
  if (windowStart === 0) throw new Error(`every connection broke before the measured window: ${broken.join('; ')}`);
  const windowS = (windowEnd - windowStart) / 1000;
  return {
    conns: nConns, targetRate: rate, windowS, sent, completed, rps: completed / windowS, errors: sent - completed, statuses, brokenConns, broken,
    latency: summarizeUs(latUs), lag: summarizeUs(lagUs),
    cpu: Object.fromEntries(groups.map((g, i) => [g.name, spentBetween(cpu0[i]!, cpu1[i]!)])), loadgenCpuS: ownS,
  };
}

main().then(
  (r) => { emit({ event: 'result', ...r }); process.exit(0); },
  (err: unknown) => { emit({ event: 'error', message: err instanceof Error ? err.message : String(err) }); process.exit(1); },
);
