// Small HTTP app for cluster-in-a-box pods (image `ambit/http-echo`), run with `node http-echo.js --port 8080`.
// Every request gets one JSON object naming the pod that served it and the peer it saw, so a test can tell which
// replica answered and whether the source address was kept, plus what the Gateway API conformance suite's echo
// server reports (path, host, method, proto, headers as {Name: [values]}, namespace, service). GET /healthz
// answers 200 for probes.
import http from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '0.0.0.0' } } });
const pod = process.env.POD_NAME ?? hostname();

const server = http.createServer((req, res) => {
  const headers: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase().replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
    (headers[name] ??= []).push(req.rawHeaders[i + 1]!);
  }
  const body = JSON.stringify({
    pod, namespace: process.env.POD_NAMESPACE ?? null, service: process.env.SERVICE_NAME ?? null,
    method: req.method, path: req.url, host: req.headers.host ?? '', proto: `HTTP/${req.httpVersion}`, headers,
    peer: req.socket.remoteAddress, local: `${req.socket.localAddress}:${req.socket.localPort}`,
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen({ port: Number(values.port), host: values.host }, () => {
  process.stdout.write(JSON.stringify({ event: 'listening', port: Number(values.port), pid: process.pid }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
