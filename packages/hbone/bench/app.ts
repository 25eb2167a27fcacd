// The app behind every path: one TCP listener on 127.0.0.1. The first byte a connection sends picks the mode:
//   'E'  echo: every following byte is written back (1 KB request -> 1 KB response for the rate runs);
//   'B'  bulk sink: an 8-byte big-endian length follows, then that many bytes; the app answers with the 8-byte
//        count once all arrived (so a bulk run needs no half-close and measures delivered bytes, like iperf3 -n).
import net, { type AddressInfo, type Socket } from 'node:net';
import { serveParent } from './ipc.js';

const sockets = new Set<Socket>();

function onConnection(s: Socket): void {
  sockets.add(s);
  s.setNoDelay(true);
  s.on('error', () => {});
  s.on('close', () => sockets.delete(s));
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

const server = net.createServer(onConnection);

serveParent({
  start: () => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port }));
  }),
  connections: () => sockets.size,
});
