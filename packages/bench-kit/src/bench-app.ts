import type { Socket } from 'node:net';

/**
 * The benchmark app's protocol, shared by the loopback (hbone) and network-namespace (ztunnel) benchmarks. The
 * first byte a connection sends picks the mode:
 *   'E'  echo: every following byte is written back (1 KB request -> 1 KB response; idle connections too);
 *   'B'  bulk sink: an 8-byte big-endian length follows, then that many bytes; the app answers with the 8-byte
 *        count once all arrived (delivered bytes, like iperf3 -n, without a half-close).
 * Any other first byte closes the connection.
 */
export function handleBenchConnection(s: Socket): void {
  s.setNoDelay(true);
  s.on('error', () => {});
  let mode = 0;
  let header = Buffer.alloc(0);
  let expected = -1;
  let received = 0;
  s.on('data', (chunk: Buffer) => {
    if (mode === 0) {
      mode = chunk[0]!;
      chunk = chunk.subarray(1);
    }
    if (mode === 0x45 /* E */) {
      if (chunk.length && !s.write(chunk)) { s.pause(); s.once('drain', () => s.resume()); }
      return;
    }
    if (mode !== 0x42 /* B */) { s.destroy(); return; }
    if (expected < 0) {
      header = Buffer.concat([header, chunk]);
      if (header.length < 8) return;
      expected = Number(header.readBigUInt64BE(0));
      chunk = header.subarray(8);
    }
    received += chunk.length;
    if (received >= expected && expected >= 0) {
      const ack = Buffer.alloc(8);
      ack.writeBigUInt64BE(BigInt(received));
      s.write(ack);
      expected = Number.MAX_SAFE_INTEGER; // answer once
    }
  });
}
