// A bookinfo-like sample (Istio's bookinfo, rebuilt small) for the demo and the scenario tests: one program,
// four roles, run as `node bookinfo.js --role productpage|details|reviews|ratings [--version v1] [--port 9080]`.
//   productpage  GET /productpage  -> calls details and reviews, answers JSON naming which reviews version served
//   details      GET /details/<id>
//   reviews      GET /reviews/<id>  v1: no stars; v2: black stars, v3: red stars (both call ratings)
//   ratings      GET /ratings/<id>
// Upstreams are found the Kubernetes way, from <SERVICE>_SERVICE_HOST / <SERVICE>_SERVICE_PORT env vars (or
// --details/--reviews/--ratings host:port). Like bookinfo, the apps forward the tracing and user headers so L7
// routing on `end-user` and traces work end to end. GET /health answers 200.
import http from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    version: { type: 'string', default: 'v1' },
    port: { type: 'string', default: '9080' },
    host: { type: 'string', default: '0.0.0.0' },
    details: { type: 'string' },
    reviews: { type: 'string' },
    ratings: { type: 'string' },
    'timeout-ms': { type: 'string', default: '3000' },
  },
});
const ROLES = ['productpage', 'details', 'reviews', 'ratings'] as const;
type Role = (typeof ROLES)[number];
if (!ROLES.includes(values.role as Role)) {
  process.stderr.write(`bookinfo: --role must be one of ${ROLES.join(', ')}\n`);
  process.exit(2);
}
const role = values.role as Role;
const version = values.version!;
const pod = process.env.POD_NAME ?? hostname();
const timeoutMs = Number(values['timeout-ms']);

/** Headers bookinfo forwards (tracing, user identity, cookies). */
const FORWARDED = ['x-request-id', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'b3', 'end-user', 'user-agent', 'cookie', 'authorization'];

function upstream(name: 'details' | 'reviews' | 'ratings'): string {
  const flag = values[name];
  if (flag) return flag;
  const env = name.toUpperCase();
  const host = process.env[`${env}_SERVICE_HOST`];
  const port = process.env[`${env}_SERVICE_PORT`] ?? '9080';
  if (!host) throw new Error(`no address for ${name}: set ${env}_SERVICE_HOST or --${name}`);
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

interface Fetched { status: number; body: any; error?: string }

function get(name: 'details' | 'reviews' | 'ratings', path: string, incoming: http.IncomingHttpHeaders): Promise<Fetched> {
  return new Promise((resolve) => {
    let target: string;
    try {
      target = upstream(name);
    } catch (err) {
      resolve({ status: 0, body: null, error: (err as Error).message });
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of FORWARDED) {
      const v = incoming[h];
      if (typeof v === 'string') headers[h] = v;
    }
    headers.host = `${name}:${target.slice(target.lastIndexOf(':') + 1)}`;
    const req = http.get(`http://${target}${path}`, { headers, timeout: timeoutMs, agent: keepAlive }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: any = text;
        try { body = JSON.parse(text); } catch { /* keep text */ }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', (err) => resolve({ status: 0, body: null, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`${name} timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: 0, body: null, error: err.message }));
  });
}
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/health') return send(res, 200, { status: 'ok', role, version, pod });
  const id = Number(/\/(\d+)$/.exec(url.pathname)?.[1] ?? 0);
  switch (role) {
    case 'details':
      if (!url.pathname.startsWith('/details')) return send(res, 404, { error: 'not found' });
      return send(res, 200, { id, author: 'William Shakespeare', year: 1595, type: 'paperback', pages: 200, publisher: 'PublisherA', language: 'English', pod });
    case 'ratings':
      if (!url.pathname.startsWith('/ratings')) return send(res, 404, { error: 'not found' });
      return send(res, 200, { id, ratings: { Reviewer1: 5, Reviewer2: 4 }, pod });
    case 'reviews': {
      if (!url.pathname.startsWith('/reviews')) return send(res, 404, { error: 'not found' });
      const reviews: any[] = [{ reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare.' }, { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining.' }];
      if (version !== 'v1') {
        const r = await get('ratings', `/ratings/${id}`, req.headers);
        const color = version === 'v2' ? 'black' : 'red';
        for (const rev of reviews) {
          rev.rating = r.status === 200 ? { stars: r.body?.ratings?.[rev.reviewer], color } : { error: r.error ?? `ratings answered ${r.status}` };
        }
      }
      return send(res, 200, { id, version, pod, reviews });
    }
    case 'productpage': {
      if (url.pathname !== '/productpage' && url.pathname !== '/') return send(res, 404, { error: 'not found' });
      const [details, reviews] = await Promise.all([get('details', `/details/${id}`, req.headers), get('reviews', `/reviews/${id}`, req.headers)]);
      const page = {
        pod,
        user: req.headers['end-user'] ?? null,
        details: details.status === 200 ? details.body : { error: details.error ?? `details answered ${details.status}`, status: details.status },
        reviews: reviews.status === 200 ? reviews.body : { error: reviews.error ?? `reviews answered ${reviews.status}`, status: reviews.status },
        reviewsVersion: reviews.status === 200 ? reviews.body?.version ?? null : null,
      };
      // Like bookinfo, the page renders (200) even when a backend failed; the error shows in the page.
      return send(res, 200, page);
    }
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => send(res, 500, { error: (err as Error).message }));
});
server.keepAliveTimeout = 30_000;
server.listen({ port: Number(values.port), host: values.host }, () => {
  process.stdout.write(JSON.stringify({ event: 'listening', role, version, port: Number(values.port), pid: process.pid }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    server.close();
    keepAlive.destroy();
    process.exit(0);
  });
}
