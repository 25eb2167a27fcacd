// Requests and expectations of the mesh acceptance tests, as data: the test builds them, the in-pod client
// (client.ts) executes them and checks responses with checkResponse(), so a whole eventually-consistent case runs
// inside the client pod without one exec per attempt. The checks follow the Gateway API conformance suite's
// roundtripper comparison (conformance/utils/http): status, backend pod prefix, what the backend saw (path, host,
// method, headers joined with ","), absent headers, response headers, and the parts of a redirect's Location.

/** What the backend echoes (apps/conformance-echo.ts, apps/http-echo.ts). */
export interface EchoBody {
  pod: string;
  namespace: string | null;
  method: string;
  path: string;
  host: string;
  proto: string;
  headers: Record<string, string[]>;
  peer?: string;
  attempt?: number;
}

export interface MeshRequest {
  /** Where to connect, as a client in the pod writes it: `echo`, `echo-v1:8080`, `10.0.1.5:8080` (port default 80). */
  to: string;
  path?: string;
  method?: string;
  /** Host header; default `to` as written (Go's and curl's behaviour). */
  host?: string;
  headers?: Record<string, string>;
  /** gRPC unary call of /ambit.echo.Echo/Echo over h2c instead of HTTP/1.1 (headers become metadata). */
  grpc?: boolean;
  /** Per-request timeout; default 10 s (the suite's). */
  timeoutMs?: number;
}

export interface MeshResponse {
  /** HTTP status; 0 when there was no answer (then `error` says why). */
  status: number;
  /** Response headers, lower-case names, values joined with ", ". */
  headers: Record<string, string>;
  echo?: EchoBody;
  /** The body when it is not an echo (e.g. an error page), at most 500 characters. */
  text?: string;
  /** gRPC status from the trailers (grpc requests). */
  grpcStatus?: number;
  error?: string;
  ms: number;
}

export interface MeshExpectation {
  /** One status or any of several; default 200. */
  status?: number | readonly number[];
  /** The answering pod's name starts with this (`echo-v1`). */
  backend?: string;
  namespace?: string;
  /** What the backend must have seen. */
  request?: {
    path?: string;
    host?: string;
    method?: string;
    /** Header values as the backend joined them with "," (names case-insensitive). */
    headers?: Record<string, string>;
    absentHeaders?: readonly string[];
  };
  responseHeaders?: Record<string, string>;
  absentResponseHeaders?: readonly string[];
  /** Parts of the Location header of a redirect; only the parts given are compared. */
  redirect?: { scheme?: string; hostname?: string; port?: string; path?: string };
  grpcStatus?: number;
}

function headerValue(headers: Record<string, string[]>, name: string): string | undefined {
  const want = name.toLowerCase();
  const values = Object.entries(headers).filter(([k]) => k.toLowerCase() === want).flatMap(([, v]) => v);
  return values.length ? values.join(',') : undefined;
}

/** Every way `res` differs from `expect`; empty when it matches. */
export function checkResponse(res: MeshResponse, expect: MeshExpectation): string[] {
  const problems: string[] = [];
  const statuses = expect.status === undefined ? [200] : typeof expect.status === 'number' ? [expect.status] : [...expect.status];
  if (!statuses.includes(res.status)) {
    problems.push(`status ${res.status}${res.error ? ` (${res.error})` : ''}, want ${statuses.join(' or ')}${res.text ? `; body: ${res.text.slice(0, 200)}` : ''}`);
    return problems;
  }
  if (expect.grpcStatus !== undefined && res.grpcStatus !== expect.grpcStatus) problems.push(`grpc-status ${res.grpcStatus}, want ${expect.grpcStatus}`);
  for (const [name, value] of Object.entries(expect.responseHeaders ?? {})) {
    const got = res.headers[name.toLowerCase()];
    if (got !== value) problems.push(`response header ${name}: ${got === undefined ? 'absent' : JSON.stringify(got)}, want ${JSON.stringify(value)}`);
  }
  for (const name of expect.absentResponseHeaders ?? []) {
    if (res.headers[name.toLowerCase()] !== undefined) problems.push(`response header ${name} present (${JSON.stringify(res.headers[name.toLowerCase()])}), want absent`);
  }
  if (expect.redirect) {
    const location = res.headers.location;
    if (!location) problems.push('no Location header');
    else {
      let url: URL | undefined;
      try {
        url = new URL(location);
      } catch {
        problems.push(`Location ${JSON.stringify(location)} is not an absolute URL`);
      }
      if (url) {
        const r = expect.redirect;
        if (r.scheme !== undefined && url.protocol !== `${r.scheme}:`) problems.push(`Location scheme ${url.protocol.slice(0, -1)}, want ${r.scheme} (${location})`);
        if (r.hostname !== undefined && url.hostname !== r.hostname) problems.push(`Location host ${url.hostname}, want ${r.hostname} (${location})`);
        if (r.port !== undefined && url.port !== r.port) problems.push(`Location port ${JSON.stringify(url.port)}, want ${JSON.stringify(r.port)} (${location})`);
        if (r.path !== undefined && url.pathname !== r.path) problems.push(`Location path ${url.pathname}, want ${r.path} (${location})`);
      }
    }
  }
  const wantsEcho = expect.backend !== undefined || expect.namespace !== undefined || expect.request !== undefined;
  if (!wantsEcho) return problems;
  const echo = res.echo;
  if (!echo) {
    problems.push(`no echo body${res.text ? `: ${res.text.slice(0, 200)}` : ''}`);
    return problems;
  }
  if (expect.backend !== undefined && !echo.pod.startsWith(expect.backend)) problems.push(`served by ${echo.pod}, want ${expect.backend}*`);
  if (expect.namespace !== undefined && echo.namespace !== expect.namespace) problems.push(`backend namespace ${echo.namespace}, want ${expect.namespace}`);
  const rq = expect.request;
  if (rq) {
    if (rq.path !== undefined && echo.path !== rq.path) problems.push(`backend saw path ${echo.path}, want ${rq.path}`);
    if (rq.host !== undefined && echo.host !== rq.host) problems.push(`backend saw host ${echo.host}, want ${rq.host}`);
    if (rq.method !== undefined && echo.method !== rq.method) problems.push(`backend saw method ${echo.method}, want ${rq.method}`);
    for (const [name, value] of Object.entries(rq.headers ?? {})) {
      const got = headerValue(echo.headers, name);
      if (got !== value) problems.push(`backend saw header ${name}: ${got === undefined ? 'absent' : JSON.stringify(got)}, want ${JSON.stringify(value)}`);
    }
    for (const name of rq.absentHeaders ?? []) {
      const got = headerValue(echo.headers, name);
      if (got !== undefined) problems.push(`backend saw header ${name}: ${JSON.stringify(got)}, want absent`);
    }
  }
  return problems;
}

/** One eventually-consistent case: `request` must match `expect` `consistency` times in a row within the deadline. */
export interface ConsistentCase {
  name: string;
  request: MeshRequest;
  expect: MeshExpectation;
}

export interface ConsistentResult {
  name: string;
  ok: boolean;
  attempts: number;
  /** Problems of the last failing attempt (empty when ok). */
  problems: string[];
  last?: MeshResponse;
}

/** What the client does in one exec. */
export type ClientPlan =
  | { kind: 'consistent'; cases: ConsistentCase[]; consistency?: number; timeoutMs?: number; resolve?: Record<string, string> }
  | { kind: 'batch'; request: MeshRequest; count: number; concurrency?: number; resolve?: Record<string, string> }
  | { kind: 'each'; requests: MeshRequest[]; concurrency?: number; resolve?: Record<string, string> };

/** One request of a batch, compact. */
export interface BatchEntry {
  status: number;
  pod?: string;
  ms: number;
  error?: string;
  attempt?: number;
}

export interface BatchResult {
  count: number;
  byStatus: Record<string, number>;
  /** Answers by serving pod's Deployment (the pod name without its two generated suffixes). */
  byBackend: Record<string, number>;
  errors: Record<string, number>;
  entries: BatchEntry[];
}

/** `echo-v1-5d8f7c9b4-x2x9z` -> `echo-v1`; names without the ReplicaSet suffixes are kept. */
export function deploymentOfPod(pod: string): string {
  const m = /^(.*)-[a-z0-9]{5,10}-[a-z0-9]{5}$/.exec(pod);
  return m ? m[1]! : pod;
}
