import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { asHttp1Socket } from './stream-compat.js';

const N = 600;
const head = (i: number): string => `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1024\r\nx-seq: ${String(i).padStart(6, '0')}\r\n\r\n`;
const BODY = Buffer.alloc(1024, 'x');

// What Node's HTTP/1.1 server does for a pipelined response flushed after the one before it: one corked batch of
// [head (string), body (Buffer), '' (from res.end())]. Node 20's Http2Stream completed such a batch at its empty
// last chunk and freed the head before sending it; the peer got allocator bytes instead of the head.
test('an HTTP/2 stream used as an HTTP/1.1 socket sends corked batches ending in an empty chunk intact', async () => {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    asHttp1Socket(stream);
    let i = 0;
    const burst = (): void => {
      for (let k = 0; k < 20 && i < N; k++, i++) {
        stream.cork();
        stream.write(head(i), 'latin1');
        stream.write(BODY);
        stream.write('', 'latin1');
        stream.uncork();
        // Allocations between batches reuse whatever memory was freed too early.
        for (let j = 0; j < 50; j++) Buffer.from('y'.repeat(100 + j)).toString();
      }
      if (i < N) setImmediate(burst); else stream.end();
    };
    burst();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const received = await new Promise<Buffer>((resolve, reject) => {
      const req = session.request({ ':path': '/' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
      setTimeout(() => reject(new Error(`the stream did not end within 10 s (${chunks.reduce((n, c) => n + c.length, 0)} bytes received)`)), 10_000).unref();
    });
    const expected = Buffer.concat(Array.from({ length: N }, (_, i) => Buffer.concat([Buffer.from(head(i), 'latin1'), BODY])));
    assert.equal(received.length, expected.length);
    const firstBad = received.findIndex((b, i) => b !== expected[i]);
    assert.equal(firstBad, -1, `first differing byte at ${firstBad}: ${JSON.stringify(received.subarray(Math.max(0, firstBad - 8), firstBad + 40).toString('latin1'))}`);
  } finally {
    session.destroy();
    for (const s of sessions) s.destroy();
    server.close();
  }
});

test('an empty write on its own completes without reaching the stream; other writes pass through', async () => {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    asHttp1Socket(stream);
    stream.write('', 'latin1', () => {
      stream.cork();
      stream.write('a', 'latin1');
      stream.write('', 'latin1');
      stream.write(Buffer.from('b'));
      stream.write('', 'latin1');
      stream.uncork();
      stream.end('c');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':path': '/' });
      let t = '';
      req.on('data', (c: Buffer) => { t += c.toString(); });
      req.on('end', () => resolve(t));
      req.on('error', reject);
    });
    assert.equal(text, 'abc');
  } finally {
    session.destroy();
    for (const s of sessions) s.destroy();
    server.close();
  }
});
