import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import net, { type Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { pino, type Logger } from 'pino';
import { parseUriSans } from '@ambit/pki';
import { HboneError } from './errors.js';
import { H2_DEFAULTS, HBONE_ALPN, secureContextOptions, type Credentials } from './tls-options.js';
import { startKeepalive } from './keepalive.js';

export interface Endpoint {
  host: string;
  port: number;
}

export interface HboneClientOptions {
  /** TLS material of a source identity; called for each new connection, so rotated certificates are picked up. */
  getCredentials: (sourceIdentity: string) => Credentials | Promise<Credentials>;
  /**
   * Creates the TCP socket toward the HBONE peer. The node agent passes a socket created inside the source pod's
   * network namespace with the agent mark set. It may return a connecting socket. Default: net.connect.
   */
  createSocket?: (destination: Endpoint, sourceAddress: string | undefined) => Socket;
  maxStreamsPerConnection?: number;
  idleTimeoutMs?: number;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  connectTimeoutMs?: number;
  streamWindow?: number;
  connectionWindow?: number;
  maxFrameSize?: number;
  logger?: Logger;
}

export interface ConnectRequest {
  sourceIdentity: string;
  /** The server must present one of these URI SANs. */
  destinationIdentities: string[];
  /** The HBONE peer, usually podIP:15008. */
  destination: Endpoint;
  /** The CONNECT :authority, the original destination `ip:port` (see formatAuthority). */
  authority: string;
  /** Part of the pool key; the node agent pools per source pod. */
  sourceAddress?: string;
  /** baggage, forwarded, traceparent, ... */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface HboneTunnel {
  /** A duplex carrying the TCP bytes; END_STREAM is the FIN (see splice()). */
  stream: ClientHttp2Stream;
  responseHeaders: IncomingHttpHeaders;
  /** The server's verified URI SAN. */
  peerIdentity: string;
  /** Id of the pooled connection carrying this stream (for tests and debugging). */
  connectionId: number;
}

interface PooledConnection {
  id: number;
  key: string;
  session: ClientHttp2Session | undefined;
  ready: Promise<ClientHttp2Session>;
  peerIdentity: string;
  /** Streams open or reserved on this connection. */
  active: number;
  maxStreams: number;
  draining: boolean;
  /** Set when the server sent GOAWAY: streams above it were not processed. */
  goawayLastStreamId: number | undefined;
  /** GOAWAY error code when the peer refused the connection. */
  refusedWith?: number;
  idleTimer: NodeJS.Timeout | undefined;
}

let nextConnectionId = 1;

/**
 * HBONE client: HTTP/2 CONNECT over mutual TLS 1.3, with ztunnel's pooling (spec §1.4). Connections are keyed by
 * (source identity, destination identities, destination address, source address); each carries up to
 * `maxStreamsPerConnection` streams, then a new connection opens; concurrent first requests for a key share one
 * handshake; idle connections close after 5 minutes; PING keepalive detects dead peers.
 */
export class HboneClient {
  private readonly pool = new Map<string, PooledConnection[]>();
  private readonly o: Required<Omit<HboneClientOptions, 'logger' | 'createSocket'>> & Pick<HboneClientOptions, 'createSocket'>;
  private readonly log: Logger;
  private closed = false;

  constructor(options: HboneClientOptions) {
    this.o = {
      getCredentials: options.getCredentials,
      createSocket: options.createSocket,
      maxStreamsPerConnection: options.maxStreamsPerConnection ?? H2_DEFAULTS.clientMaxStreamsPerConnection,
      idleTimeoutMs: options.idleTimeoutMs ?? H2_DEFAULTS.poolIdleTimeoutMs,
      pingIntervalMs: options.pingIntervalMs ?? H2_DEFAULTS.pingIntervalMs,
      pingTimeoutMs: options.pingTimeoutMs ?? H2_DEFAULTS.pingTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs ?? H2_DEFAULTS.connectTimeoutMs,
      streamWindow: options.streamWindow ?? H2_DEFAULTS.streamWindow,
      connectionWindow: options.connectionWindow ?? H2_DEFAULTS.connectionWindow,
      maxFrameSize: options.maxFrameSize ?? H2_DEFAULTS.maxFrameSize,
    };
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'hbone-client' });
  }

  /** Opens a tunnel: resolves once the server answered 200; rejects with an HboneError otherwise. */
  async connect(req: ConnectRequest): Promise<HboneTunnel> {
    // A CONNECT the server refused unprocessed (REFUSED_STREAM, or past the last stream id of its GOAWAY while it
    // hands over to a new agent process) is safe to send again on another connection; HTTP/2 guarantees the
    // app never saw it (RFC 9113 §8.7).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.connectOnce(req);
      } catch (err) {
        if (!(err instanceof HboneError && err.retriable) || attempt >= 3) throw err;
        this.log.debug({ authority: req.authority, attempt, err: err.message }, 'retrying an unprocessed CONNECT');
      }
    }
  }

  private async connectOnce(req: ConnectRequest): Promise<HboneTunnel> {
    if (this.closed) throw new HboneError('AMB_ERR_HBONE_CLOSED', 'HBONE client is closed');
    if (req.destinationIdentities.length === 0) {
      throw new HboneError('AMB_ERR_HBONE_IDENTITY', `no expected identity for ${req.destination.host}:${req.destination.port}`);
    }
    const conn = this.reserve(req);
    let session: ClientHttp2Session;
    try {
      session = await conn.ready;
    } catch (err) {
      this.release(conn);
      throw err;
    }
    let stream: ClientHttp2Stream;
    if (session.closed || session.destroyed || conn.draining) {
      this.release(conn);
      // After a GOAWAY the peer is handing over (e.g. an agent upgrade): another connection will do. A connection
      // that died on its own right after the handshake was most likely refused (our identity): no retry.
      const goingAway = conn.goawayLastStreamId !== undefined;
      throw new HboneError('AMB_ERR_HBONE_RESET', goingAway
        ? `HBONE connection to ${endpointText(req.destination)} is going away`
        : `HBONE connection to ${endpointText(req.destination)} was closed by the peer right after the handshake; did it refuse our certificate?`,
      { retriable: goingAway });
    }
    try {
      stream = session.request({ ':method': 'CONNECT', ':authority': req.authority, ...req.headers }, { endStream: false, signal: req.signal } as http2.ClientSessionRequestOptions);
    } catch (err) {
      this.release(conn);
      throw new HboneError('AMB_ERR_HBONE_H2', `CONNECT ${req.authority} via ${endpointText(req.destination)}: ${(err as Error).message}`, { cause: err });
    }
    stream.once('close', () => this.release(conn));
    return new Promise<HboneTunnel>((resolve, reject) => {
      const unprocessed = () => stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM
        || (conn.goawayLastStreamId !== undefined && (stream.id === undefined || stream.id > conn.goawayLastStreamId));
      const refusedIdentity = () => conn.refusedWith === http2.constants.NGHTTP2_INADEQUATE_SECURITY
        ? new HboneError('AMB_ERR_HBONE_IDENTITY', `HBONE peer ${endpointText(req.destination)} refused our identity ${req.sourceIdentity} (GOAWAY INADEQUATE_SECURITY): is it in another trust domain?`)
        : undefined;
      const onError = (err: Error) => {
        reject(refusedIdentity() ?? new HboneError('AMB_ERR_HBONE_RESET', `CONNECT ${req.authority} via ${endpointText(req.destination)} failed: ${err.message}`, { cause: err, retriable: unprocessed() }));
      };
      const onClose = () => {
        reject(refusedIdentity() ?? new HboneError('AMB_ERR_HBONE_RESET', `CONNECT ${req.authority} via ${endpointText(req.destination)}: stream closed before a response (code ${stream.rstCode})`, { retriable: unprocessed() }));
      };
      stream.once('error', onError);
      stream.once('close', onClose);
      stream.once('response', (headers) => {
        stream.off('error', onError);
        stream.off('close', onClose);
        const status = Number(headers[':status']);
        if (status !== 200) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          stream.resume();
          reject(new HboneError('AMB_ERR_HBONE_STATUS', `CONNECT ${req.authority} via ${endpointText(req.destination)} answered ${status}${statusMeaning(status)}`, { status }));
          return;
        }
        resolve({ stream, responseHeaders: headers, peerIdentity: conn.peerIdentity, connectionId: conn.id });
      });
    });
  }

  /** Connections per key and streams in use, for tests, debugging and config dumps. */
  stats(): { connections: number; streams: number; keys: number } {
    let connections = 0;
    let streams = 0;
    for (const list of this.pool.values()) for (const c of list) { connections++; streams += c.active; }
    return { connections, streams, keys: this.pool.size };
  }

  /** Sends GOAWAY on every connection and lets open streams finish. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.pool.values()].flat();
    await Promise.all(all.map((c) => new Promise<void>((resolve) => {
      clearTimeout(c.idleTimer);
      if (!c.session || c.session.closed || c.session.destroyed) return resolve();
      c.session.close(() => resolve());
    })));
  }

  destroy(): void {
    this.closed = true;
    for (const c of [...this.pool.values()].flat()) {
      clearTimeout(c.idleTimer);
      c.session?.destroy();
    }
    this.pool.clear();
  }

  private keyOf(req: ConnectRequest): string {
    return [req.sourceIdentity, [...req.destinationIdentities].sort().join(','), endpointText(req.destination), req.sourceAddress ?? ''].join('|');
  }

  private reserve(req: ConnectRequest): PooledConnection {
    const key = this.keyOf(req);
    const list = this.pool.get(key) ?? [];
    let conn = list.find((c) => !c.draining && c.active < c.maxStreams);
    if (!conn) {
      conn = this.open(key, req);
      list.push(conn);
      this.pool.set(key, list);
    }
    conn.active++;
    clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    return conn;
  }

  private release(conn: PooledConnection): void {
    conn.active--;
    if (conn.active === 0 && !conn.draining && conn.session && !conn.session.destroyed) {
      conn.idleTimer = setTimeout(() => {
        if (conn.active === 0) {
          this.log.debug({ connection: conn.id }, 'closing idle HBONE connection');
          this.remove(conn);
          conn.session?.close();
        }
      }, this.o.idleTimeoutMs);
      conn.idleTimer.unref();
    }
  }

  private remove(conn: PooledConnection): void {
    conn.draining = true;
    const list = this.pool.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.pool.delete(conn.key);
  }

  private open(key: string, req: ConnectRequest): PooledConnection {
    const conn: PooledConnection = {
      id: nextConnectionId++, key, session: undefined, ready: undefined as unknown as Promise<ClientHttp2Session>,
      peerIdentity: '', active: 0, maxStreams: this.o.maxStreamsPerConnection, draining: false, goawayLastStreamId: undefined, idleTimer: undefined,
    };
    const where = endpointText(req.destination);
    conn.ready = (async () => {
      const creds = await this.o.getCredentials(req.sourceIdentity);
      const expected = new Set(req.destinationIdentities);
      return await new Promise<ClientHttp2Session>((resolve, reject) => {
        let settled = false;
        const fail = (err: HboneError) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.remove(conn);
          this.log.warn({ connection: conn.id, peer: where, err: err.message }, 'HBONE connection failed');
          reject(err);
          session.destroy();
        };
        const raw = this.o.createSocket ? this.o.createSocket(req.destination, req.sourceAddress)
          : net.connect({ host: req.destination.host, port: req.destination.port, ...(req.sourceAddress ? { localAddress: req.sourceAddress } : {}) });
        raw.setNoDelay(true);
        const tlsSocket: TLSSocket = tls.connect({
          socket: raw,
          ...secureContextOptions(creds),
          ALPNProtocols: [HBONE_ALPN],
          // No SNI: the server picks its certificate by the pod whose netns the listener lives in.
          servername: '',
          rejectUnauthorized: true,
          // Istio certificates carry only a URI SAN: the default hostname check does not apply. The chain was
          // already verified against the mesh roots; here we require one of the expected identities.
          checkServerIdentity: (_host, cert) => {
            const sans = parseUriSans(cert.subjectaltname ?? '');
            const match = sans.find((s) => expected.has(s));
            if (!match) {
              return new HboneError('AMB_ERR_HBONE_IDENTITY', `HBONE peer ${where} presented ${sans.join(', ') || 'no URI SAN'}, expected one of ${[...expected].join(', ')}`);
            }
            conn.peerIdentity = match;
            return undefined;
          },
        });
        const session = http2.connect(`https://${where}`, {
          createConnection: () => tlsSocket,
          settings: {
            enablePush: false,
            initialWindowSize: this.o.streamWindow,
            maxFrameSize: this.o.maxFrameSize,
            maxHeaderListSize: H2_DEFAULTS.clientMaxHeaderList,
          },
          // Node's default of 10 MB counts unacknowledged outbound data; with 4 MiB stream windows a handful of
          // busy streams would trip it and get ENHANCE_YOUR_CALM.
          maxSessionMemory: 256,
        });
        conn.session = session;
        const timer = setTimeout(() => fail(new HboneError('AMB_ERR_HBONE_TIMEOUT',
          `connection to ${where} timed out after ${this.o.connectTimeoutMs} ms; maybe a NetworkPolicy is blocking HBONE port ${req.destination.port}`)), this.o.connectTimeoutMs);
        timer.unref();
        session.on('error', (err: Error) => {
          if (!settled) fail(classifyConnectError(err, where));
          else this.log.debug({ connection: conn.id, err: err.message }, 'HBONE connection error');
        });
        session.once('connect', () => {
          if (session.alpnProtocol !== HBONE_ALPN) {
            fail(new HboneError('AMB_ERR_HBONE_H2', `HBONE peer ${where} did not negotiate ALPN h2`));
            return;
          }
          settled = true;
          clearTimeout(timer);
          session.setLocalWindowSize(this.o.connectionWindow);
          startKeepalive(session, this.o.pingIntervalMs, this.o.pingTimeoutMs, () =>
            new HboneError('AMB_ERR_HBONE_KEEPALIVE', `HBONE peer ${where} did not answer PING within ${this.o.pingTimeoutMs} ms`));
          this.log.debug({ connection: conn.id, peer: where, identity: conn.peerIdentity }, 'HBONE connection up');
          resolve(session);
        });
        session.on('remoteSettings', (s) => {
          if (s.maxConcurrentStreams !== undefined) conn.maxStreams = Math.min(this.o.maxStreamsPerConnection, s.maxConcurrentStreams);
        });
        session.on('goaway', (code: number, lastStreamId: number) => {
          this.log.debug({ connection: conn.id, peer: where, code, lastStreamId, active: conn.active }, 'HBONE peer sent GOAWAY');
          // Only a graceful GOAWAY (NO_ERROR) is a hand-over whose unprocessed streams may be retried elsewhere; an
          // error code means the peer refused us (e.g. INADEQUATE_SECURITY for a client of another trust domain).
          if (code === http2.constants.NGHTTP2_NO_ERROR) conn.goawayLastStreamId = lastStreamId;
          else conn.refusedWith = code;
          this.remove(conn);
        });
        session.once('close', () => {
          this.log.debug({ connection: conn.id, peer: where, active: conn.active }, 'HBONE connection closed');
          clearTimeout(conn.idleTimer);
          this.remove(conn);
          if (!settled) fail(new HboneError('AMB_ERR_HBONE_CONNECT', `HBONE connection to ${where} closed during setup`));
        });
      });
    })();
    conn.ready.catch(() => { /* each waiter handles it */ });
    return conn;
  }
}

function endpointText(e: Endpoint): string {
  return net.isIPv6(e.host) ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function classifyConnectError(err: Error & { code?: string }, where: string): HboneError {
  if (err instanceof HboneError) return err;
  const code = err.code ?? '';
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code) && !/TLS|SSL/i.test(err.message)) {
    return new HboneError('AMB_ERR_HBONE_CONNECT', `connect to ${where} failed: ${code}${code === 'ECONNREFUSED' ? ' (nothing listens on the HBONE port)' : ''}`, { cause: err });
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /SSL|TLS|certificate/i.test(err.message)) {
    return new HboneError('AMB_ERR_HBONE_TLS', `TLS handshake with ${where} failed: ${err.message}`, { cause: err });
  }
  return new HboneError('AMB_ERR_HBONE_H2', `HTTP/2 connection to ${where} failed: ${err.message}`, { cause: err });
}

function statusMeaning(status: number): string {
  switch (status) {
    case 400: return ' (bad request: not CONNECT, bad authority, or an illegal or foreign target)';
    case 401: return ' (authorization denied by the destination)';
    case 503: return ' (destination could not reach the app, or the workload is unknown)';
    default: return '';
  }
}
