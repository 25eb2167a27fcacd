import type { Http2Session } from 'node:http2';

/**
 * HTTP/2 PING keepalive: a PING every `intervalMs`; a connection whose PING is unanswered for `timeoutMs` is dead
 * and is destroyed with `onDead`'s error, which fails its streams (both ztunnel sides use 10 s / 20 s).
 */
export function startKeepalive(session: Http2Session, intervalMs: number, timeoutMs: number, onDead: () => Error): () => void {
  let outstandingSince: number | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const tick = setInterval(() => {
    if (session.destroyed || session.closed) return;
    if (outstandingSince !== undefined) return;
    outstandingSince = Date.now();
    const sent = session.ping((err) => {
      if (err) return; // session going away; 'close' cleans up
      outstandingSince = undefined;
      clearTimeout(deadline);
    });
    if (!sent) { outstandingSince = undefined; return; }
    deadline = setTimeout(() => {
      if (outstandingSince !== undefined && !session.destroyed) session.destroy(onDead());
    }, timeoutMs);
    deadline.unref();
  }, intervalMs);
  tick.unref();
  const stop = () => { clearInterval(tick); clearTimeout(deadline); };
  session.once('close', stop);
  return stop;
}
