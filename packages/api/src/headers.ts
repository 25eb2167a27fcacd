/** HTTP header names used on the HBONE CONNECT and by the waypoint (spec §1.3). Lower case, as HTTP/2 requires. */
export const HEADERS = Object.freeze({
  baggage: 'baggage',
  forwarded: 'forwarded',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  forwardedNetwork: 'x-forwarded-network',
  istioSource: 'x-istio-source',
  requestId: 'x-request-id',
  b3TraceId: 'x-b3-traceid',
  b3SpanId: 'x-b3-spanid',
  b3ParentSpanId: 'x-b3-parentspanid',
  b3Sampled: 'x-b3-sampled',
  b3: 'b3',
  envoyAttemptCount: 'x-envoy-attempt-count',
  envoyUpstreamServiceTime: 'x-envoy-upstream-service-time',
} as const);

/** Baggage keys, in the order Istio writes them (spec §1.3). */
export const BAGGAGE_KEYS = Object.freeze({
  clusterName: 'k8s.cluster.name',
  namespaceName: 'k8s.namespace.name',
  /** Followed by `.name`: `k8s.deployment.name`, `k8s.cronjob.name`, `k8s.pod.name`, `k8s.job.name`. */
  workloadTypePrefix: 'k8s.',
  serviceName: 'service.name',
  serviceVersion: 'service.version',
  cloudRegion: 'cloud.region',
  cloudZone: 'cloud.availability_zone',
} as const);

/** The HBONE CONNECT response statuses and what they mean (spec §1.3). */
export const HBONE_STATUS = Object.freeze({
  /** tunnel up */
  ok: 200,
  /** non-CONNECT method, bad authority, illegal or mismatched target */
  badRequest: 400,
  /** authorization denied */
  unauthorized: 401,
  /** cannot connect to the app, or local workload unknown */
  unavailable: 503,
} as const);
