import http2, {
  type Http2SecureServer, type Http2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { pino, type Logger } from 'pino';
import { HBONE_STATUS, ILLEGAL_TARGET_PORTS, parseSpiffeId } from '@ambit/api';
import { parseUriSans } from '@ambit/pki';
import { parseAuthority, type Authority } from './headers.js';
import { H2_DEFAULTS, HBONE_ALPN, secureContextOptions, type Credentials } from './tls-options.js';
import { startKeepalive } from './keepalive.js';
import { HboneError } from './errors.js';

/** One CONNECT that passed the protocol checks, handed to the application. */
export interface HboneRequest {
  authority: Authority;
  /** The raw :authority value. */
  authorityText: string;
  /** The client's verified SPIFFE identity (URI SAN of its certificate). */
  peerIdentity: string;
  /** The TCP peer of the HBONE connection. */
  peerAddress: { address: string; port: number };
  /** The local end of the HBONE connection (with TPROXY, the pod address the peer dialled). */
  localAddress: { address: string; port: number };
  headers: IncomingHttpHeaders;
  /** Answers 200 and returns the stream carrying the tunnelled bytes (splice it with the app's socket). */
  accept(headers?: OutgoingHttpHeaders): ServerHttp2Stream;
  /** Answers an error status (400 / 401 / 503) and ends the stream. */
  reject(status: number, reason: string): void;
  /** Resolves when the stream closed, whatever the outcome. */
  closed: Promise<void>;
}

export interface HboneServerOptions {
  credentials: Credentials;
  /** Clients must present a certificate of this trust domain (spec §1.2); which peer is left to authorization. */
  trustDomain: string;
  onConnect: (req: HboneRequest) => void | Promise<void>;
  /** Resolved target ports refused with 400; default 15001, 15006, 15008. */
  illegalPorts?: ReadonlySet<number>;
  maxConcurrentStreams?: number;
  streamWindow?: number;
  connectionWindow?: number;
  maxFrameSize?: number;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  logger?: Logger;
}

/**
 * HBONE server: terminates mutual TLS 1.3 (ALPN h2), accepts clients of its trust domain, checks each CONNECT
 * (method, authority, illegal ports) and hands valid ones to `onConnect`. Bad input gets the documented status
 * or a closed connection and one log line with the reason; nothing else is disturbed.
 */
export class HboneServer {
  readonly server: Http2SecureServer;
  private readonly sessions = new Set<Http2Session>();
  private readonly log: Logger;
  private readonly illegalPorts: ReadonlySet<number>;

  constructor(private readonly options: HboneServerOptions) {
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'hbone-server' });
    this.illegalPorts = options.illegalPorts ?? ILLEGAL_TARGET_PORTS;
    this.server = http2.createSecureServer({
      ...secureContextOptions(options.credentials),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: [HBONE_ALPN],
      allowHTTP1: false,
      settings: {
        enablePush: false,
        initialWindowSize: options.streamWindow ?? H2_DEFAULTS.streamWindow,
        maxFrameSize: options.maxFrameSize ?? H2_DEFAULTS.maxFrameSize,
        maxConcurrentStreams: options.maxConcurrentStreams ?? H2_DEFAULTS.serverMaxConcurrentStreams,
        maxHeaderListSize: H2_DEFAULTS.serverMaxHeaderList,
      },
      maxSessionMemory: 256,
      // Bad peers are answered at once, not after Node's default 10 s.
      unknownProtocolTimeout: 1,
      // Small frames (request heads, WINDOW_UPDATEs, PINGs) go out at once instead of waiting for Nagle.
      noDelay: true,
    });
    this.server.on('session', (s) => this.onSession(s));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      this.log.warn({ peer: peerText(socket), reason: tlsReason(err, socket.authorizationError) }, 'HBONE TLS handshake refused');
    });
    this.server.on('unknownProtocol', (socket: TLSSocket) => {
      this.log.warn({ peer: peerText(socket), alpn: socket.alpnProtocol || 'none' }, 'HBONE connection refused: client did not negotiate ALPN h2');
      socket.destroy();
    });
    this.server.on('sessionError', (err: Error) => this.log.debug({ err: err.message }, 'HBONE session error'));
  }

  /** Listens on a port, or on a listening fd created elsewhere (e.g. inside a pod's network namespace). */
  listen(target: number | { port: number; host?: string } | { fd: number }): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => { this.server.off('error', reject); resolve(this.server.address() as AddressInfo); };
      if (typeof target === 'number') this.server.listen(target, '127.0.0.1', done);
      else this.server.listen(target, done);
    });
  }

  /** Serves a TCP connection accepted elsewhere. */
  handleConnection(socket: Socket): void {
    socket.setNoDelay(true);
    this.server.emit('connection', socket);
  }

  /** Swaps the certificate (rotation); established connections keep theirs. */
  setCredentials(credentials: Credentials): void {
    this.server.setSecureContext({ ...secureContextOptions(credentials) });
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  /**
   * Stops accepting, sends GOAWAY on every connection and waits until in-flight streams have finished (or until
   * `timeoutMs`, after which the rest are destroyed).
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) if (!s.closed) s.close();
    if (options.timeoutMs !== undefined) {
      const t = setTimeout(() => { for (const s of this.sessions) s.destroy(); }, options.timeoutMs);
      t.unref();
      await closed;
      clearTimeout(t);
    } else {
      await closed;
    }
  }

  private onSession(session: Http2Session): void {
    const socket = session.socket as TLSSocket;
    const peer = peerText(socket);
    const cert = socket.getPeerCertificate();
    const sans = parseUriSans(cert?.subjectaltname ?? '');
    const id = sans.length === 1 ? parseSpiffeId(sans[0]!) : undefined;
    if (!id || id.trustDomain !== this.options.trustDomain) {
      this.log.warn({ peer, identity: sans.join(',') || 'none', reason: id ? `trust domain ${id.trustDomain} is not ${this.options.trustDomain}` : 'client certificate has no SPIFFE URI SAN' },
        'HBONE connection refused: client identity not in this trust domain');
      // A GOAWAY with INADEQUATE_SECURITY tells the client this is a refusal, not a hand-over it may retry.
      (session as Http2Session & { ambitRefused?: boolean }).ambitRefused = true;
      const refuse = () => {
        session.goaway(http2.constants.NGHTTP2_INADEQUATE_SECURITY);
        setImmediate(() => session.destroy());
      };
      if (session.connecting) session.once('connect', refuse);
      else refuse();
      return;
    }
    (session as Http2Session & { ambitPeerIdentity?: string }).ambitPeerIdentity = sans[0];
    this.sessions.add(session);
    session.once('close', () => { this.sessions.delete(session); this.log.debug({ peer }, 'HBONE connection closed'); });
    session.on('error', (err) => this.log.debug({ peer, err: err.message }, 'HBONE connection error'));
    session.on('frameError', (type, code, streamId) => this.log.warn({ peer, type, code, streamId }, 'HBONE frame refused'));
    session.once('connect', () => session.setLocalWindowSize(this.options.connectionWindow ?? H2_DEFAULTS.connectionWindow));
    if (!session.connecting) session.setLocalWindowSize(this.options.connectionWindow ?? H2_DEFAULTS.connectionWindow);
    startKeepalive(session, this.options.pingIntervalMs ?? H2_DEFAULTS.pingIntervalMs, this.options.pingTimeoutMs ?? H2_DEFAULTS.pingTimeoutMs,
      () => new Error(`HBONE client ${peer} did not answer PING`));
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const session = stream.session as (Http2Session & { ambitPeerIdentity?: string; ambitRefused?: boolean }) | undefined;
    if (!session || session.ambitRefused) {
      // The connection itself was refused (logged once); its streams are not processed.
      stream.on('error', () => {});
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const socket = session?.socket as TLSSocket | undefined;
    const peer = socket ? peerText(socket) : 'unknown';
    stream.on('error', (err) => this.log.debug({ peer, err: err.message }, 'HBONE stream error'));
    const method = headers[':method'];
    const authorityText = headers[':authority'];
    const refuse = (status: number, reason: string) => {
      this.log.warn({ peer, method, authority: authorityText, status, reason }, 'HBONE request refused');
      if (!stream.headersSent && !stream.destroyed) stream.respond({ ':status': status }, { endStream: true });
      stream.resume();
    };
    if (method !== 'CONNECT') return refuse(HBONE_STATUS.badRequest, `method ${method ?? 'none'} is not CONNECT`);
    const authority = parseAuthority(typeof authorityText === 'string' ? authorityText : undefined);
    if (!authority) return refuse(HBONE_STATUS.badRequest, `authority "${authorityText ?? ''}" is not ip:port or host:port`);
    if (this.illegalPorts.has(authority.port)) return refuse(HBONE_STATUS.badRequest, `target port ${authority.port} is one of the agent's own ports`);
    let answered = false;
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    const req: HboneRequest = {
      authority,
      authorityText: authorityText!,
      peerIdentity: session?.ambitPeerIdentity ?? '',
      peerAddress: { address: socket?.remoteAddress ?? '', port: socket?.remotePort ?? 0 },
      localAddress: { address: socket?.localAddress ?? '', port: socket?.localPort ?? 0 },
      headers,
      accept: (extra) => {
        if (answered) throw new Error('HBONE request already answered');
        answered = true;
        if (stream.destroyed || stream.closed) {
          throw new HboneError('AMB_ERR_HBONE_CLOSED', `HBONE client ${peer} went away before CONNECT ${authorityText} was answered`);
        }
        stream.respond({ ':status': HBONE_STATUS.ok, ...extra });
        return stream;
      },
      reject: (status, reason) => {
        if (answered) return;
        answered = true;
        refuse(status, reason);
      },
      closed,
    };
    Promise.resolve()
      .then(() => this.options.onConnect(req))
      .catch((err: Error) => {
        if (!answered) { answered = true; refuse(HBONE_STATUS.unavailable, `handler failed: ${err.message}`); }
        else if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
      });
  }
}

function peerText(socket: Socket): string {
  const a = socket.remoteAddress ?? 'unknown';
  return `${a.includes(':') ? `[${a}]` : a}:${socket.remotePort ?? 0}`;
}

/**
 * Why a handshake failed, in words. Node verifies the client chain after OpenSSL's handshake and then destroys the
 * socket without an error of its own ("socket hang up"), leaving the verdict in `authorizationError`.
 */
function tlsReason(err: Error & { code?: string }, authorizationError?: Error | string): string {
  const code = typeof authorizationError === 'string' ? authorizationError : (authorizationError as { code?: string } | undefined)?.code;
  switch (code) {
    case undefined: break;
    case 'CERT_HAS_EXPIRED': return 'client certificate expired';
    case 'CERT_NOT_YET_VALID': return 'client certificate not yet valid';
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY': case 'UNABLE_TO_GET_ISSUER_CERT': case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN': case 'DEPTH_ZERO_SELF_SIGNED_CERT': case 'CERT_SIGNATURE_FAILURE':
      return `client certificate not signed by the mesh root (${code})`;
    default: return `client certificate refused (${code})`;
  }
  const m = err.message;
  if (/no application protocol/i.test(m)) return 'client did not offer ALPN h2';
  if (/peer did not return a certificate|certificate required/i.test(m)) return 'client presented no certificate';
  if (/certificate has expired|certificate expired/i.test(m)) return 'client certificate expired';
  if (/unknown ca|unable to get local issuer|self.signed|certificate verify failed/i.test(m)) return `client certificate not signed by the mesh root (${m})`;
  if (/wrong version number|unknown protocol|http request|packet length too long|record/i.test(m)) return `not a TLS client (${err.code ?? m})`;
  if (/no shared cipher|unsupported protocol|version/i.test(m)) return `TLS parameters refused (${m})`;
  return m;
}
