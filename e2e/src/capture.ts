// Packet capture inside a namespace: tcpdump writes a pcap (-U: flushed per packet, so the file can be read
// while the capture runs) and we parse it ourselves (pcap.ts). Tests use it to prove what crosses a wire: today
// that a plaintext marker is visible between nodes; under the mesh, that it is not.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePcap, type CapturedPacket } from './pcap.js';
import type { NetnsProcess, SpawnOptions } from './process.js';
import { waitFor } from './wait.js';

export interface CaptureOptions {
  /** tcpdump stops by itself after this many packets (-c); default 100000. */
  maxPackets?: number;
  /** The capture is stopped by a timer after this long even if nobody calls stop(); default 60 s. */
  maxDurationMs?: number;
  /** How long to wait for tcpdump to report that it is listening; default 5 s. */
  startTimeoutMs?: number;
}

/** What a capture saw. */
export class CaptureResult {
  constructor(readonly packets: readonly CapturedPacket[]) {}

  /** All TCP/UDP payloads in capture order, as latin1 text (byte-for-byte, so any marker survives). */
  get text(): string {
    return Buffer.concat(this.packets.map((p) => p.payload)).toString('latin1');
  }

  /** Packets whose payload (or, failing that, whole frame) contains `marker`. */
  packetsContaining(marker: string | Buffer): CapturedPacket[] {
    const m = typeof marker === 'string' ? Buffer.from(marker) : marker;
    return this.packets.filter((p) => p.payload.includes(m) || p.frame.includes(m));
  }

  /** True if `marker` appears in one packet or spans payloads of consecutive packets. */
  contains(marker: string | Buffer): boolean {
    const m = typeof marker === 'string' ? Buffer.from(marker) : marker;
    return this.packetsContaining(m).length > 0 || Buffer.from(this.text, 'latin1').includes(m);
  }

  /** One line per packet (`tcp 10.0.1.2:40000 > 10.0.2.2:8080 len 12`), for assertion messages. */
  summary(limit = 50): string {
    const lines = this.packets.slice(0, limit).map((p) =>
      p.transport === 'tcp' || p.transport === 'udp'
        ? `${p.transport} ${p.src}:${p.srcPort} > ${p.dst}:${p.dstPort} len ${p.payload.length}`
        : `${p.network} ${p.transport} ${p.src} > ${p.dst}`,
    );
    if (this.packets.length > limit) lines.push(`... ${this.packets.length - limit} more`);
    return lines.join('\n');
  }
}

export type Spawner = (netns: string, argv: readonly string[], options?: SpawnOptions) => Promise<NetnsProcess>;

/** A running capture. */
export class Capture {
  private timer: NodeJS.Timeout;
  private stopped: Promise<CaptureResult> | undefined;

  constructor(
    readonly netns: string,
    readonly iface: string,
    readonly file: string,
    readonly process: NetnsProcess,
    maxDurationMs: number,
  ) {
    this.timer = setTimeout(() => void this.stop().catch(() => undefined), maxDurationMs);
    this.timer.unref();
  }

  /** What has been captured so far, without stopping (poll this with waitFor for "marker seen"). */
  snapshot(): CaptureResult {
    let data: Buffer;
    try {
      data = readFileSync(this.file);
    } catch {
      data = Buffer.alloc(0);
    }
    return new CaptureResult(parsePcap(data));
  }

  /** Stops tcpdump (it flushes on SIGTERM) and returns everything captured. Idempotent. */
  stop(): Promise<CaptureResult> {
    this.stopped ??= (async () => {
      clearTimeout(this.timer);
      await this.process.stop(2000);
      return this.snapshot();
    })();
    return this.stopped;
  }
}

let captureCounter = 0;

/**
 * Starts tcpdump on `iface` inside `netns` with a BPF `filter` (e.g. 'tcp port 8080', '' for everything) and
 * returns once it is listening, so traffic sent after this call is captured.
 */
export async function startCapture(
  spawner: Spawner,
  dir: string,
  netns: string,
  iface: string,
  filter = '',
  options: CaptureOptions = {},
): Promise<Capture> {
  const file = join(dir, `capture-${netns}-${iface}-${++captureCounter}.pcap`);
  // -n: no DNS. -U: write each packet at once. --immediate-mode: hand each packet to tcpdump at once; without it
  // the kernel ring delivers in blocks (up to ~1 s late) and packets still in the ring are lost on SIGTERM. -s 0: whole packets. -Z root: keep writing as root (tcpdump
  // otherwise drops to the tcpdump user, which may not be able to write into our temp directory).
  const argv = ['tcpdump', '-n', '-U', '--immediate-mode', '-s', '0', '-Z', 'root', '-i', iface, '-c', String(options.maxPackets ?? 100_000), '-w', file];
  if (filter.trim() !== '') argv.push(filter);
  const proc = await spawner(netns, argv);
  // tcpdump prints "listening on IFACE, link-type ..." once the socket is open and the filter attached.
  await proc.waitForOutput(/listening on/, options.startTimeoutMs ?? 5000).catch(async (err: unknown) => {
    await proc.stop(500);
    throw new Error(`tcpdump on ${iface} in ${netns} did not start: ${proc.stderr().trim()}`, { cause: err });
  });
  return new Capture(netns, iface, file, proc, options.maxDurationMs ?? 60_000);
}

/** Convenience: capture while `fn` runs, then stop and return both the capture and fn's result. */
export async function captureDuring<T>(
  start: () => Promise<Capture>,
  fn: () => Promise<T>,
): Promise<{ capture: CaptureResult; result: T }> {
  const cap = await start();
  try {
    const result = await fn();
    return { capture: await cap.stop(), result };
  } finally {
    await cap.stop().catch(() => undefined);
  }
}

/** Polls a running capture until `marker` shows up; returns the result at that moment. */
export function waitForMarker(cap: Capture, marker: string, timeoutMs = 5000): Promise<CaptureResult> {
  return waitFor(
    () => {
      const r = cap.snapshot();
      return r.contains(marker) ? r : undefined;
    },
    { timeoutMs, message: `marker "${marker}" in the capture on ${cap.iface} in ${cap.netns}` },
  );
}
