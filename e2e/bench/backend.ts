// The benchmark's backend (image `ambit/bench-backend`): every request, whatever its path, gets 200 with a fixed
// --body-bytes body (1 KB by default), Content-Length framed. Only the proxies in front of it differ between the
// scenarios, so it is the same program in every scenario's pod.
//   node backend.js [--port 8080] [--body-bytes 1024]
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, 'body-bytes': { type: 'string', default: '1024' } } });
const body = Buffer.alloc(Number(values['body-bytes']), 'x');
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };

const server = http.createServer((req, res) => {
  // Drain the request body (the load sends none) so the keep-alive connection can carry the next request.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});
// Longer than any idle gap of the benchmark (between runs the proxies' pooled upstream connections sit idle): a
// connection the backend closed while a proxy still pools it would show up as a 502 in the next run.
server.keepAliveTimeout = 300_000;
server.headersTimeout = 310_000;
server.listen({ port: Number(values.port), host: '0.0.0.0' }, () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: Number(values.port), pid: process.pid })}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
