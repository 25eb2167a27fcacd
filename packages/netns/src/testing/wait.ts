// Deadline-bound waiting for tests: no bare sleeps.
import { once } from 'node:events';
import type net from 'node:net';

/** Resolves with the server's next connection, or rejects after timeoutMs naming what was awaited. */
export function nextConnection(server: net.Server, what: string, timeoutMs = 3000): Promise<net.Socket> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      server.off('connection', onConnection);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a connection on ${what}`));
    }, timeoutMs);
    const onConnection = (s: net.Socket): void => { clearTimeout(timer); resolvePromise(s); };
    server.once('connection', onConnection);
  });
}

/** Waits for an event with a deadline. */
export async function waitForEvent(emitter: NodeJS.EventEmitter, event: string, what: string, timeoutMs = 3000): Promise<unknown[]> {
  return once(emitter, event, { signal: AbortSignal.timeout(timeoutMs) }).catch((err: Error) => {
    throw new Error(`timed out after ${timeoutMs} ms waiting for '${event}' on ${what}`, { cause: err });
  });
}

/** Reads until `bytes` bytes arrived, with a deadline. */
export function readBytes(socket: net.Socket, bytes: number, what: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let data = '';
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out reading ${bytes} bytes from ${what}; got '${data}'`)); }, timeoutMs);
    const onData = (d: Buffer): void => {
      data += d.toString('utf8');
      if (data.length >= bytes) { cleanup(); resolvePromise(data); }
    };
    const onError = (err: Error): void => { cleanup(); reject(err); };
    const cleanup = (): void => { clearTimeout(timer); socket.off('data', onData); socket.off('error', onError); };
    socket.on('data', onData);
    socket.on('error', onError);
  });
}

/** Polls `condition` every 10 ms until it holds, failing after timeoutMs with `what`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
