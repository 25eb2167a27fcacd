// The request pipeline: target -> plugins -> route -> (redirect | direct reply | forward with retries, timeouts and
// mirrors) -> response filters -> downstream. One RequestResult per request records metrics and the access line.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { HEADERS } from '@ambit/api';
import type { Service } from '@ambit/ztunnel';
import { DEFAULT_RETRIES } from '../routing/compile.js';
import { decideFault, FAULT_ABORT_BODY } from '../policy/index.js';
import { applyHeaderOps, pickWeighted, redirectLocation, rewritePath, selectRoute, type RequestFacts } from '../routing/router.js';
import type { CompiledRoute, Destination, RetryPolicy, ServiceKey, Subset, WeightedDestination } from '../routing/types.js';
import { RESPONSE_FLAG, type RequestResult } from '../telemetry/request-telemetry.js';
import type { LocalReply, PluginRequest } from '../plugins/plugin.js';
import { ReplayableBody } from './body.js';
import type { DownstreamConnection, ProxyInputs } from './context.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { syncOutlierEndpoints, type Cluster } from './clusters.js';
import type { RequestLease } from '../policy/index.js';
import { endToEndHeaders, headerText, matchView, toOutgoing, type HeaderMap } from './headers.js';
import { UpstreamError, type UpstreamCall, type UpstreamFailure, type UpstreamResponse } from './upstream.js';

type DownstreamRequest = IncomingMessage | Http2ServerRequest;
type DownstreamResponse = ServerResponse | Http2ServerResponse;

/** gRPC status for a local HTTP reply (gRPC's HTTP-to-gRPC mapping). */
function grpcStatusFor(http: number): number {
  switch (http) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2;
  }
}

function keyOfService(s: Service): ServiceKey {
  return { hostname: s.hostname, namespace: s.namespace, name: s.name };
}

interface Ctx {
  readonly req: DownstreamRequest;
  readonly res: DownstreamResponse;
  readonly conn: DownstreamConnection;
  readonly result: RequestResult;
  readonly grpc: boolean;
  readonly protocol: 'http1' | 'http2';
  readonly method: string;
  /** Path with query as received. */
  readonly rawPath: string;
  readonly authority: string;
  readonly headers: HeaderMap;
  readonly pluginRequest: PluginRequest;
  body: ReplayableBody;
  responded: boolean;
}

export interface HttpProxy {
  handle(req: DownstreamRequest, res: DownstreamResponse, conn: DownstreamConnection): void;
}

export function createHttpProxy(inputs: ProxyInputs): HttpProxy {
  const { config, state, routes, endpoints, upstream, telemetry, plugins, policy, clusters, tracing } = inputs;
  const log = inputs.logger.child({ component: 'http' });
  const random = inputs.random ?? Math.random;
  const now = inputs.now ?? Date.now;

  function localReply(ctx: Ctx, status: number, body: string, flag?: (typeof RESPONSE_FLAG)[keyof typeof RESPONSE_FLAG], extra: OutgoingHttpHeaders = {}): void {
    if (flag) ctx.result.flag(flag);
    ctx.body.discard();
    if (ctx.responded || ctx.res.headersSent) {
      ctx.res.destroy();
      ctx.result.finish(status);
      return;
    }
    ctx.responded = true;
    const text = body ? `${body}\n` : '';
    if (ctx.grpc) {
      const g = grpcStatusFor(status);
      ctx.res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': String(g), 'grpc-message': encodeURIComponent(body), ...extra });
      ctx.res.end();
      ctx.result.finish(200, String(g));
      return;
    }
    ctx.res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), ...extra });
    ctx.res.end(text);
    ctx.result.responseBytes += Buffer.byteLength(text);
    ctx.result.finish(status);
  }

  function localGrpcReply(ctx: Ctx, grpcStatus: number, message: string): void {
    ctx.body.discard();
    ctx.responded = true;
    ctx.res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': encodeURIComponent(message) });
    ctx.res.end();
    ctx.result.finish(200, String(grpcStatus));
  }

  function facts(ctx: Ctx, port: number, path: string, query: URLSearchParams): RequestFacts {
    return { method: ctx.method, path, query, authority: ctx.authority, scheme: 'http', port, headers: matchView(ctx.headers) };
  }

  async function runPluginsOnRequest(ctx: Ctx): Promise<LocalReply | undefined> {
    for (const p of plugins) {
      if (!p.onRequest) continue;
      const r = await p.onRequest(ctx.pluginRequest);
      if (r) return r;
    }
    return undefined;
  }

  async function runPluginsOnResponse(ctx: Ctx, status: number, headers: HeaderMap): Promise<void> {
    for (const p of plugins) if (p.onResponse) await p.onResponse({ status, headers, request: ctx.pluginRequest });
  }

  /** Resolves a destination host to a service and the subset, or explains why not. */
  function resolveDestination(d: Destination, defaultPort: number): { service: Service; port: number; subset?: Subset } | { error: string } {
    const service = state.serviceByHostname(d.host);
    if (!service) return { error: `destination ${d.host} is not a known service` };
    const port = d.port ?? (service.ports.some((p) => p.servicePort === defaultPort) ? defaultPort : service.ports[0]?.servicePort ?? defaultPort);
    if (!d.subset) return { service, port };
    const dr = routes.current().destinationRuleFor(d.host);
    const subset = dr?.subsets.get(d.subset);
    if (!subset) return { error: `subset "${d.subset}" of ${d.host} is not defined by any DestinationRule` };
    return { service, port, subset };
  }

  function sendMirror(ctx: Ctx, d: Destination, defaultPort: number, upstreamPath: string, headers: HeaderMap): void {
    const r = resolveDestination(d, defaultPort);
    if ('error' in r) { log.debug({ err: r.error }, 'mirror destination unavailable'); return; }
    const pick = endpoints.pick(r.service, r.port, r.subset);
    if (pick.kind !== 'endpoint') return;
    void ctx.body.whenComplete().then((body) => {
      // A body too large to keep is not mirrored (the original request still goes through).
      if (!body && ctx.body.total > 0) return;
      const authority = `${hostOf(ctx.authority)}-shadow`;
      const call = upstream.request({
        endpoint: pick.endpoint, protocol: ctx.protocol, method: ctx.method, path: upstreamPath, authority, scheme: 'http',
        headers: { ...toOutgoing(headers), 'content-length': body ? String(body.length) : undefined },
        tunnelHeaders: tunnelHeaders(ctx, r.service),
      });
      call.body.end(body);
      call.response.then((resp) => { resp.body.resume(); }, (err: Error) => log.debug({ err: err.message }, 'mirror request failed'));
    });
  }

  function tunnelHeaders(ctx: Ctx, _service: Service | undefined): Record<string, string> {
    return { ...ctx.conn.connectHeaders };
  }

  /** Runs one attempt; resolves with the response, or rejects with an UpstreamError. */
  function attempt(ctx: Ctx, endpoint: UpstreamEndpoint, path: string, authority: string, headers: HeaderMap, service: Service | undefined, perTryMs: number | undefined, cluster: Cluster | undefined): { call: UpstreamCall; response: Promise<UpstreamResponse> } {
    const call = upstream.request({
      endpoint, protocol: ctx.protocol, method: ctx.method, path, authority, scheme: cluster?.connection.tls ? 'https' : 'http',
      headers: toOutgoing(headers), tunnelHeaders: tunnelHeaders(ctx, service),
      ...(cluster ? { connection: cluster.connection } : {}),
    });
    if (!ctx.body.attach(call.body)) call.abort('reset');
    let timer: NodeJS.Timeout | undefined;
    const response = new Promise<UpstreamResponse>((resolve, reject) => {
      if (perTryMs) timer = setTimeout(() => { call.abort('timeout'); reject(new UpstreamError('timeout', `attempt timed out after ${perTryMs} ms`)); }, perTryMs);
      call.response.then((r) => { clearTimeout(timer); resolve(r); }, (e: unknown) => { clearTimeout(timer); reject(e); });
    });
    response.catch(() => {});
    return { call, response };
  }

  function retriableStatus(policy: RetryPolicy, status: number, grpcStatus: string | undefined): boolean {
    if (policy.statusCodes.has(status)) return true;
    if (policy.retryOn.has('5xx') && status >= 500) return true;
    if (policy.retryOn.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
    if (policy.retryOn.has('retriable-4xx') && status === 409) return true;
    if (grpcStatus !== undefined) {
      const g = Number(grpcStatus);
      if (policy.retryOn.has('cancelled') && g === 1) return true;
      if (policy.retryOn.has('deadline-exceeded') && g === 4) return true;
      if (policy.retryOn.has('resource-exhausted') && g === 8) return true;
      if (policy.retryOn.has('internal') && g === 13) return true;
      if (policy.retryOn.has('unavailable') && g === 14) return true;
    }
    return false;
  }

  function retriableFailure(policy: RetryPolicy, f: UpstreamFailure): boolean {
    if (f === 'connect-failure') return policy.retryOn.has('connect-failure') || policy.retryOn.has('5xx') || policy.retryOn.has('gateway-error') || policy.retryOn.has('reset');
    if (f === 'refused-stream') return policy.retryOn.has('refused-stream') || policy.retryOn.has('5xx') || policy.retryOn.has('reset');
    if (f === 'reset') return policy.retryOn.has('reset') || policy.retryOn.has('5xx');
    // A per-try timeout is retried whenever a retry policy allows more attempts (Envoy).
    return true;
  }

  /** Envoy's local reply body for a circuit-breaker overflow. */
  const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
  /** Envoy's router marks requests it dropped (circuit breaking) so callers do not retry them; Istio's waypoint keeps
   * Envoy headers unless proxyHeaders.envoyDebugHeaders is disabled. */
  const OVERLOADED = { 'x-envoy-overloaded': 'true' } as const;

  type Chosen = { endpoint: UpstreamEndpoint; setCookie?: string } | { error: string };

  /** One attempt's endpoint: the cluster's healthy (non-ejected) endpoints, through its load balancer. */
  function chooseEndpoint(ctx: Ctx, cluster: Cluster, target: { service: Service; port: number; subset?: Subset }, tried: ReadonlySet<string>): Chosen {
    const list = endpoints.candidates(target.service, target.port, target.subset);
    if (!Array.isArray(list)) return { error: list.reason };
    syncOutlierEndpoints(cluster, list.map((e) => e.address));
    const healthy = cluster.outlier ? cluster.outlier.available(list, now()) : list;
    if (healthy.length === 0) return { error: `all ${list.length} endpoints of ${cluster.name} are ejected by outlier detection` };
    const pick = cluster.lb.pick(healthy.map((e) => ({ ...e, weight: e.workload.capacity })), {
      headers: ctx.headers, path: ctx.rawPath, sourceIp: ctx.conn.sourceAddress, activeRequests: cluster.activeRequests, exclude: tried,
    });
    if (pick.kind === 'passthrough') return { error: `${cluster.name}: loadBalancer PASSTHROUGH is not supported by the waypoint` };
    if (pick.kind === 'none') return { error: `no endpoint of ${cluster.name} to pick` };
    return { endpoint: pick.endpoint, ...(pick.setCookie ? { setCookie: pick.setCookie } : {}) };
  }

  type Admission = { kind: 'lease'; lease: RequestLease } | { kind: 'overflow'; reason: string } | { kind: 'timeout' } | { kind: 'gone' };

  /** The cluster's circuit breakers: a request slot now, a place in the pending queue, or overflow. */
  async function admit(ctx: Ctx, cluster: Cluster, deadline: number | undefined): Promise<Admission> {
    const r = cluster.limiter.tryStartRequest();
    if (r.kind === 'overflow') return { kind: 'overflow', reason: r.reason };
    if (r.kind === 'granted') {
      if (r.lease.isNew) r.lease.connected();
      return { kind: 'lease', lease: r.lease };
    }
    // Pending: until a slot frees, the route timeout fires or the client leaves.
    let abandoned = false;
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    const outcome = await Promise.race<Admission>([
      r.lease.then((lease): Admission => ({ kind: 'lease', lease })),
      new Promise<Admission>((resolve) => {
        if (deadline !== undefined) timer = setTimeout(() => resolve({ kind: 'timeout' }), Math.max(0, deadline - performance.now()));
        onClose = () => { if (!ctx.res.writableFinished) resolve({ kind: 'gone' }); };
        ctx.res.once('close', onClose);
      }),
    ]);
    clearTimeout(timer);
    if (onClose) ctx.res.off('close', onClose);
    if (outcome.kind !== 'lease') {
      abandoned = true;
      r.cancel();
      // A slot granted at the same moment goes back at once.
      void r.lease.then((lease) => { if (abandoned) lease.release(); });
      return outcome;
    }
    if (outcome.lease.isNew) outcome.lease.connected();
    return outcome;
  }

  async function forward(ctx: Ctx, route: CompiledRoute | undefined, dest: WeightedDestination | undefined, target: { service: Service; port: number; subset?: Subset } | { workloadEndpoint: UpstreamEndpoint; port: number }, path: string, authority: string, headers: HeaderMap): Promise<void> {
    const policy: RetryPolicy = route?.retries ?? DEFAULT_RETRIES;
    const service = 'service' in target ? target.service : undefined;
    const port = target.port;
    const cluster = 'service' in target ? clusters.get(target.service, port, target.subset, ctx.protocol) : undefined;
    ctx.result.set({
      destinationPort: port,
      ...(service ? { destinationService: { hostname: service.hostname, namespace: service.namespace, name: service.name } } : {}),
      upstreamCluster: cluster ? cluster.name : `inbound-workload|${port}`,
      ...(route?.name ? { routeName: route.name } : {}),
    });
    if (cluster?.tlsError) {
      ctx.result.set({ upstreamFailureReason: cluster.tlsError });
      return localReply(ctx, 503, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure', RESPONSE_FLAG.upstreamConnectionFailure);
    }
    const started = performance.now();
    const deadline = route?.timeoutMs ? started + route.timeoutMs : undefined;
    const tried = new Set<string>();
    let setCookie: string | undefined;
    let current: UpstreamCall | undefined;
    let overall: NodeJS.Timeout | undefined;
    let timedOut = false;
    let retryBudget: { release(): void } | undefined;
    const overallTimeout = deadline ? new Promise<'timeout'>((resolve) => {
      overall = setTimeout(() => { timedOut = true; current?.abort('timeout'); resolve('timeout'); }, route!.timeoutMs);
    }) : undefined;
    // The client going away cancels the attempt in flight.
    const onClientClose = (): void => {
      if (!ctx.res.writableFinished) { ctx.result.flag(RESPONSE_FLAG.downstreamConnectionTermination); current?.abort('reset'); }
    };
    ctx.res.once('close', onClientClose);
    try {
      for (let n = 1; ; n++) {
        let endpoint: UpstreamEndpoint;
        if ('workloadEndpoint' in target) endpoint = target.workloadEndpoint;
        else {
          const chosen = chooseEndpoint(ctx, cluster!, target, tried);
          if ('error' in chosen) {
            retryBudget?.release();
            ctx.result.set({ upstreamFailureReason: chosen.error });
            return localReply(ctx, 503, 'no healthy upstream', RESPONSE_FLAG.noHealthyUpstream);
          }
          endpoint = chosen.endpoint;
          setCookie ??= chosen.setCookie;
        }
        tried.add(endpoint.address);
        headers[HEADERS.envoyAttemptCount] = String(n);
        ctx.result.set({
          attempts: n, upstreamHost: `${endpoint.address}:${endpoint.targetPort}`,
          destinationWorkload: endpoint.workload, ...(endpoint.identities[0] ? { destinationIdentity: endpoint.identities[0] } : {}),
        });
        let lease: RequestLease | undefined;
        if (cluster) {
          const admitted = await admit(ctx, cluster, deadline);
          if (admitted.kind !== 'lease') retryBudget?.release();
          if (admitted.kind === 'overflow') {
            ctx.result.set({ upstreamFailureReason: admitted.reason });
            return localReply(ctx, 503, OVERFLOW_BODY, RESPONSE_FLAG.upstreamOverflow, OVERLOADED);
          }
          if (admitted.kind === 'timeout') {
            ctx.result.set({ upstreamFailureReason: `request timeout after ${route!.timeoutMs} ms waiting in the pending queue of ${cluster.name}` });
            return localReply(ctx, 504, 'upstream request timeout', RESPONSE_FLAG.upstreamRequestTimeout);
          }
          if (admitted.kind === 'gone') { ctx.result.finish(0); return; }
          lease = admitted.lease;
        }
        // Everything this attempt holds (circuit-breaker slot, active-request count, retry budget) ends once.
        const endActive = cluster?.beginRequest(endpoint.address);
        const budget = retryBudget;
        retryBudget = undefined;
        let attemptDone = false;
        const endAttempt = (how: { connectFailed?: boolean; reusable?: boolean } = {}): void => {
          if (attemptDone) return;
          attemptDone = true;
          if (how.connectFailed) lease?.connectFailed();
          else lease?.release(how.reusable === false ? { reusable: false } : {});
          endActive?.();
          budget?.release();
        };
        const remaining = deadline ? deadline - performance.now() : undefined;
        const perTry = policy.perTryTimeoutMs !== undefined && (remaining === undefined || policy.perTryTimeoutMs < remaining) ? policy.perTryTimeoutMs : undefined;
        const a = attempt(ctx, endpoint, path, authority, headers, service, perTry, cluster);
        current = a.call;
        const outcome = await (overallTimeout ? Promise.race([a.response, overallTimeout]) : a.response).then(
          (r) => (r === 'timeout' ? { timeout: true as const } : { response: r }),
          (err: unknown) => ({ error: err instanceof UpstreamError ? err : new UpstreamError('reset', (err as Error).message) }),
        );
        if ('timeout' in outcome || timedOut) {
          a.call.abort('timeout');
          endAttempt({ reusable: false });
          ctx.result.set({ upstreamFailureReason: `request timeout after ${route!.timeoutMs} ms` });
          return localReply(ctx, 504, 'upstream request timeout', RESPONSE_FLAG.upstreamRequestTimeout);
        }
        const more = n <= policy.attempts && ctx.body.replayable && !ctx.res.destroyed;
        if ('error' in outcome) {
          const err = outcome.error;
          // Connect failures, resets and per-try timeouts count against the endpoint (5xx and gateway errors).
          cluster?.outlier?.record(endpoint.address, { localOriginFailure: true }, now());
          endAttempt({ connectFailed: err.failure === 'connect-failure', reusable: false });
          ctx.result.set({ upstreamFailureReason: err.message });
          if (more && retriableFailure(policy, err.failure) && takeRetryBudget(cluster, (b) => { retryBudget = b; })) {
            ctx.body.detach();
            await backoff(policy, n);
            continue;
          }
          if (n > 1) ctx.result.flag(RESPONSE_FLAG.upstreamRetryLimitExceeded);
          if (err.failure === 'timeout') return localReply(ctx, 504, 'upstream request timeout', RESPONSE_FLAG.upstreamRequestTimeout);
          if (err.failure === 'connect-failure') return localReply(ctx, 503, 'upstream connect error or disconnect/reset before headers', RESPONSE_FLAG.upstreamConnectionFailure);
          return localReply(ctx, 503, 'upstream connect error or disconnect/reset before headers', RESPONSE_FLAG.upstreamConnectionTermination);
        }
        const resp = outcome.response;
        cluster?.outlier?.record(endpoint.address, { status: resp.status }, now());
        const grpcStatus = headerText(resp.headers as HeaderMap, 'grpc-status');
        if (more && retriableStatus(policy, resp.status, grpcStatus) && takeRetryBudget(cluster, (b) => { retryBudget = b; })) {
          resp.body.once('end', () => endAttempt()).once('close', () => endAttempt({ reusable: false }));
          resp.body.resume();
          ctx.body.detach();
          await backoff(policy, n);
          continue;
        }
        if (n > 1 && retriableStatus(policy, resp.status, grpcStatus) && n > policy.attempts) ctx.result.flag(RESPONSE_FLAG.upstreamRetryLimitExceeded);
        ctx.result.set({ upstreamServiceTimeMs: performance.now() - started });
        try {
          await respond(ctx, resp, route, dest, a.call, setCookie);
        } finally {
          endAttempt();
        }
        return;
      }
    } finally {
      clearTimeout(overall);
      retryBudget?.release();
      ctx.res.off('close', onClientClose);
    }
  }

  /** Envoy's max_retries circuit breaker: a retry needs a slot in the cluster's retry budget. */
  function takeRetryBudget(cluster: Cluster | undefined, keep: (b: { release(): void }) => void): boolean {
    if (!cluster) return true;
    const b = cluster.limiter.tryStartRetry();
    if (!b) {
      log.debug({ cluster: cluster.name, maxRetries: cluster.limiter.settings.maxRetries }, 'retry budget exhausted (maxRetries); not retrying');
      return false;
    }
    keep(b);
    return true;
  }

  async function backoff(policy: RetryPolicy, n: number): Promise<void> {
    // Envoy: fully jittered exponential backoff, base interval doubling per retry, capped at 10 x base.
    const cap = Math.min(policy.backoffMs * 2 ** (n - 1), policy.backoffMs * 10);
    await new Promise((r) => setTimeout(r, Math.floor(random() * cap)));
  }

  async function respond(ctx: Ctx, resp: UpstreamResponse, route: CompiledRoute | undefined, dest: WeightedDestination | undefined, call: UpstreamCall, setCookie: string | undefined): Promise<void> {
    const headers = endToEndHeaders(resp.headers);
    // A consistent-hash cookie the balancer generated (httpCookie with ttl) goes to the client.
    if (setCookie) {
      const prev = headers['set-cookie'];
      headers['set-cookie'] = [...(prev === undefined ? [] : Array.isArray(prev) ? prev : [prev]), setCookie];
    }
    if (route) applyHeaderOps(headers, route.responseHeaders);
    if (dest) applyHeaderOps(headers, dest.responseHeaders);
    if (ctx.result.fields.upstreamServiceTimeMs !== undefined) headers[HEADERS.envoyUpstreamServiceTime] = String(Math.round(ctx.result.fields.upstreamServiceTimeMs));
    await runPluginsOnResponse(ctx, resp.status, headers);
    if (ctx.res.destroyed) { call.abort('reset'); ctx.result.finish(resp.status); return; }
    ctx.responded = true;
    const res = ctx.res as ServerResponse;
    res.writeHead(resp.status, toOutgoing(headers));
    await new Promise<void>((resolve) => {
      let finished = false;
      const done = (): void => { if (!finished) { finished = true; resolve(); } };
      resp.body.on('data', (c: Buffer) => {
        ctx.result.responseBytes += c.length;
        if (!res.write(c)) {
          resp.body.pause();
          res.once('drain', () => resp.body.resume());
        }
      });
      resp.body.once('end', () => {
        void resp.trailers.then((t) => {
          if (t && Object.keys(t).length) {
            const trailers: Record<string, string> = {};
            for (const [k, v] of Object.entries(t)) if (v !== undefined && !k.startsWith(':')) trailers[k] = Array.isArray(v) ? v.join(',') : v;
            (res as { addTrailers(h: Record<string, string>): void }).addTrailers(trailers);
            ctx.result.finish(resp.status, trailers['grpc-status'] ?? headerText(headers, 'grpc-status'));
          }
          res.end();
          ctx.result.finish(resp.status, headerText(headers, 'grpc-status'));
          done();
        });
      });
      const broken = (): void => {
        if (finished) return;
        ctx.result.flag(RESPONSE_FLAG.upstreamConnectionTermination);
        res.destroy();
        ctx.result.finish(resp.status);
        done();
      };
      resp.body.once('error', broken);
      resp.body.once('close', () => { if (!resp.body.readableEnded) broken(); });
      res.once('close', () => {
        if (!res.writableFinished && !finished) {
          ctx.result.flag(RESPONSE_FLAG.downstreamConnectionTermination);
          call.abort('reset');
          ctx.result.finish(resp.status);
          done();
        }
      });
    });
  }

  async function pipeline(ctx: Ctx): Promise<void> {
    const { conn } = ctx;
    const target = conn.target;
    const q = ctx.rawPath.indexOf('?');
    // Istio's default path normalization (BASE: RFC 3986 dot segments removed, slashes not merged) applies to
    // routing, policy and the path sent upstream alike, so `/public/../admin` is treated as `/admin` everywhere.
    const path = removeDotSegments(q >= 0 ? ctx.rawPath.slice(0, q) : ctx.rawPath);
    const rawQuery = q >= 0 ? ctx.rawPath.slice(q) : '';
    const normalizedPath = path + rawQuery;
    const query = new URLSearchParams(rawQuery);
    if (target.kind === 'unknown') {
      ctx.result.set({ upstreamFailureReason: target.reason });
      return localReply(ctx, 404, 'no route: unknown destination', RESPONSE_FLAG.noRoute);
    }
    // The destination is known before any filter runs: local replies (401, 403, plugin replies) carry its labels.
    if (target.kind === 'service') ctx.result.set({ destinationService: keyOfService(target.service), destinationPort: target.port });
    else ctx.result.set({ destinationWorkload: target.workload, destinationPort: target.port });
    // RequestAuthentication, then AuthorizationPolicy (Envoy's filter order: jwt_authn before rbac).
    const destinationService = target.kind === 'service' ? { kind: 'Service' as const, namespace: target.service.namespace, name: target.service.name } : undefined;
    const jwt = await policy.jwt().authenticate({ headers: ctx.headers, path: normalizedPath, ...(destinationService ? { destinationService } : {}) });
    if (!jwt.ok) {
      ctx.result.set({ upstreamFailureReason: jwt.reason });
      return localReply(ctx, jwt.status, jwt.body, undefined, { ...jwt.headers });
    }
    if (!jwt.anonymous) {
      for (const k of jwt.removeHeaders) delete ctx.headers[k];
      for (const [k, v] of Object.entries(jwt.setHeaders)) ctx.headers[k] = v;
    }
    const authz = policy.authz().evaluate({
      ...(conn.peerIdentity ? { sourcePrincipal: conn.peerIdentity } : {}),
      sourceIp: conn.sourceAddress,
      destinationIp: hostOf(conn.hboneAuthority).replace(/^\[|\]$/g, ''),
      destinationPort: target.port,
      host: ctx.authority, method: ctx.method, path, headers: ctx.headers,
      ...(!jwt.anonymous ? { auth: jwt.identity } : {}),
      ...(destinationService ? { destinationService } : {}),
    });
    if (authz.decision === 'deny') {
      ctx.result.set({ upstreamFailureReason: `${authz.policy ?? 'policy'}: ${authz.reason}` });
      return localReply(ctx, 403, 'RBAC: access denied', RESPONSE_FLAG.rbacDenied);
    }
    // Plugins see requests that policy allowed.
    const reply = await runPluginsOnRequest(ctx);
    if (reply) {
      ctx.result.flag(RESPONSE_FLAG.localReply);
      return localReply(ctx, reply.status, reply.body ?? '', undefined, reply.headers ?? {});
    }
    if (target.kind === 'workload') {
      // Workload-addressed traffic (pod IP:port): no service routes apply; straight to that workload.
      ctx.result.set({ destinationWorkload: target.workload });
      return forward(ctx, undefined, undefined, { workloadEndpoint: endpoints.workloadEndpoint(target.workload, target.address, target.port), port: target.port }, normalizedPath, ctx.authority, ctx.headers);
    }
    const { service, port } = target;
    ctx.result.set({ destinationService: keyOfService(service), destinationPort: port });
    const table = routes.current().routesFor(keyOfService(service), port, { ...(conn.sourceNamespace ? { sourceNamespace: conn.sourceNamespace } : {}) });
    if (!table) {
      // No route object for this service: pass through to its endpoints (DestinationRule still applies).
      return forward(ctx, undefined, undefined, { service, port }, normalizedPath, ctx.authority, ctx.headers);
    }
    const f = facts(ctx, port, path, query);
    const m = selectRoute(table, f);
    if (!m) return localReply(ctx, 404, 'no route matched', RESPONSE_FLAG.noRoute);
    const { route, matcher } = m;
    ctx.result.set({ ...(route.name ? { routeName: route.name } : { routeName: route.origin }) });
    const action = route.action;
    if (action.kind === 'redirect') {
      const location = redirectLocation(action.redirect, f, matcher, rawQuery);
      const headers: HeaderMap = { location };
      applyHeaderOps(headers, route.responseHeaders);
      return localReply(ctx, action.redirect.status, '', undefined, toOutgoing(headers));
    }
    if (action.kind === 'direct') {
      const headers: HeaderMap = {};
      applyHeaderOps(headers, route.responseHeaders);
      return localReply(ctx, action.status, action.body ?? '', undefined, toOutgoing(headers));
    }
    if (route.fault) {
      const fault = decideFault(route.fault, random);
      for (const f of fault.responseFlags) ctx.result.flag(f === 'DI' ? RESPONSE_FLAG.delayInjected : RESPONSE_FLAG.faultInjected);
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault.abort) {
        if ('httpStatus' in fault.abort) return localReply(ctx, fault.abort.httpStatus, FAULT_ABORT_BODY);
        return localGrpcReply(ctx, fault.abort.grpcStatus, FAULT_ABORT_BODY);
      }
    }
    const dest = pickWeighted(action.destinations, random);
    if (!dest) return localReply(ctx, 503, 'no destination with weight', RESPONSE_FLAG.noHealthyUpstream);
    const resolved = resolveDestination(dest, port);
    if ('error' in resolved) {
      ctx.result.set({ upstreamFailureReason: resolved.error });
      return localReply(ctx, 503, 'no healthy upstream', RESPONSE_FLAG.noHealthyUpstream);
    }
    const headers = ctx.headers;
    applyHeaderOps(headers, route.requestHeaders);
    applyHeaderOps(headers, dest.requestHeaders);
    let upstreamPath = normalizedPath;
    if (route.rewrite?.path) upstreamPath = rewritePath(route.rewrite.path, path, matcher) + rawQuery;
    const authority = route.rewrite?.authority ?? ctx.authority;
    for (const mirror of route.mirrors) {
      if (random() * 100 < mirror.percent) sendMirror(ctx, mirror.destination, port, upstreamPath, { ...headers });
    }
    return forward(ctx, route, dest, resolved, upstreamPath, authority, headers);
  }

  return {
    handle(req, res, conn) {
      const protocol = req.httpVersionMajor === 2 ? 'http2' : 'http1';
      const headers = endToEndHeaders(req.headers);
      const authority = (protocol === 'http2' ? (req.headers[':authority'] as string | undefined) : undefined) ?? req.headers.host ?? conn.hboneAuthority;
      let requestId = headerText(headers, HEADERS.requestId);
      if (!requestId) { requestId = randomUUID(); headers[HEADERS.requestId] = requestId; }
      const prevXff = headerText(headers, 'x-forwarded-for');
      headers['x-forwarded-for'] = prevXff ? `${prevXff},${conn.sourceAddress}` : conn.sourceAddress;
      headers['x-forwarded-proto'] ??= 'http';
      const grpc = (headerText(headers, 'content-type') ?? '').startsWith('application/grpc');
      const method = req.method ?? 'GET';
      const rawPath = req.url ?? '/';
      const result = telemetry.begin({
        method, path: rawPath, authority, protocol: protocol === 'http2' ? 'HTTP/2' : 'HTTP/1.1', grpc, requestId,
        sourceAddress: conn.sourceAddress, ...(conn.peerIdentity ? { sourceIdentity: conn.peerIdentity } : {}),
        ...(conn.sourceWorkload ? { sourceWorkload: conn.sourceWorkload } : {}),
        ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
        xForwardedFor: headerText(headers, 'x-forwarded-for')!, hboneAuthority: conn.hboneAuthority,
      });
      const body = new ReplayableBody(req as unknown as import('node:stream').Readable, config.limits.maxBufferedBodyBytes);
      const ctx: Ctx = {
        req, res, conn, result, grpc, protocol, method, rawPath, authority, headers, body, responded: false,
        pluginRequest: {
          method, path: rawPath, authority, headers,
          service: conn.target.kind === 'service' ? conn.target.service.hostname : undefined,
          sourcePrincipal: conn.peerIdentity || undefined, requestId,
        },
      };
      result.requestBytesFrom = () => body.total;
      // The waypoint's span: continues the incoming trace; the upstream request carries its context.
      tracing.start(headers, {
        method, path: rawPath, authority, protocol: protocol === 'http2' ? 'HTTP/2' : 'HTTP/1.1', sourceAddress: conn.sourceAddress, requestId,
        ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
      }, result);
      pipeline(ctx).catch((err: Error) => {
        log.error({ err, requestId }, 'request pipeline failed');
        localReply(ctx, 500, 'internal error');
      });
    },
  };
}

/** RFC 3986 §5.2.4 remove_dot_segments; percent-encoded dots are left alone (Envoy decodes nothing by default). */
export function removeDotSegments(path: string): string {
  if (!path.includes('.')) return path;
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '.') { if (i === segments.length - 1) out.push(''); continue; }
    if (seg === '..') {
      if (out.length > 1) out.pop();
      if (i === segments.length - 1) out.push('');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  return joined.startsWith('/') ? joined : `/${joined}`;
}

function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const i = authority.lastIndexOf(':');
  return i > 0 ? authority.slice(0, i) : authority;
}
