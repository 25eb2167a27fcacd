import type { Duplex } from 'node:stream';

type Chunk = { chunk: unknown; encoding: BufferEncoding | 'buffer' };
type Writer = { _write(c: unknown, e: string, cb: (err?: Error | null) => void): void; _writev?(d: Chunk[], cb: (err?: Error | null) => void): void };

/**
 * Makes an HTTP/2 stream safe to use as the socket of Node's HTTP/1.1 server or client. Those write header blocks
 * as strings; on Node 20 an Http2Stream handed small string chunks in one writev sends corrupted bytes (the first
 * bytes of the response line were replaced by garbage in our loopback test), so strings are turned into Buffers
 * before they reach the stream. Also adds the no-op socket methods the HTTP code calls (setNoDelay, setKeepAlive).
 */
export function asHttp1Socket<T extends Duplex>(stream: T): T {
  const s = stream as unknown as Writer & Partial<{ setNoDelay(): unknown; setKeepAlive(): unknown }>;
  const write = s._write;
  const writev = s._writev;
  s._write = function (c, e, cb) {
    return write.call(this, typeof c === 'string' ? Buffer.from(c, e as BufferEncoding) : c, 'buffer', cb);
  };
  if (writev) {
    s._writev = function (d, cb) {
      return writev.call(this, d.map((x) => (typeof x.chunk === 'string' ? { chunk: Buffer.from(x.chunk, x.encoding as BufferEncoding), encoding: 'buffer' as const } : x)), cb);
    };
  }
  s.setNoDelay ??= () => stream;
  s.setKeepAlive ??= () => stream;
  return stream;
}
