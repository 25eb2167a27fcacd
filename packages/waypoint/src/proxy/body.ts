import type { Readable, Writable } from 'node:stream';

/**
 * A request body that can be sent more than once (retries) and copied (mirrors) while it streams: chunks flow to
 * the current upstream with backpressure (the client is paused while the upstream is not draining) and are kept
 * until `limit` bytes. Past the limit the copy is dropped: the body still streams, but can no longer be replayed
 * (Envoy does the same with its per-request buffer limit), so memory per request stays bounded.
 */
export class ReplayableBody {
  private chunks: Buffer[] = [];
  private kept = 0;
  private overflow = false;
  private sink: Writable | undefined;
  private ended = false;
  private failed: Error | undefined;
  private waitingDrain = false;
  private completeWaiters: Array<(b: Buffer | undefined) => void> = [];
  /** Bytes received from the client so far. */
  total = 0;

  constructor(private readonly source: Readable, private readonly limit: number) {
    source.pause();
    source.on('data', (c: Buffer) => this.onData(c));
    source.once('end', () => {
      this.ended = true;
      this.sink?.end();
      for (const w of this.completeWaiters.splice(0)) w(this.overflow ? undefined : Buffer.concat(this.chunks));
    });
    source.once('error', (err) => {
      this.failed = err;
      this.sink?.destroy(err);
      for (const w of this.completeWaiters.splice(0)) w(undefined);
    });
    source.once('aborted', () => { this.failed ??= new Error('client aborted the request'); });
  }

  /** Whether another attempt may still send the whole body. */
  get replayable(): boolean {
    return !this.overflow && !this.failed;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** Streams the body into `sink` (from the start). Returns false when that is no longer possible. */
  attach(sink: Writable): boolean {
    if (this.sink && this.sink !== sink) this.detach();
    if (this.overflow && this.total > 0) return false;
    if (this.failed) return false;
    this.sink = sink;
    for (const c of this.chunks) sink.write(c);
    if (this.ended) sink.end();
    else this.source.resume();
    return true;
  }

  /** Stops sending to the current sink (its attempt failed); the client is paused until the next attach. */
  detach(): void {
    this.sink = undefined;
    this.waitingDrain = false;
    if (!this.ended) this.source.pause();
  }

  /** The whole body once received, or undefined when it was too big to keep (or the client failed). */
  whenComplete(): Promise<Buffer | undefined> {
    if (this.ended) return Promise.resolve(this.overflow ? undefined : Buffer.concat(this.chunks));
    if (this.failed) return Promise.resolve(undefined);
    // Nothing consumes the body yet: read it so the mirror can go out.
    if (!this.sink) this.source.resume();
    return new Promise((resolve) => this.completeWaiters.push(resolve));
  }

  /** Reads and drops the rest of the body (local replies), bounded by the same limit per chunk. */
  discard(): void {
    this.sink = undefined;
    this.source.resume();
  }

  private onData(c: Buffer): void {
    this.total += c.length;
    if (!this.overflow) {
      if (this.kept + c.length > this.limit) {
        this.overflow = true;
        this.chunks = [];
        this.kept = 0;
      } else {
        this.chunks.push(c);
        this.kept += c.length;
      }
    }
    const sink = this.sink;
    if (!sink) {
      // No attempt is reading: keep the client paused unless someone waits for the whole body (mirror) or it is
      // being discarded; when the copy overflowed the bytes are lost, and so is replay.
      return;
    }
    if (!sink.write(c) && !this.waitingDrain) {
      this.waitingDrain = true;
      this.source.pause();
      sink.once('drain', () => {
        this.waitingDrain = false;
        if (this.sink === sink && !this.ended) this.source.resume();
      });
    }
  }
}
