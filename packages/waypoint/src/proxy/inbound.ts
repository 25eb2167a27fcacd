// The waypoint's HBONE listener: each CONNECT stream is one tunnelled connection from a source agent. Its
// :authority (service VIP:port or pod IP:port) names the target; the first bytes tell HTTP/1.1, HTTP/2 prior
// knowledge (h2c, gRPC) or opaque TCP. HTTP is served on the stream itself by Node's HTTP/1.1 and HTTP/2 servers
// (fed through 'connection'), so keep-alive, pipelining and multiplexing are theirs.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HEADERS, parseSpiffeId } from '@ambit/api';
import { parseForwarded, type HboneRequest } from '@ambit/hbone';
import { RESPONSE_FLAG } from '../telemetry/request-telemetry.js';
import type { DownstreamConnection, InboundTarget, ProxyInputs } from './context.js';
import { createHttpProxy } from './http-proxy.js';
import { asHttp1Socket } from './stream-compat.js';
import { createDeclaredPorts } from './declared-ports.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const HTTP1_REQUEST_START = /^[A-Z][A-Z-]{1,19} /;

export type DetectedProtocol = 'http1' | 'http2' | 'tcp';

/** Protocol of a stream from its first bytes; undefined: need more bytes. */
export function detectProtocol(buf: Buffer): DetectedProtocol | undefined {
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return n === H2_PREFACE.length ? 'http2' : undefined;
  const head = buf.subarray(0, 21).toString('latin1');
  if (HTTP1_REQUEST_START.test(head)) return 'http1';
  // An upper-case token still being typed may become a request line.
  if (/^[A-Z][A-Z-]{0,19}$/.test(head) && buf.length < 21) return undefined;
  return 'tcp';
}

export interface InboundHandler {
  /** HboneServer's onConnect. */
  onConnect(req: HboneRequest): void;
  /** Live tunnelled connections. */
  readonly active: number;
  /** Shutdown: idle HTTP/1.1 connections end now, busy ones after their response; HTTP/2 sessions get GOAWAY. */
  drain(): void;
  close(): void;
}

export function createInboundHandler(inputs: ProxyInputs): InboundHandler {
  const { config, state, endpoints, upstream, tcpTelemetry, telemetry } = inputs;
  const log = inputs.logger.child({ component: 'inbound' });
  const proxy = createHttpProxy(inputs);
  const declared = createDeclaredPorts(inputs.routes, config.domainSuffix);
  const connections = new WeakMap<object, DownstreamConnection>();
  let active = 0;
  let pendingH2: DownstreamConnection | undefined;
  let draining = false;
  /** HTTP/1.1 tunnels and their requests in flight; HTTP/2 sessions. */
  const http1Streams = new Map<Duplex, number>();
  const h2Sessions = new Set<Http2Session>();

  const http1 = http.createServer({
    maxHeaderSize: config.limits.maxRequestHeadersBytes,
    headersTimeout: config.limits.headersTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: Math.min(config.limits.idleTimeoutMs, 2 ** 31 - 1),
    // Pipelined requests are answered in order; more than this many waiting closes the connection.
    // (Node parses one request at a time per connection and pauses the socket while a response is pending.)
  }, (req: IncomingMessage, res: ServerResponse) => {
    const conn = connections.get(req.socket);
    if (!conn) { res.writeHead(500).end(); return; }
    const socket = req.socket as Duplex;
    http1Streams.set(socket, (http1Streams.get(socket) ?? 0) + 1);
    let counted = true;
    const done = (): void => {
      if (!counted) return;
      counted = false;
      const n = (http1Streams.get(socket) ?? 1) - 1;
      if (http1Streams.has(socket)) http1Streams.set(socket, n);
      if (draining && n === 0) socket.end();
    };
    res.once('finish', done);
    res.once('close', done);
    if (draining) res.setHeader('connection', 'close');
    proxy.handle(req, res, conn);
  });
  http1.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    const conn = connections.get(socket);
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
    log.info({ err: err.code ?? err.message, status, source: conn?.sourceAddress, authority: conn?.hboneAuthority }, 'bad HTTP request from client');
    if (conn) {
      const r = telemetry.begin({
        method: '-', path: '-', authority: conn.hboneAuthority, protocol: 'HTTP/1.1', grpc: false, requestId: '-',
        sourceAddress: conn.sourceAddress, ...(conn.peerIdentity ? { sourceIdentity: conn.peerIdentity } : {}), hboneAuthority: conn.hboneAuthority,
      });
      r.flag(RESPONSE_FLAG.downstreamProtocolError);
      if (conn.target.kind === 'service') r.set({ destinationService: conn.target.service, destinationPort: conn.target.port });
      r.finish(status);
    }
    if ((socket as Socket).writable) {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
    } else socket.destroy();
  });

  const h2 = http2.createServer({
    settings: { maxHeaderListSize: config.limits.maxRequestHeadersBytes, maxConcurrentStreams: 1000 },
    maxSessionMemory: 64,
  }, (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const conn = connections.get(req.stream.session as Http2Session);
    if (!conn) { res.writeHead(500).end(); return; }
    proxy.handle(req, res, conn);
  });
  h2.on('session', (session: Http2Session) => {
    if (pendingH2) connections.set(session, pendingH2);
    h2Sessions.add(session);
    session.once('close', () => h2Sessions.delete(session));
    if (draining) session.close();
    session.on('error', (err) => log.debug({ err: err.message }, 'downstream HTTP/2 session error'));
  });
  h2.setTimeout(Math.min(config.limits.idleTimeoutMs, 2 ** 31 - 1));

  function resolveTarget(req: HboneRequest): InboundTarget {
    const { host, port, isIp } = req.authority;
    if (isIp) {
      const service = state.serviceByVip(config.network, host);
      if (service) {
        if (!service.ports.some((p) => p.servicePort === port)) return { kind: 'unknown', reason: `service ${service.namespace}/${service.hostname} has no port ${port}` };
        return { kind: 'service', service, port };
      }
      const workload = state.workloadByAddress(config.network, host);
      if (workload) return { kind: 'workload', workload, address: host, port };
      return { kind: 'unknown', reason: `${req.authorityText} is neither a service VIP nor a workload address known to this waypoint` };
    }
    const service = state.serviceByHostname(host);
    if (service) return { kind: 'service', service, port };
    return { kind: 'unknown', reason: `${host} is not a known service hostname` };
  }

  function connectionOf(req: HboneRequest): DownstreamConnection {
    const fwd = parseForwarded(typeof req.headers[HEADERS.forwarded] === 'string' ? req.headers[HEADERS.forwarded] as string : undefined);
    let sourceAddress = req.peerAddress.address.replace(/^::ffff:/, '');
    if (fwd.for) {
      const m = /^\[?([^\]]+?)\]?(?::\d+)?$/.exec(fwd.for);
      if (m && isIP(m[1]!)) sourceAddress = m[1]!;
    }
    const traceparent = req.headers[HEADERS.traceparent];
    return {
      target: resolveTarget(req),
      hboneAuthority: req.authorityText,
      peerIdentity: req.peerIdentity,
      sourceAddress,
      sourceWorkload: state.workloadByAddress(config.network, sourceAddress),
      sourceNamespace: parseSpiffeId(req.peerIdentity)?.namespace,
      connectHeaders: typeof traceparent === 'string' ? { [HEADERS.traceparent]: traceparent } : {},
    };
  }

  function serveTcp(stream: ServerHttp2Stream, conn: DownstreamConnection, first: Buffer | undefined): void {
    const started = performance.now();
    const facts = {
      sourceAddress: conn.sourceAddress, hboneAuthority: conn.hboneAuthority,
      ...(conn.peerIdentity ? { sourceIdentity: conn.peerIdentity } : {}),
      ...(conn.sourceWorkload ? { sourceWorkload: conn.sourceWorkload } : {}),
    };
    const target = conn.target;
    let endpoint;
    if (target.kind === 'service') {
      const pick = endpoints.pick(target.service, target.port);
      if (pick.kind !== 'endpoint') {
        tcpTelemetry.record({ ...facts, destinationService: target.service }, { bytesFromClient: 0, bytesToClient: 0, durationMs: 0, flags: RESPONSE_FLAG.noHealthyUpstream, error: pick.reason });
        stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
        return;
      }
      endpoint = pick.endpoint;
    } else if (target.kind === 'workload') {
      endpoint = endpoints.workloadEndpoint(target.workload, target.address, target.port);
    } else {
      tcpTelemetry.record(facts, { bytesFromClient: 0, bytesToClient: 0, durationMs: 0, flags: RESPONSE_FLAG.noRoute, error: target.reason });
      stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
      return;
    }
    const dest = {
      ...facts,
      ...(target.kind === 'service' ? { destinationService: target.service } : {}),
      destinationWorkload: endpoint.workload, destinationIdentity: endpoint.identities[0], upstreamHost: `${endpoint.address}:${endpoint.targetPort}`,
    };
    stream.pause();
    const failed = (err: Error): void => {
      tcpTelemetry.record(dest, { bytesFromClient: 0, bytesToClient: 0, durationMs: performance.now() - started, flags: RESPONSE_FLAG.upstreamConnectionFailure, error: err.message });
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
    };
    /** Bytes both ways; a reset on one side resets the other (TCP RST semantics); one telemetry record at the end. */
    const pipeBoth = (up: Duplex, reset: () => void, wasReset: () => boolean): void => {
      let fromClient = first?.length ?? 0;
      let toClient = 0;
      let error: string | undefined;
      if (first) up.write(first);
      stream.on('data', (c: Buffer) => { fromClient += c.length; });
      up.on('data', (c: Buffer) => { toClient += c.length; });
      stream.pipe(up);
      up.pipe(stream);
      const fail = (side: string) => (err: Error) => {
        error ??= `${side}: ${err.message}`;
        if (!up.destroyed) reset();
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
      };
      up.on('error', fail('upstream'));
      stream.on('error', fail('downstream'));
      let closed = 0;
      const onClose = (): void => {
        if (++closed < 2) {
          if ((stream.rstCode ?? 0) !== 0 && !up.destroyed) reset();
          if (wasReset() && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
          return;
        }
        tcpTelemetry.record(dest, { bytesFromClient: fromClient, bytesToClient: toClient, durationMs: performance.now() - started, flags: error ? RESPONSE_FLAG.upstreamConnectionTermination : RESPONSE_FLAG.none, ...(error ? { error } : {}) });
      };
      up.once('close', onClose);
      stream.once('close', onClose);
    };
    if (endpoint.transport === 'tcp') {
      // A workload outside the mesh (ServiceEntry endpoint): a plain TCP connection.
      upstream.connectTcp(endpoint, config.limits.connectTimeoutMs).then((socket) => {
        let errored = false;
        socket.once('error', () => { errored = true; });
        pipeBoth(socket, () => socket.destroy(), () => errored);
      }, failed);
      return;
    }
    upstream.tunnel({ endpoint, headers: { ...conn.connectHeaders } }).then((tun) => {
      const up = tun.stream;
      pipeBoth(up as unknown as Duplex, () => up.close(http2.constants.NGHTTP2_CONNECT_ERROR), () => (up.rstCode ?? 0) !== 0);
    }, failed);
  }

  function dispatch(stream: ServerHttp2Stream, conn: DownstreamConnection, protocol: DetectedProtocol, buffered: Buffer): void {
    if (protocol === 'tcp') return serveTcp(stream, conn, buffered.length ? buffered : undefined);
    if (buffered.length) stream.unshift(buffered);
    connections.set(stream, conn);
    if (protocol === 'http1') {
      asHttp1Socket(stream);
      http1Streams.set(stream, 0);
      stream.once('close', () => http1Streams.delete(stream));
      http1.emit('connection', stream);
      // Sniffing paused the stream; the HTTP/1.1 server reads with 'data' listeners and does not resume it.
      stream.resume();
    } else {
      pendingH2 = conn;
      try { h2.emit('connection', stream); } finally { pendingH2 = undefined; }
    }
  }

  return {
    get active() { return active; },
    onConnect(req) {
      const conn = connectionOf(req);
      let stream: ServerHttp2Stream;
      try {
        stream = req.accept();
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'client left before the tunnel was accepted');
        return;
      }
      active++;
      stream.once('close', () => { active--; });
      // A port declared opaque (tcp, mysql, ...) is bytes from the start: the server may be the first to speak.
      const t = conn.target;
      if (t.kind === 'service' && declared.isOpaque(t.service.namespace, t.service.hostname, t.port)) {
        dispatch(stream, conn, 'tcp', Buffer.alloc(0));
        return;
      }
      // Sniff the first bytes (bounded: at most 24 bytes are needed), then hand the stream to its server.
      let buffered = Buffer.alloc(0);
      let decided = false;
      const decide = (p: DetectedProtocol): void => {
        if (decided) return;
        decided = true;
        clearTimeout(timer);
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.pause();
        dispatch(stream, conn, p, buffered);
      };
      const onData = (c: Buffer): void => {
        buffered = Buffer.concat([buffered, c]);
        const p = detectProtocol(buffered);
        if (p) decide(p);
      };
      const onEnd = (): void => decide('tcp');
      // Istio's meshConfig.protocolDetectionTimeout: 0 (its default) waits for the client's first bytes however long
      // they take. A positive bound treats a silent client as server-first (opaque TCP), but a busy client that is
      // merely slow then loses L7 routing for the whole keep-alive connection, so it is opt-in.
      // Unbounded detection is still bounded by the idle timeout: a client that never speaks does not hold a stream.
      const detectionMs = config.limits.protocolDetectionTimeoutMs;
      const timer = detectionMs > 0
        ? setTimeout(() => decide(detectProtocol(buffered) ?? 'tcp'), detectionMs)
        : setTimeout(() => {
          if (decided) return;
          decided = true;
          log.debug({ authority: conn.hboneAuthority, source: conn.sourceAddress, idleMs: config.limits.idleTimeoutMs }, 'client sent nothing before the idle timeout; tunnel closed');
          stream.close(http2.constants.NGHTTP2_NO_ERROR);
        }, Math.min(config.limits.idleTimeoutMs, 2 ** 31 - 1));
      stream.once('close', () => clearTimeout(timer));
      stream.on('data', onData);
      stream.once('end', onEnd);
    },
    drain() {
      draining = true;
      for (const [s, n] of http1Streams) if (n === 0) s.end();
      for (const session of h2Sessions) session.close();
    },
    close() {
      for (const s of http1Streams.keys()) s.destroy();
      for (const session of h2Sessions) session.destroy();
      h2.close();
    },
  };
}
