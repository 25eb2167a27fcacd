// Keep-alive HTTP/1.1 connections toward upstream endpoints, for Node's http.request (it is the request's `agent`).
// Node's http.Agent counts a connection only once its createConnection callback ran, so with connections that take
// a round trip to open (an HBONE CONNECT) a burst opened one per request, and closed all but maxFreeSockets of them
// again when they came free: under load a new tunnel per request. Here a connection counts from the moment it is
// asked for, at most `maxConnections` exist per key, requests beyond wait in order for one to come free, and a free
// connection stays open until the key's idle timeout (Envoy's HTTP/1.1 connection pool).
import type { ClientRequest } from 'node:http';
import type { Duplex } from 'node:stream';

/** What the pool needs to know about one request's connection. */
export interface Http1PoolTarget {
  /** Connections of one key are interchangeable (endpoint, cluster, TLS settings). */
  readonly key: string;
  /** Opens a new connection (rejects with the error the request fails with). */
  open(): Promise<Duplex>;
  /** A connection without requests for this long is closed; undefined: kept until the peer closes it. */
  readonly idleTimeoutMs?: number;
  /** 0: unlimited. */
  readonly maxRequestsPerConnection: number;
}

interface Conn {
  readonly socket: Duplex;
  readonly key: string;
  readonly target: Http1PoolTarget;
  served: number;
  idle: boolean;
  idleSince: number;
}

interface Waiting {
  readonly req: ClientRequest;
  readonly target: Http1PoolTarget;
}

interface KeyState {
  /** Open and opening connections. */
  total: number;
  /** Free connections, most recently used last (reused first: the others reach their idle timeout). */
  readonly idle: Conn[];
  readonly waiting: Waiting[];
}

export interface Http1PoolStats {
  /** Keys with at least one connection (open or opening). */
  readonly keys: number;
  readonly connections: number;
  readonly idle: number;
  readonly waiting: number;
  /** Connections opened since the pool was created. */
  readonly opened: number;
}

/** ClientRequest as its agent drives it: onSocket(undefined, err) fails the request with err. */
type RequestWithTarget = Omit<ClientRequest, 'onSocket'> & { reusedSocket: boolean; onSocket(socket: Duplex | undefined, err?: Error): void };

/**
 * The `agent` of upstream HTTP/1.1 requests. Each request names its target in the `ambitPool` request option.
 * Node's client hands a connection back with the socket's 'free' event once a response ended and the connection
 * may carry another request (it closes the connection itself otherwise).
 */
export class Http1Pool {
  // What ClientRequest reads from its agent.
  readonly keepAlive = true;
  readonly maxSockets: number;
  readonly protocol = 'http:';
  readonly defaultPort = 80;
  readonly options = {};

  private readonly keys = new Map<string, KeyState>();
  private readonly conns = new WeakMap<Duplex, Conn>();
  private opened = 0;
  private closed = false;
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly o: { readonly maxConnections: number; readonly sweepIntervalMs?: number; readonly now?: () => number; readonly onError?: (err: Error) => void }) {
    this.maxSockets = o.maxConnections;
    this.sweep = setInterval(() => this.closeIdle(), o.sweepIntervalMs ?? 1000);
    this.sweep.unref();
  }

  /** Called by ClientRequest. */
  addRequest(req: ClientRequest, options: { ambitPool?: Http1PoolTarget }): void {
    const target = options.ambitPool;
    if (!target) throw new Error('Http1Pool: request without an ambitPool target');
    if (this.closed) { (req as unknown as RequestWithTarget).onSocket(undefined, new Error('upstream connection pool is closed')); return; }
    const k = this.keyState(target.key);
    const conn = this.takeIdle(k);
    if (conn) { this.assign(conn, req as unknown as RequestWithTarget, true); return; }
    if (k.total < this.o.maxConnections) { this.connect(k, target, req as unknown as RequestWithTarget); return; }
    k.waiting.push({ req, target });
  }

  stats(): Http1PoolStats {
    let connections = 0;
    let idle = 0;
    let waiting = 0;
    for (const k of this.keys.values()) { connections += k.total; idle += k.idle.length; waiting += k.waiting.length; }
    return { keys: this.keys.size, connections, idle, waiting, opened: this.opened };
  }

  destroy(): void {
    this.closed = true;
    clearInterval(this.sweep);
    for (const k of this.keys.values()) {
      for (const w of k.waiting.splice(0)) w.req.destroy(new Error('upstream connection pool is closed'));
      for (const c of k.idle.splice(0)) c.socket.destroy();
    }
  }

  private keyState(key: string): KeyState {
    let k = this.keys.get(key);
    if (!k) { k = { total: 0, idle: [], waiting: [] }; this.keys.set(key, k); }
    return k;
  }

  private takeIdle(k: KeyState): Conn | undefined {
    while (k.idle.length) {
      const c = k.idle.pop()!;
      c.idle = false;
      if (!c.socket.destroyed && c.socket.writable && !c.socket.readableEnded) return c;
      c.socket.destroy();
    }
    return undefined;
  }

  private connect(k: KeyState, target: Http1PoolTarget, req: RequestWithTarget): void {
    k.total++;
    this.opened++;
    target.open().then((socket) => {
      const c: Conn = { socket, key: target.key, target, served: 0, idle: false, idleSince: 0 };
      this.conns.set(socket, c);
      // Installed once per connection (not per request): between requests Node's client leaves no error listener.
      socket.on('error', (err: Error) => { if (c.idle) this.o.onError?.(err); });
      // The app closing an idle keep-alive connection half-closes the stream only: such a connection must not carry
      // the next request, which would never be answered.
      socket.on('end', () => { if (c.idle) socket.destroy(); });
      socket.on('free', () => this.release(c));
      socket.once('close', () => this.forget(c));
      socket.once('agentRemove', () => this.forget(c));
      if (this.closed) { socket.destroy(); req.onSocket(undefined, new Error('upstream connection pool is closed')); return; }
      this.assign(c, req, false);
    }, (err: Error) => {
      k.total--;
      req.onSocket(undefined, err);
      if (k.total === 0 && k.waiting.length === 0) this.keys.delete(target.key);
      this.next(k);
    });
  }

  private assign(c: Conn, req: RequestWithTarget, reused: boolean): void {
    c.served++;
    req.reusedSocket = reused;
    req.onSocket(c.socket);
  }

  /** A response ended and Node's client gave the connection back. */
  private release(c: Conn): void {
    (c.socket as Duplex & { _httpMessage?: unknown })._httpMessage = null;
    const max = c.target.maxRequestsPerConnection;
    if (c.socket.destroyed || !c.socket.writable || c.socket.readableEnded || (max > 0 && c.served >= max)) {
      // 'close' frees its place; a waiting request then gets a new connection.
      c.socket.destroy();
      return;
    }
    const k = this.keyState(c.key);
    for (let w = k.waiting.shift(); w; w = k.waiting.shift()) {
      if (w.req.destroyed) continue;
      this.assign(c, w.req as unknown as RequestWithTarget, true);
      return;
    }
    c.idle = true;
    c.idleSince = (this.o.now ?? Date.now)();
    k.idle.push(c);
  }

  private forget(c: Conn): void {
    const k = this.keys.get(c.key);
    if (!k || !this.conns.has(c.socket)) return;
    this.conns.delete(c.socket);
    k.total--;
    const i = k.idle.indexOf(c);
    if (i >= 0) k.idle.splice(i, 1);
    this.next(k);
    if (k.total === 0 && k.waiting.length === 0) this.keys.delete(c.key);
  }

  /** A place came free: the oldest waiting request gets a new connection. */
  private next(k: KeyState): void {
    while (k.waiting.length && k.total < this.o.maxConnections) {
      const w = k.waiting.shift()!;
      if (w.req.destroyed) continue;
      this.connect(k, w.target, w.req as unknown as RequestWithTarget);
    }
  }

  private closeIdle(): void {
    const now = (this.o.now ?? Date.now)();
    for (const k of this.keys.values()) {
      for (const c of [...k.idle]) {
        const limit = c.target.idleTimeoutMs;
        if (limit !== undefined && now - c.idleSince >= limit) c.socket.destroy();
      }
    }
  }
}
