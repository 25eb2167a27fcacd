// The demo's bounded load, run inside the client pod (like `kubectl exec deploy/curl -- ...` in a loop):
//   node loadgen.js --url http://10.96.0.10:9080/productpage [--url ...] --count 300 --rate 40 [--concurrency 16]
// Sends exactly `count` GETs at `rate` per second (URLs taken in turn), at most `concurrency` in flight, each on a
// fresh connection (so every request is a new mesh connection), and prints one JSON summary on stdout: answers
// by URL and status, the `reviewsVersion` productpage reports, ratings failures seen in the page, and latencies.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string', multiple: true },
    count: { type: 'string', default: '100' },
    rate: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '16' },
    'timeout-ms': { type: 'string', default: '5000' },
  },
});
const urls = values.url ?? [];
const count = Number(values.count);
const rate = Number(values.rate);
const concurrency = Number(values.concurrency);
const timeoutMs = Number(values['timeout-ms']);
if (urls.length === 0 || !(count > 0 && count <= 100_000) || !(rate > 0) || !(concurrency > 0)) {
  process.stderr.write('loadgen: --url (one or more), --count 1..100000, --rate > 0 and --concurrency > 0 are required\n');
  process.exit(2);
}

interface Result {
  url: string;
  status: number;
  ms: number;
  reviewsVersion?: string | null;
  ratingsError?: boolean;
  error?: string;
}

function once(url: string): Promise<Result> {
  const start = process.hrtime.bigint();
  const ms = (): number => Number(process.hrtime.bigint() - start) / 1e6;
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const r: Result = { url, status: res.statusCode ?? 0, ms: ms() };
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { reviewsVersion?: string | null; reviews?: { reviews?: { rating?: { error?: string } }[] } };
          if ('reviewsVersion' in body) r.reviewsVersion = body.reviewsVersion ?? null;
          r.ratingsError = (body.reviews?.reviews ?? []).some((x) => x.rating?.error !== undefined);
        } catch {
          // not JSON (e.g. the waypoint's "RBAC: access denied"): status says it all
        }
        resolve(r);
      });
      res.on('error', (err) => resolve({ url, status: 0, ms: ms(), error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ url, status: 0, ms: ms(), error: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

async function main(): Promise<void> {
  const results: Result[] = [];
  const started = Date.now();
  let inFlight = 0;
  let sent = 0;
  await new Promise<void>((done) => {
    const tick = (): void => {
      // Paced by wall clock: catch up after a slow tick, never exceed `concurrency`.
      const due = Math.min(count, Math.floor(((Date.now() - started) / 1000) * rate) + 1);
      while (sent < due && inFlight < concurrency) {
        const url = urls[sent % urls.length]!;
        sent++;
        inFlight++;
        void once(url).then((r) => {
          results.push(r);
          inFlight--;
          if (results.length === count) done();
        });
      }
      if (sent < count) setTimeout(tick, 5);
    };
    tick();
  });
  const seconds = (Date.now() - started) / 1000;
  const byUrl: Record<string, { statuses: Record<string, number>; versions: Record<string, number>; ratingsErrors: number; errors: Record<string, number>; ms: number[] }> = {};
  for (const r of results) {
    const u = (byUrl[r.url] ??= { statuses: {}, versions: {}, ratingsErrors: 0, errors: {}, ms: [] });
    u.statuses[r.status] = (u.statuses[r.status] ?? 0) + 1;
    if (r.reviewsVersion !== undefined) u.versions[r.reviewsVersion ?? 'none'] = (u.versions[r.reviewsVersion ?? 'none'] ?? 0) + 1;
    if (r.ratingsError) u.ratingsErrors++;
    if (r.error) u.errors[r.error] = (u.errors[r.error] ?? 0) + 1;
    u.ms.push(r.ms);
  }
  const summary = Object.fromEntries(
    Object.entries(byUrl).map(([url, u]) => {
      const sorted = u.ms.sort((a, b) => a - b);
      const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
      const { ms: _ms, ...rest } = u;
      return [url, { ...rest, count: sorted.length, p50Ms: q(0.5), p99Ms: q(0.99) }];
    }),
  );
  process.stdout.write(JSON.stringify({ count: results.length, seconds, byUrl: summary }) + '\n');
}

void main();
