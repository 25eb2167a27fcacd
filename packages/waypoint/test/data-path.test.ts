// The HTTP/1.1 data path under concurrency: pipelined and concurrent keep-alive requests (every byte of every
// response checked), upstream connection reuse (tunnels counted), listeners on reused upstream streams, and one
// istio_requests_total sample per request however the request ends.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT } from '../src/proxy/upstream.js';
import { startHarness, VIPS, waitFor, type EchoBody, type Harness } from './harness.js';

let h: Harness;
before(async () => { h = await startHarness(); });
after(async () => { await h?.close(); });

const ECHO = `${VIPS.echo}:80`;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

interface Parsed { readonly status: number; readonly headers: Map<string, string>; readonly body: Buffer }

/**
 * Parses `buf` as exactly `count` HTTP/1.1 responses and nothing else: status line, header lines (token, colon,
 * value), blank line, a body framed by content-length or chunked encoding. Throws naming the first byte that does
 * not fit, so a stray or missing byte anywhere fails.
 */
function parseResponses(buf: Buffer, count: number): Parsed[] {
  const out: Parsed[] = [];
  let off = 0;
  const fail = (why: string): never => {
    throw new Error(`response ${out.length + 1}/${count} at byte ${off}: ${why}: ${JSON.stringify(buf.subarray(off, off + 80).toString('latin1'))}`);
  };
  while (out.length < count) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) fail('no end of head');
    const lines = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) [A-Za-z ]+$/.exec(lines[0]!);
    if (!m) fail('not a status line');
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i <= 0 || !TOKEN.test(l.slice(0, i)) || /[\0-\x08\x0a-\x1f\x7f]/.test(l)) fail(`bad header line ${JSON.stringify(l)}`);
      headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    let p = end + 4;
    let body: Buffer;
    if (headers.get('transfer-encoding') === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', p);
        const size = eol < 0 ? NaN : parseInt(buf.subarray(p, eol).toString('latin1'), 16);
        if (!Number.isInteger(size)) { off = p; fail('bad chunk size'); }
        p = eol + 2;
        if (size === 0) { if (buf.subarray(p, p + 2).toString() !== '\r\n') { off = p; fail('bad last chunk'); } p += 2; break; }
        parts.push(buf.subarray(p, p + size));
        p += size;
        if (buf.subarray(p, p + 2).toString() !== '\r\n') { off = p; fail('chunk not followed by CRLF'); }
        p += 2;
      }
      body = Buffer.concat(parts);
    } else {
      const n = Number(headers.get('content-length'));
      if (!Number.isInteger(n)) fail('no content-length');
      body = buf.subarray(p, p + n);
      if (body.length < n) fail('body cut short');
      p += n;
    }
    out.push({ status: Number(m![1]), headers, body });
    off = p;
  }
  if (off !== buf.length) fail(`${buf.length - off} bytes after the last response`);
  return out;
}

/** Sends `paths` on one tunnel in bursts (pipelined), returns everything the waypoint sent back once `count` answers are in. */
async function pipelined(t: Duplex, paths: string[], opts: { burst: number; close?: boolean }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  t.on('data', (c: Buffer) => chunks.push(c));
  for (let i = 0; i < paths.length; i += opts.burst) {
    t.write(paths.slice(i, i + opts.burst).map((p) => `GET ${p} HTTP/1.1\r\nhost: echo\r\n\r\n`).join(''));
    await new Promise((r) => setImmediate(r));
  }
  const complete = (): boolean => { try { parseResponses(Buffer.concat(chunks), paths.length); return true; } catch { return t.destroyed; } };
  await waitFor(complete, 20_000, `${paths.length} answers on one tunnel`).catch(() => {});
  // Let anything that should not be there arrive too.
  await new Promise((r) => setTimeout(r, 50));
  if (opts.close !== false) t.end();
  return Buffer.concat(chunks);
}

test('pipelined and concurrent keep-alive requests: every byte of every response is right, upstream tunnels are reused', async () => {
  const connects0 = h.endpoints.map((e) => e.connects.count);
  const conns = 10;
  const perConn = 60;
  const results = await Promise.all(Array.from({ length: conns }, async (_, c) => {
    const t = await h.tunnel(ECHO);
    const paths = Array.from({ length: perConn }, (_, i) => `/c${c}/r${i}`);
    const buf = await pipelined(t, paths, { burst: 1 + (c % 7) });
    return { paths, responses: parseResponses(buf, perConn) };
  }));
  for (const { paths, responses } of results) {
    responses.forEach((r, i) => {
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body.toString()) as EchoBody;
      assert.equal(body.path, paths[i], 'answers come back in request order');
      assert.equal(r.headers.get('x-pod'), body.pod);
    });
  }
  // 600 requests, at most DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT tunnels per endpoint (a new tunnel per request before).
  const opened = h.endpoints.map((e, i) => e.connects.count - connects0[i]!);
  for (const n of opened) assert.ok(n <= DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT, `tunnels opened per endpoint: ${opened.join(', ')}`);
  assert.ok(h.app.upstream.stats().http1.connections <= 2 * DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT);
});

test('sequential keep-alive requests reuse one upstream tunnel per endpoint without piling up listeners', async () => {
  // Let the pool settle: connections of the test before are idle now.
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => { if (w.name === 'MaxListenersExceededWarning') warnings.push(w); };
  process.on('warning', onWarning);
  try {
    const t = await h.tunnel(ECHO);
    const connects0 = h.endpoints.map((e) => e.connects.count);
    for (let i = 0; i < 40; i++) {
      const [r] = parseResponses(await pipelined(t, [`/seq/${i}`], { burst: 1, close: false }), 1);
      assert.equal(r!.status, 200);
      t.removeAllListeners('data');
    }
    t.end();
    assert.deepEqual(h.endpoints.map((e, i) => e.connects.count - connects0[i]!), [0, 0], 'idle pooled tunnels carry the requests');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.map((w) => w.message), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('istio_requests_total has one sample per request: pipelined, concurrent, and clients leaving mid-pipeline', async () => {
  const total = (): Promise<number> => h.metric('istio_requests_total', { reporter: 'waypoint' });
  const seen = (): number => h.endpoints.reduce((n, e) => n + e.seen.length, 0);
  const before = await total();
  const seen0 = seen();
  // 5 tunnels x 30 pipelined requests answered in full.
  const answered = await Promise.all(Array.from({ length: 5 }, async (_, c) => {
    const t = await h.tunnel(ECHO);
    return parseResponses(await pipelined(t, Array.from({ length: 30 }, (_, i) => `/m${c}/${i}`), { burst: 5 }), 30).length;
  }));
  const n = answered.reduce((a, b) => a + b, 0);
  await waitFor(async () => (await total()) - before === n, 5000, `${n} samples`).catch(() => {});
  assert.equal((await total()) - before, n, 'one sample per answered request');
  // Clients that send pipelined requests (some slow) and close the tunnel before all answers are in.
  for (let c = 0; c < 5; c++) {
    const t = await h.tunnel(ECHO);
    t.on('data', () => {});
    t.on('error', () => {});
    t.write(Array.from({ length: 10 }, (_, i) => `GET /leave${c}/${i}${i % 3 === 0 ? '?delay=30' : ''} HTTP/1.1\r\nhost: echo\r\n\r\n`).join(''));
    await new Promise((r) => setTimeout(r, 15));
    t.destroy();
  }
  // Every request the backends saw went through the waypoint's handler and must have been counted when it ended.
  await waitFor(async () => (await total()) - before === seen() - seen0, 5000, 'a sample for every request the backends saw').catch(() => {});
  assert.equal((await total()) - before, seen() - seen0);
});
