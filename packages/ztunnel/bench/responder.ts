// The server app of the benchmark, run inside the server pod's netns. One listener; the first byte of a
// connection picks the mode:
//   'E'  echo: every following byte is written back (1 KB request -> 1 KB response; the idle connections too);
//   'B'  bulk sink: an 8-byte big-endian length follows, then that many bytes; the app answers with the 8-byte count
//        once all arrived (delivered bytes, like iperf3 -n, without a half-close).
// Prints one JSON line {"event":"listening"} and then nothing per connection (so stdout costs nothing).
//
// usage: node responder.js --port 8080 [--host 0.0.0.0]
import net, { type Socket } from 'node:net';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1]! : dflt; };
const port = Number(arg('port', '8080'));
const host = arg('host', '0.0.0.0');

function onConnection(s: Socket): void {
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
    if (received >= expected) {
      const ack = Buffer.alloc(8);
      ack.writeBigUInt64BE(BigInt(received));
      s.write(ack);
      expected = Number.MAX_SAFE_INTEGER; // answer once
    }
  });
}

const server = net.createServer(onConnection);
server.listen({ port, host, backlog: 4096 }, () => console.log(JSON.stringify({ event: 'listening', port, host })));
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
