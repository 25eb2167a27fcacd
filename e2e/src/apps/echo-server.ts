// Tiny TCP app for e2e tests, run with `node echo-server.js --port 8080 [--host 0.0.0.0] [--no-banner]` inside a
// pod netns. Per connection it first writes one banner line saying who it sees:
//   AMBIT-ECHO peer=10.0.1.2:40312 local=10.0.2.2:8080\n
// then echoes every byte back until the client half-closes, then closes. Tests use the banner to prove source
// IP preservation (peer must be the client pod's IP, not a proxy's) and the echo to prove byte-exact transfer.
// Logs one JSON line per event on stdout: {"event":"listening",...} once ready, {"event":"close",...} per
// connection with the byte count, so a test can also check the server's side of the story.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '0.0.0.0' },
    'no-banner': { type: 'boolean', default: false },
  },
});

const log = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');

const server = net.createServer((sock) => {
  const peer = `${sock.remoteAddress}:${sock.remotePort}`;
  const local = `${sock.localAddress}:${sock.localPort}`;
  let bytes = 0;
  log({ event: 'connection', peer: sock.remoteAddress, peerPort: sock.remotePort, local });
  if (!values['no-banner']) sock.write(`AMBIT-ECHO peer=${peer} local=${local}\n`);
  sock.on('data', (chunk) => {
    bytes += chunk.length;
  });
  // pipe() ends our side when the client ends its side, after flushing the echo.
  sock.pipe(sock);
  sock.on('error', (err) => log({ event: 'error', peer, message: err.message }));
  sock.on('close', () => log({ event: 'close', peer: sock.remoteAddress, peerPort: sock.remotePort, bytes }));
});

server.listen({ port: Number(values.port), host: values.host }, () => {
  const addr = server.address() as net.AddressInfo;
  log({ event: 'listening', host: addr.address, port: addr.port, pid: process.pid });
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
