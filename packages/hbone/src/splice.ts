import { constants as h2c, type Http2Stream } from 'node:http2';
import type { Socket } from 'node:net';

export interface SpliceResult {
  /** Bytes read from the TCP side and written into the tunnel. */
  bytesFromTcp: number;
  /** Bytes read from the tunnel and written to the TCP side. */
  bytesFromTunnel: number;
  /** Set when either side was reset or failed; the other side was reset in turn. */
  error?: Error;
  /** Which side failed first. */
  failedSide?: 'tcp' | 'tunnel';
}

/**
 * Copies bytes both ways between a TCP socket and an HBONE stream with TCP semantics (spec §1.3, RFC 9113 §8.5):
 * - half-close: a FIN from TCP becomes END_STREAM and END_STREAM becomes a FIN, each direction on its own, so a
 *   client that ends writing still reads the reply;
 * - resets: a TCP error or RST becomes RST_STREAM(CONNECT_ERROR), and an RST_STREAM becomes a TCP RST;
 * - backpressure: pipe() stops reading a side whose peer is not draining, so memory stays within the HTTP/2
 *   windows and the socket buffers.
 * We destroy nothing on a clean end: each side closes once both directions have finished, so the final bytes
 * are flushed (a destroy() on stream close cut data in the prototype).
 */
export function splice(tcp: Socket, stream: Http2Stream): Promise<SpliceResult> {
  // A FIN from the TCP peer must not end our writing half: the reply may still be in the tunnel.
  tcp.allowHalfOpen = true;
  return new Promise((resolve) => {
    let tcpClosed = false;
    let streamClosed = false;
    let error: Error | undefined;
    let failedSide: 'tcp' | 'tunnel' | undefined;
    const finish = () => {
      if (!tcpClosed || !streamClosed) return;
      resolve({ bytesFromTcp: tcp.bytesRead, bytesFromTunnel: tcp.bytesWritten, ...(error ? { error, failedSide } : {}) });
    };
    tcp.on('error', (err) => {
      if (!error) { error = err; failedSide = 'tcp'; }
      if (!stream.destroyed) stream.close(h2c.NGHTTP2_CONNECT_ERROR);
    });
    tcp.once('close', () => {
      tcpClosed = true;
      // A TCP close without a clean finish of our writes (e.g. destroyed locally) must not leave the stream open.
      if (!stream.closed && !stream.destroyed && !(stream.writableEnded && stream.readableEnded)) {
        if (!tcp.readableEnded || !tcp.writableFinished) stream.close(h2c.NGHTTP2_CONNECT_ERROR);
      }
      finish();
    });
    stream.on('error', (err) => {
      if (!error) { error = err; failedSide = 'tunnel'; }
    });
    stream.once('close', () => {
      streamClosed = true;
      const reset = stream.rstCode !== undefined && stream.rstCode !== h2c.NGHTTP2_NO_ERROR;
      if (reset) {
        if (!error) { error = new Error(`HBONE stream reset (code ${stream.rstCode})`); failedSide = 'tunnel'; }
        if (!tcp.destroyed) tcp.resetAndDestroy();
      } else if (!tcp.destroyed && tcp.writableFinished && tcp.readableEnded) {
        tcp.destroy();
      }
      finish();
    });
    tcp.pipe(stream);
    // END_STREAM becomes a FIN, but a reset must become an RST. Node ends the readable side of a reset stream as
    // well, and reports the reset ('aborted', rstCode) only after 'end'; so the FIN waits one turn of the event
    // loop, and a FIN sent first would let the app take the reset for a clean close.
    let aborted = false;
    stream.once('aborted', () => { aborted = true; });
    stream.pipe(tcp, { end: false });
    stream.once('end', () => setImmediate(() => {
      if (aborted || (stream.rstCode !== undefined && stream.rstCode !== h2c.NGHTTP2_NO_ERROR)) {
        if (!tcp.destroyed) tcp.resetAndDestroy();
      } else if (!tcp.destroyed) {
        tcp.end();
      }
    }));
  });
}
