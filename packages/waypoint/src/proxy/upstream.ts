// Requests toward endpoints. A captured workload is reached in HBONE from the waypoint's identity to the endpoint's
// node agent (endpointIP:15008, :authority endpointIP:targetPort); a workload outside the mesh (ServiceEntry endpoint,
// protocol TCP) over a plain TCP connection to address:targetPort. A DestinationRule's tls SIMPLE/MUTUAL adds a TLS
// layer on top of either. HTTP/1.1 connections are kept alive and pooled per cluster and endpoint (an http.Agent
// whose sockets are those streams); HTTP/2 (h2c, gRPC) uses one multiplexed session per cluster and endpoint.
// maxRequestsPerConnection and idleTimeout of the cluster's connectionPool apply to these real connections.
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import http2, { type ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import type { Logger } from 'pino';
import { formatAuthority, HboneError, type HboneClient, type HboneTunnel } from '@ambit/hbone';
import type { UpstreamEndpoint } from './endpoints.js';
import { asHttp1Socket } from './stream-compat.js';
import { Http1Pool, type Http1PoolStats, type Http1PoolTarget } from './http1-pool.js';

export interface TunnelOptions {
  readonly endpoint: UpstreamEndpoint;
  /** Extra CONNECT headers (baggage, forwarded, traceparent). */
  readonly headers?: Record<string, string>;
}

/** How the connections of one cluster behave (DestinationRule connectionPool and tls). */
export interface UpstreamConnectionPolicy {
  /** Connections are pooled per cluster (Envoy): two clusters never share one. */
  readonly poolKey: string;
  /** 0: unlimited. */
  readonly maxRequestsPerConnection: number;
  /** A connection without requests for this long is closed. */
  readonly idleTimeoutMs: number;
  /** TCP connect and TLS handshake bound (tcp.connectTimeout). */
  readonly connectTimeoutMs: number;
  /** TLS originated on top of the transport (DestinationRule tls SIMPLE/MUTUAL), node:tls options. */
  readonly tls?: ConnectionOptions;
}

export interface UpstreamRequest {
  readonly endpoint: UpstreamEndpoint;
  /** Default: pooled per endpoint, no limits beyond the pool's, no TLS. */
  readonly connection?: UpstreamConnectionPolicy;
  readonly protocol: 'http1' | 'http2';
  readonly method: string;
  /** Path with query. */
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  readonly headers: OutgoingHttpHeaders;
  readonly tunnelHeaders?: Record<string, string>;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Readable;
  /** Resolves with the trailers (gRPC status) once the body ended. */
  readonly trailers: Promise<IncomingHttpHeaders | undefined>;
}

/** How an attempt failed, in Envoy's terms (response flags and retry_on conditions). */
export type UpstreamFailure = 'connect-failure' | 'refused-stream' | 'reset' | 'timeout';

export class UpstreamError extends Error {
  constructor(readonly failure: UpstreamFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface UpstreamCall {
  /** Write the request body here (end() it). */
  readonly body: Writable;
  readonly response: Promise<UpstreamResponse>;
  /** Cancels the attempt (timeout, client gone). */
  abort(reason: UpstreamFailure): void;
}

export interface UpstreamPool {
  request(req: UpstreamRequest): UpstreamCall;
  /** A raw HBONE tunnel (opaque TCP to a captured workload). */
  tunnel(opts: TunnelOptions): Promise<HboneTunnel>;
  /** A plain TCP connection (opaque TCP to a workload outside the mesh). Rejects with UpstreamError. */
  connectTcp(endpoint: UpstreamEndpoint, timeoutMs?: number, allowHalfOpen?: boolean): Promise<net.Socket>;
  stats(): { http1Endpoints: number; http2Sessions: number; http1: Http1PoolStats };
  close(): void;
}

export interface UpstreamPoolOptions {
  readonly hbone: HboneClient;
  readonly sourceIdentity: string;
  readonly hbonePort: number;
  readonly logger: Logger;
  /**
   * HTTP/1.1 connections (HBONE streams) per endpoint and cluster, busy or idle; requests beyond it wait for one to
   * come free (default 32). All of them stay open while in use and idle until the cluster's idleTimeout, so a burst
   * does not turn into a stream per request. The cluster's circuit breakers (tcp.maxConnections, pending requests)
   * apply before a request reaches the pool.
   */
  readonly maxConnectionsPerEndpoint?: number;
}

export const DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT = 32;

interface TunnelRequestOptions extends http.RequestOptions {
  ambitPool: Http1PoolTarget;
}

/** What the pool tracks per live upstream connection (HTTP/1.1 socket or HTTP/2 session). */
interface ConnectionState {
  /** Requests carried so far (maxRequestsPerConnection). */
  served: number;
  readonly policy: UpstreamConnectionPolicy | undefined;
  idle?: NodeJS.Timeout;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

function connectFailure(err: unknown, where: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as Error;
  return new UpstreamError(err instanceof HboneError && err.retriable ? 'refused-stream' : 'connect-failure', `HBONE to ${where} failed: ${e.message}`, { cause: err });
}

export function createUpstreamPool(options: UpstreamPoolOptions): UpstreamPool {
  const log = options.logger.child({ component: 'upstream' });
  const h2Sessions = new Map<string, Promise<ClientHttp2Session>>();

  function tunnel(opts: TunnelOptions): Promise<HboneTunnel> {
    const e = opts.endpoint;
    return options.hbone.connect({
      sourceIdentity: options.sourceIdentity,
      destinationIdentities: [...e.identities],
      destination: { host: e.address, port: options.hbonePort },
      authority: formatAuthority(e.address, e.targetPort),
      ...(opts.headers ? { headers: opts.headers } : {}),
    });
  }

  function connectTcp(e: UpstreamEndpoint, timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS, allowHalfOpen = true): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: e.address, port: e.targetPort, allowHalfOpen });
      const timer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${timeoutMs} ms`)), timeoutMs);
      socket.once('connect', () => { clearTimeout(timer); socket.off('error', onError); resolve(socket); });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(new UpstreamError('connect-failure', `TCP connect to ${formatAuthority(e.address, e.targetPort)} failed: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
    });
  }

  /** TLS origination on top of `base` (an HBONE stream or a TCP socket); resolves once the handshake is done. */
  function originateTls(base: Duplex, e: UpstreamEndpoint, opts: ConnectionOptions, alpn: string, timeoutMs: number): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ ...opts, socket: base, ALPNProtocols: [alpn] });
      const timer = setTimeout(() => socket.destroy(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs);
      socket.once('secureConnect', () => { clearTimeout(timer); socket.off('error', onError); resolve(socket); });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        base.destroy();
        reject(new UpstreamError('connect-failure', `TLS origination to ${formatAuthority(e.address, e.targetPort)} (sni ${opts.servername ?? 'none'}) failed: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
    });
  }

  /** The byte stream an upstream HTTP connection runs on: transport (HBONE or TCP), then TLS when asked. */
  async function openStream(e: UpstreamEndpoint, headers: Record<string, string> | undefined, policy: UpstreamConnectionPolicy | undefined, alpn: string): Promise<Duplex> {
    const timeoutMs = policy?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let base: Duplex;
    if (e.transport === 'tcp') base = await connectTcp(e, timeoutMs, false);
    else {
      try {
        base = (await tunnel({ endpoint: e, ...(headers ? { headers } : {}) })).stream as unknown as Duplex;
      } catch (err) {
        throw connectFailure(err, `${e.address}:${options.hbonePort}`);
      }
      // The HTTP/1.1 client (or TLS on top) writes batches an HTTP/2 stream must not be given as they are (stream-compat).
      asHttp1Socket(base);
    }
    return policy?.tls ? originateTls(base, e, policy.tls, alpn, timeoutMs) : base;
  }

  const connState = new WeakMap<object, ConnectionState>();
  const http1 = new Http1Pool({
    maxConnections: options.maxConnectionsPerEndpoint ?? DEFAULT_MAX_CONNECTIONS_PER_ENDPOINT,
    onError: (err) => log.debug({ err: err.message }, 'idle upstream HTTP/1.1 connection failed'),
  });
  /** Pool keys per endpoint and cluster policy, built once (not per request). */
  const http1Keys = new WeakMap<UpstreamEndpoint, Map<UpstreamConnectionPolicy | undefined, string>>();
  function http1Target(e: UpstreamEndpoint, policy: UpstreamConnectionPolicy | undefined, tunnelHeaders: Record<string, string> | undefined): Http1PoolTarget {
    let byPolicy = http1Keys.get(e);
    if (!byPolicy) { byPolicy = new Map(); http1Keys.set(e, byPolicy); }
    let key = byPolicy.get(policy);
    if (key === undefined) {
      key = `${e.address}|${e.targetPort}|${e.transport}|${policy?.poolKey ?? ''}${policy?.tls ? '|tls' : ''}`;
      byPolicy.set(policy, key);
    }
    return {
      key,
      maxRequestsPerConnection: policy?.maxRequestsPerConnection ?? 0,
      ...(policy ? { idleTimeoutMs: policy.idleTimeoutMs } : {}),
      // A new connection carries the CONNECT headers (traceparent) of the request that opened it.
      open: () => openStream(e, tunnelHeaders, policy, 'http/1.1').catch((err: unknown) => { throw connectFailure(err, `${e.address}:${options.hbonePort}`); }),
    };
  }

  function h2Session(e: UpstreamEndpoint, headers: Record<string, string> | undefined, policy: UpstreamConnectionPolicy | undefined): { key: string; session: Promise<ClientHttp2Session> } {
    const key = `${e.address}|${e.targetPort}|${policy?.poolKey ?? ''}${policy?.tls ? '|tls' : ''}`;
    const existing = h2Sessions.get(key);
    if (existing) return { key, session: existing };
    const p = openStream(e, headers, policy, 'h2').then((stream) => {
      const session = http2.connect(`${policy?.tls ? 'https' : 'http'}://${formatAuthority(e.address, e.targetPort)}`, { createConnection: () => stream });
      connState.set(session, { served: 0, policy });
      const drop = (): void => { if (h2Sessions.get(key) === p) h2Sessions.delete(key); };
      session.on('error', (err) => { log.debug({ endpoint: key, err: err.message }, 'upstream HTTP/2 session error'); drop(); });
      session.once('close', drop);
      session.once('goaway', drop);
      // A session without streams for idleTimeout is closed.
      if (policy) session.setTimeout(policy.idleTimeoutMs, () => { drop(); session.close(); });
      return session;
    }, (err: unknown) => { h2Sessions.delete(key); throw connectFailure(err, `${e.address}:${options.hbonePort}`); });
    h2Sessions.set(key, p);
    return { key, session: p };
  }

  function requestHttp1(req: UpstreamRequest): UpstreamCall {
    const e = req.endpoint;
    const o: TunnelRequestOptions = {
      agent: http1 as unknown as http.Agent, host: e.address, port: e.targetPort, method: req.method, path: req.path,
      headers: { ...req.headers, host: req.authority },
      ambitPool: http1Target(e, req.connection, req.tunnelHeaders),
    };
    const creq = http.request(o);
    let failure: UpstreamFailure | undefined;
    const response = new Promise<UpstreamResponse>((resolve, reject) => {
      creq.once('response', (m) => {
        const trailers = new Promise<IncomingHttpHeaders | undefined>((r) => {
          m.once('end', () => r(Object.keys(m.trailers).length ? m.trailers : undefined));
          m.once('close', () => r(undefined));
        });
        resolve({ status: m.statusCode ?? 502, headers: m.headers, body: m, trailers });
      });
      creq.once('error', (err: Error & { code?: string }) => {
        if (err instanceof UpstreamError) return reject(err);
        if (failure) return reject(new UpstreamError(failure, `request to ${e.address}:${e.targetPort} ${failure === 'timeout' ? 'timed out' : 'cancelled'}`));
        reject(new UpstreamError('reset', `upstream ${e.address}:${e.targetPort} reset the request: ${err.message}`, { cause: err }));
      });
    });
    response.catch(() => {});
    return {
      body: creq,
      response,
      abort(reason) {
        failure = reason;
        creq.destroy(new UpstreamError(reason, `request to ${e.address}:${e.targetPort} ${reason === 'timeout' ? 'timed out' : 'cancelled'}`));
      },
    };
  }

  function requestHttp2(req: UpstreamRequest): UpstreamCall {
    const e = req.endpoint;
    // The body may arrive before the session is up: buffer it in a pass-through (bounded by its high-water mark).
    const body = new PassThrough();
    let aborted: UpstreamFailure | undefined;
    let stream: http2.ClientHttp2Stream | undefined;
    const response = new Promise<UpstreamResponse>((resolve, reject) => {
      const { key, session: pending } = h2Session(e, req.tunnelHeaders, req.connection);
      pending.then((session) => {
        if (aborted) throw new UpstreamError(aborted, `request to ${e.address}:${e.targetPort} cancelled`);
        const s = session.request({
          ...req.headers, ':method': req.method, ':path': req.path, ':authority': req.authority, ':scheme': req.scheme,
        });
        const st = connState.get(session);
        const max = st?.policy?.maxRequestsPerConnection ?? 0;
        if (st && max > 0 && ++st.served >= max) {
          // The session carried its last request: new requests open another; this one closes after its streams.
          if (h2Sessions.get(key) === pending) h2Sessions.delete(key);
          session.close();
        }
        stream = s;
        body.pipe(s);
        const trailers = new Promise<IncomingHttpHeaders | undefined>((r) => {
          s.once('trailers', (t) => r(t));
          s.once('close', () => r(undefined));
        });
        s.once('response', (headers) => {
          const status = Number(headers[':status']);
          const h: IncomingHttpHeaders = {};
          for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) h[k] = v as string;
          resolve({ status, headers: h, body: s, trailers });
        });
        s.once('error', (err: Error) => {
          const refused = s.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
          reject(new UpstreamError(aborted ?? (refused ? 'refused-stream' : 'reset'), `upstream ${e.address}:${e.targetPort} stream failed: ${err.message}`, { cause: err }));
        });
        s.once('close', () => {
          if (s.rstCode && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
            const refused = s.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
            reject(new UpstreamError(aborted ?? (refused ? 'refused-stream' : 'reset'), `upstream ${e.address}:${e.targetPort} reset the stream (code ${s.rstCode})`));
          } else reject(new UpstreamError(aborted ?? 'reset', `upstream ${e.address}:${e.targetPort} closed the stream without a response`));
        });
      }).catch((err: unknown) => reject(connectFailure(err, `${e.address}:${options.hbonePort}`)));
    });
    response.catch(() => {});
    return {
      body,
      response,
      abort(reason) {
        aborted = reason;
        if (stream && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        body.destroy();
      },
    };
  }

  return {
    request: (req) => (req.protocol === 'http2' ? requestHttp2(req) : requestHttp1(req)),
    tunnel,
    connectTcp,
    stats: () => ({ http1Endpoints: http1.stats().keys, http2Sessions: h2Sessions.size, http1: http1.stats() }),
    close() {
      http1.destroy();
      for (const p of h2Sessions.values()) p.then((s) => s.close(), () => {});
      h2Sessions.clear();
    },
  };
}
