// The mesh acceptance tests' client, run inside the meshed client pod (Cluster.exec: the pod's netns and DNS):
//   node client.js <base64 JSON ClientPlan>
// Executes the plan (expect.ts) and prints one JSON line with the results. Every request opens its connections
// from inside the pod, so they take the real path: captured by the node agent, HBONE to the waypoint, routed,
// HBONE to the endpoint. Bounded: each request has a timeout, each case a deadline, a batch a fixed count.
import http from 'node:http';
import http2 from 'node:http2';
import {
  checkResponse, deploymentOfPod, type BatchResult, type ClientPlan, type ConsistentCase, type ConsistentResult, type EchoBody, type MeshRequest, type MeshResponse,
} from './expect.js';

const DEFAULT_TIMEOUT_MS = 10_000;

function target(req: MeshRequest, resolve: Record<string, string>): { host: string; port: number } {
  const m = /^(.*?)(?::(\d+))?$/.exec(req.to)!;
  const name = m[1]!;
  return { host: resolve[name] ?? name, port: m[2] ? Number(m[2]) : 80 };
}

function flattenHeaders(h: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(':')) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

function parseEcho(text: string): EchoBody | undefined {
  try {
    const v = JSON.parse(text) as EchoBody;
    return typeof v === 'object' && v !== null && typeof v.pod === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

function httpRequest(req: MeshRequest, resolve: Record<string, string>, agent: http.Agent): Promise<MeshResponse> {
  const start = performance.now();
  const { host, port } = target(req, resolve);
  return new Promise((done) => {
    let settled = false;
    const finish = (r: Omit<MeshResponse, 'ms'>) => {
      if (settled) return;
      settled = true;
      done({ ...r, ms: Math.round(performance.now() - start) });
    };
    const r = http.request({
      host, port, path: req.path ?? '/', method: req.method ?? 'GET', agent,
      headers: { host: req.host ?? req.to, ...(req.headers ?? {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => finish({ status: 0, headers: {}, error: `response: ${err.message}` }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const echo = parseEcho(text);
        finish({ status: res.statusCode ?? 0, headers: flattenHeaders(res.headers), ...(echo ? { echo } : { text: text.slice(0, 500) }) });
      });
    });
    r.setTimeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => r.destroy(new Error(`timed out after ${req.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)));
    r.on('error', (err) => finish({ status: 0, headers: {}, error: err.message }));
    r.end();
  });
}

/** Field 1 (string) of a protobuf message. */
function protoField1(msg: Buffer): string | undefined {
  if (msg[0] !== 0x0a) return undefined;
  let len = 0;
  let shift = 0;
  let i = 1;
  for (; i < msg.length; i++) {
    len |= (msg[i]! & 0x7f) << shift;
    shift += 7;
    if ((msg[i]! & 0x80) === 0) break;
  }
  return msg.subarray(i + 1, i + 1 + len).toString();
}

function grpcRequest(req: MeshRequest, resolve: Record<string, string>): Promise<MeshResponse> {
  const start = performance.now();
  const { host, port } = target(req, resolve);
  return new Promise((done) => {
    let settled = false;
    const session = http2.connect(`http://${host}:${port}`);
    const finish = (r: Omit<MeshResponse, 'ms'>) => {
      if (settled) return;
      settled = true;
      session.close();
      done({ ...r, ms: Math.round(performance.now() - start) });
    };
    const timer = setTimeout(() => {
      finish({ status: 0, headers: {}, error: `timed out after ${req.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` });
      session.destroy();
    }, req.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    session.on('error', (err) => {
      clearTimeout(timer);
      finish({ status: 0, headers: {}, error: err.message });
    });
    const stream = session.request({
      ':method': 'POST', ':path': '/ambit.echo.Echo/Echo', ':authority': req.host ?? req.to, 'content-type': 'application/grpc', te: 'trailers', ...(req.headers ?? {}),
    });
    let status = 0;
    let headers: Record<string, string> = {};
    let grpcStatus: number | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status'] ?? 0);
      headers = flattenHeaders(h);
      if (h['grpc-status'] !== undefined) grpcStatus = Number(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = Number(t['grpc-status']);
      Object.assign(headers, flattenHeaders(t));
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err) => {
      clearTimeout(timer);
      finish({ status, headers, error: err.message });
    });
    stream.on('end', () => {
      clearTimeout(timer);
      const body = Buffer.concat(chunks);
      const text = body.length > 5 ? protoField1(body.subarray(5, 5 + body.readUInt32BE(1))) : undefined;
      const echo = text ? parseEcho(text) : undefined;
      finish({ status, headers, ...(grpcStatus !== undefined ? { grpcStatus } : {}), ...(echo ? { echo } : {}) });
    });
    // An empty request message: compressed flag 0, length 0.
    stream.end(Buffer.alloc(5));
  });
}

let sent = 0;

/** `{uniq}` in a path becomes a value unique to this request (fail-N-times keys of retry tests). */
function send(template: MeshRequest, resolve: Record<string, string>, agent: http.Agent): Promise<MeshResponse> {
  const req = template.path?.includes('{uniq}') ? { ...template, path: template.path.replaceAll('{uniq}', `${process.pid}-${Date.now()}-${++sent}`) } : template;
  return req.grpc ? grpcRequest(req, resolve) : httpRequest(req, resolve, agent);
}

async function runCase(c: ConsistentCase, consistency: number, deadline: number, resolve: Record<string, string>): Promise<ConsistentResult> {
  // A fresh connection per attempt (agent without keep-alive): a connection opened before a config change must not
  // hide it, and each attempt takes the whole path again.
  const agent = new http.Agent({ keepAlive: false });
  let inARow = 0;
  let attempts = 0;
  let problems: string[] = ['never sent'];
  let last: MeshResponse | undefined;
  while (Date.now() < deadline) {
    attempts++;
    last = await send(c.request, resolve, agent);
    problems = checkResponse(last, c.expect);
    if (problems.length === 0) {
      if (++inARow >= consistency) return { name: c.name, ok: true, attempts, problems: [], last };
    } else {
      inARow = 0;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { name: c.name, ok: false, attempts, problems, ...(last ? { last } : {}) };
}

async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

async function run(plan: ClientPlan): Promise<unknown> {
  const resolve = plan.resolve ?? {};
  switch (plan.kind) {
    case 'consistent': {
      const deadline = Date.now() + (plan.timeoutMs ?? 30_000);
      // Cases run side by side (each its own loop), as the suite's subtests do in parallel.
      return Promise.all(plan.cases.map((c) => runCase(c, plan.consistency ?? 3, deadline, resolve)));
    }
    case 'batch': {
      const concurrency = plan.concurrency ?? 10;
      const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
      const responses = await pool(Array.from({ length: plan.count }, () => plan.request), concurrency, (r) => send(r, resolve, agent));
      agent.destroy();
      const result: BatchResult = { count: responses.length, byStatus: {}, byBackend: {}, errors: {}, entries: [] };
      for (const r of responses) {
        result.byStatus[r.status] = (result.byStatus[r.status] ?? 0) + 1;
        if (r.echo && r.status > 0) result.byBackend[deploymentOfPod(r.echo.pod)] = (result.byBackend[deploymentOfPod(r.echo.pod)] ?? 0) + 1;
        if (r.error) result.errors[r.error] = (result.errors[r.error] ?? 0) + 1;
        result.entries.push({ status: r.status, ms: r.ms, ...(r.echo ? { pod: r.echo.pod } : {}), ...(r.error ? { error: r.error } : {}), ...(r.echo?.attempt !== undefined ? { attempt: r.echo.attempt } : {}) });
      }
      return result;
    }
    case 'each': {
      const agent = new http.Agent({ keepAlive: false });
      return pool(plan.requests, plan.concurrency ?? 1, (r) => send(r, resolve, agent));
    }
  }
}

const arg = process.argv[2];
if (!arg) {
  process.stderr.write('usage: client.js <base64 JSON plan>\n');
  process.exit(2);
}
const plan = JSON.parse(Buffer.from(arg, 'base64').toString()) as ClientPlan;
process.stdout.write(JSON.stringify(await run(plan)) + '\n');
