// Requests toward endpoints, each carried in HBONE from the waypoint's identity to the endpoint's node agent
// (endpointIP:15008, :authority endpointIP:targetPort). HTTP/1.1 connections are kept alive and pooled per endpoint
// (an http.Agent whose sockets are HBONE streams); HTTP/2 (h2c, gRPC) uses one multiplexed session per endpoint.
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import http2, { type ClientHttp2Session } from 'node:http2';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import type { Logger } from 'pino';
import { formatAuthority, HboneError, type HboneClient, type HboneTunnel } from '@ambit/hbone';
import type { UpstreamEndpoint } from './endpoints.js';
import { asHttp1Socket } from './stream-compat.js';

export interface TunnelOptions {
  readonly endpoint: UpstreamEndpoint;
  /** Extra CONNECT headers (baggage, forwarded, traceparent). */
  readonly headers?: Record<string, string>;
}

export interface UpstreamRequest {
  readonly endpoint: UpstreamEndpoint;
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
  /** A raw HBONE tunnel (opaque TCP). */
  tunnel(opts: TunnelOptions): Promise<HboneTunnel>;
  stats(): { http1Endpoints: number; http2Sessions: number };
  close(): void;
}

export interface UpstreamPoolOptions {
  readonly hbone: HboneClient;
  readonly sourceIdentity: string;
  readonly hbonePort: number;
  readonly logger: Logger;
  /** Idle keep-alive connections per endpoint. */
  readonly maxIdlePerEndpoint?: number;
}

interface TunnelRequestOptions extends http.RequestOptions {
  ambitTunnel?: TunnelOptions;
}

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

  // HBONE streams are not net.Sockets: the Agent's socket-level calls (keep-alive probes, ref/unref) do not apply.
  class HboneAgent extends http.Agent {
    override createConnection(o: TunnelRequestOptions, cb: (err: Error | null, socket?: Duplex) => void): undefined {
      const t = o.ambitTunnel!;
      tunnel(t).then((tun) => {
        cb(null, asHttp1Socket(tun.stream as unknown as Duplex));
      }, (err: unknown) => cb(connectFailure(err, `${t.endpoint.address}:${options.hbonePort}`)));
      return undefined;
    }
    override keepSocketAlive(): boolean {
      return true;
    }
    override reuseSocket(_socket: unknown, req: http.ClientRequest): void {
      req.reusedSocket = true;
    }
  }
  const agent = new HboneAgent({ keepAlive: true, maxFreeSockets: options.maxIdlePerEndpoint ?? 16, scheduling: 'lifo' });

  function h2Session(e: UpstreamEndpoint, headers?: Record<string, string>): Promise<ClientHttp2Session> {
    const key = `${e.address}|${e.targetPort}`;
    const existing = h2Sessions.get(key);
    if (existing) return existing;
    const p = tunnel({ endpoint: e, ...(headers ? { headers } : {}) }).then((tun) => {
      const session = http2.connect(`http://${formatAuthority(e.address, e.targetPort)}`, { createConnection: () => tun.stream as unknown as Duplex });
      const drop = (): void => { if (h2Sessions.get(key) === p) h2Sessions.delete(key); };
      session.on('error', (err) => { log.debug({ endpoint: key, err: err.message }, 'upstream HTTP/2 session error'); drop(); });
      session.once('close', drop);
      session.once('goaway', drop);
      return session;
    }, (err: unknown) => { h2Sessions.delete(key); throw connectFailure(err, `${e.address}:${options.hbonePort}`); });
    h2Sessions.set(key, p);
    return p;
  }

  function requestHttp1(req: UpstreamRequest): UpstreamCall {
    const e = req.endpoint;
    const o: TunnelRequestOptions = {
      agent, host: e.address, port: e.targetPort, method: req.method, path: req.path,
      headers: { ...req.headers, host: req.authority },
      ambitTunnel: { endpoint: e, ...(req.tunnelHeaders ? { headers: req.tunnelHeaders } : {}) },
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
      h2Session(e, req.tunnelHeaders).then((session) => {
        if (aborted) throw new UpstreamError(aborted, `request to ${e.address}:${e.targetPort} cancelled`);
        const s = session.request({
          ...req.headers, ':method': req.method, ':path': req.path, ':authority': req.authority, ':scheme': req.scheme,
        });
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
    stats: () => ({ http1Endpoints: Object.keys(agent.freeSockets).length + Object.keys(agent.sockets).length, http2Sessions: h2Sessions.size }),
    close() {
      agent.destroy();
      for (const p of h2Sessions.values()) p.then((s) => s.close(), () => {});
      h2Sessions.clear();
    },
  };
}
