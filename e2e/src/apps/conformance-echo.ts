// Echo backend of the mesh acceptance tests (image `ambit/conformance-echo`; registered by the tests in their own
// registry). What the Gateway API suite's echo server reports, plus the knobs its timeout/retry tests and Istio's
// fault/resilience samples need from a backend:
//   node conformance-echo.js [--port 8080] [--grpc-port 7070]
// HTTP/1.1 on --port: every request gets one JSON object {pod, namespace, method, path, host, proto, headers
// ({Name: [values]}), peer, attempt}. Query parameters (any path):
//   delay=<ms|Ns|Nms>       answer after that long
//   status=<code>           answer with that status (also the path /status/<code>)
//   fail=<N>&key=<k>        the first N requests carrying key k fail (code=<c>, default 500; or fail-delay=<d>:
//                           answer 200 after d, too late for a per-try timeout; or fail-mode=reset: close the TCP
//                           connection without an answer); later ones answer 200. `attempt` counts requests of k.
// FAIL_STATUS=<code> in the environment: every request answers that status (a failing endpoint), except the probes'
// /healthz and /health: the pod is Ready and in the Service, as a broken app whose probe still passes.
// gRPC over h2c on --grpc-port: unary /ambit.echo.Echo/Echo answers a message whose field 1 (string) is the same
// JSON object (path = the gRPC method, headers = the request metadata).
import http from 'node:http';
import http2 from 'node:http2';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '8080' }, 'grpc-port': { type: 'string', default: '7070' }, host: { type: 'string', default: '0.0.0.0' } },
});
const pod = process.env.POD_NAME ?? hostname();
const namespace = process.env.POD_NAMESPACE ?? null;
const failStatus = process.env.FAIL_STATUS ? Number(process.env.FAIL_STATUS) : undefined;
/** Requests seen per fail key; bounded so a long run cannot grow it without limit. */
const attempts = new Map<string, number>();
const MAX_KEYS = 10_000;

function parseDurationMs(v: string | null): number {
  if (!v) return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v.trim());
  if (!m) return 0;
  return Math.min(60_000, Number(m[1]) * (m[2] === 's' ? 1000 : 1));
}

function headerMap(raw: readonly string[]): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name.startsWith(':')) continue;
    const canonical = name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
    (headers[canonical] ??= []).push(raw[i + 1]!);
  }
  return headers;
}

function countAttempt(key: string | null): number | undefined {
  if (!key) return undefined;
  if (!attempts.has(key) && attempts.size >= MAX_KEYS) attempts.delete(attempts.keys().next().value!);
  const n = (attempts.get(key) ?? 0) + 1;
  attempts.set(key, n);
  return n;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const q = url.searchParams;
  const attempt = countAttempt(q.get('key'));
  const failing = attempt !== undefined && attempt <= Number(q.get('fail') ?? 0);
  if (failing && q.get('fail-mode') === 'reset') {
    req.socket.resetAndDestroy();
    return;
  }
  const statusPath = /^\/status\/(\d{3})$/.exec(url.pathname);
  const probe = url.pathname === '/healthz' || url.pathname === '/health';
  let status = (probe ? undefined : failStatus) ?? (statusPath ? Number(statusPath[1]) : q.get('status') ? Number(q.get('status')) : 200);
  let delayMs = parseDurationMs(q.get('delay'));
  if (failing) {
    if (q.get('fail-delay')) delayMs = Math.max(delayMs, parseDurationMs(q.get('fail-delay')));
    else status = Number(q.get('code') ?? 500);
  }
  const body = JSON.stringify({
    pod, namespace, method: req.method, path: req.url, host: req.headers.host ?? '', proto: `HTTP/${req.httpVersion}`,
    headers: headerMap(req.rawHeaders), peer: req.socket.remoteAddress, ...(attempt !== undefined ? { attempt } : {}),
  });
  // Drain the request body before answering so keep-alive connections stay usable.
  req.resume();
  const answer = () => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (delayMs > 0) {
    const timer = setTimeout(answer, delayMs);
    res.on('close', () => clearTimeout(timer));
  } else answer();
});
server.keepAliveTimeout = 30_000;

/** gRPC wire: a 5-byte prefix (compressed flag, big-endian length) and a protobuf message with field 1 = string. */
function grpcMessage(text: string): Buffer {
  const payload = Buffer.from(text);
  const varint: number[] = [];
  for (let n = payload.length; ; n >>>= 7) {
    if (n < 0x80) {
      varint.push(n);
      break;
    }
    varint.push((n & 0x7f) | 0x80);
  }
  const msg = Buffer.concat([Buffer.from([0x0a, ...varint]), payload]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}

const grpc = http2.createServer();
grpc.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
  stream.on('data', () => undefined);
  stream.on('end', () => {
    if (stream.destroyed) return;
    const path = String(headers[':path'] ?? '');
    if (path !== '/ambit.echo.Echo/Echo') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '12', 'grpc-message': `unknown method ${path}` }));
      stream.end();
      return;
    }
    const body = JSON.stringify({
      pod, namespace, method: 'POST', path, host: String(headers[':authority'] ?? ''), proto: 'HTTP/2.0', headers: headerMap(rawHeaders),
    });
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(grpcMessage(body));
  });
});

server.listen({ port: Number(values.port), host: values.host }, () => {
  grpc.listen({ port: Number(values['grpc-port']), host: values.host }, () => {
    process.stdout.write(JSON.stringify({ event: 'listening', port: Number(values.port), grpcPort: Number(values['grpc-port']), pid: process.pid }) + '\n');
  });
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    server.close();
    grpc.close();
    process.exit(0);
  });
}
