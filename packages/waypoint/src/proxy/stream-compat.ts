import type { Duplex } from 'node:stream';

type Callback = (err?: Error | null) => void;
type Chunk = { chunk: Buffer | string; encoding: BufferEncoding | 'buffer' };
type Batch = Chunk[] & { allBuffers?: boolean };
interface Writer {
  _write(c: Buffer | string, e: string, cb: Callback): void;
  _writev?(d: Batch, cb: Callback): void;
}

const PATCHED = Symbol('ambit.http1Socket');

/**
 * Makes an HTTP/2 stream (an HBONE tunnel) safe to use as the socket of Node's HTTP/1.1 server or client.
 *
 * Node 20's Http2Stream completes a writev batch as soon as nghttp2 reaches the batch's last buffer; when that buffer
 * is empty it completes at once, before the batch's earlier buffers are on the wire, and frees them (string storage
 * at once, Buffers at the next GC). The HTTP/1.1 code writes exactly such batches: `res.end()` after `res.write()`
 * queues an empty chunk behind the head and body of a response, and a pipelined response (held back until the one
 * before it finished) is flushed in one corked writev of [head, body, '']. Under load the peer then received freed
 * memory: heads starting with 32 bytes of allocator pointers, NUL runs, stray bytes (the benchmark's "corrupted
 * responses"). So empty chunks never reach the stream: they are dropped from batches, and an empty write completes
 * without touching the stream. `allBuffers` is kept so an all-Buffer batch takes the native fast path.
 *
 * Also adds the socket methods the HTTP code and http.Agent call on their sockets (setNoDelay, setKeepAlive,
 * ref, unref): an HBONE stream has no TCP options of its own.
 */
export function asHttp1Socket<T extends Duplex>(stream: T): T {
  const s = stream as unknown as Writer & { [PATCHED]?: true } & Partial<{ setNoDelay(): unknown; setKeepAlive(): unknown; ref(): unknown; unref(): unknown }>;
  if (s[PATCHED]) return stream;
  s[PATCHED] = true;
  const write = s._write;
  const writev = s._writev;
  s._write = function (this: Writer, c, e, cb) {
    if (c.length === 0) { process.nextTick(cb); return; }
    write.call(this, c, e, cb);
  };
  if (writev) {
    s._writev = function (this: Writer, d, cb) {
      let empty = 0;
      for (let i = 0; i < d.length; i++) if (d[i]!.chunk.length === 0) empty++;
      if (empty === 0) { writev.call(this, d, cb); return; }
      const kept: Batch = [];
      for (let i = 0; i < d.length; i++) if (d[i]!.chunk.length !== 0) kept.push(d[i]!);
      if (kept.length === 0) { process.nextTick(cb); return; }
      if (kept.length === 1) { write.call(this, kept[0]!.chunk, kept[0]!.encoding, cb); return; }
      kept.allBuffers = d.allBuffers ?? kept.every((x) => typeof x.chunk !== 'string');
      writev.call(this, kept, cb);
    };
  }
  s.setNoDelay ??= () => stream;
  s.setKeepAlive ??= () => stream;
  s.ref ??= () => stream;
  s.unref ??= () => stream;
  return stream;
}
