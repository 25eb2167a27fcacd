// Public surface of the waypoint's policy modules: pure decision functions over Istio / Gateway API objects
// (KubeObject JSON from @ambit/api). No sockets except the JWKS fetch and the Zipkin exporter; clocks and
// randomness are injected. The request pipeline (packages/waypoint/src/proxy) calls them in Envoy's order:
// RBAC (authz) needs the JWT identity, so it runs authenticate() first, then evaluate(); then routing, fault
// injection, retries/limits/outlier/LB per upstream try, TLS origination, tracing around it all.
// Every compile function throws PolicyConfigError (code AMB_ERR_CONFIG) naming the object and the field.

export { type PolicyDiagnostic, PolicyConfigError, formatDiagnostic } from './diagnostics.js';
export { matchIstioString } from './authz.js';

export {
  compileAuthorizationPolicy, compileAuthorizationPolicies, createAuthorizationEngine,
  type RequestAttributes, type RequestAuth, type AuthorizationTargetService, type AuthorizationAction,
  type AuthorizationResult, type CompiledAuthorizationPolicy, type AuthorizationEngine, type AuthorizationEngineOptions,
  type CompileAuthorizationResult,
} from './authz.js';

export {
  compileRequestAuthentication, createJwtAuthenticator,
  type JwtAuthenticator, type JwtAuthenticatorOptions, type JwtRequest, type JwtAuthResult, type JwksFetcher,
  type CompiledRequestAuthentication,
} from './jwt.js';

export { compileFault, decideFault, FAULT_ABORT_BODY, GRPC_STATUS_CODES, type FaultPolicy, type FaultDecision } from './faults.js';

export {
  compileVirtualServiceRetries, compileHttpRouteRetry, shouldRetry, backoffMs, tryDeadline, ISTIO_DEFAULT_RETRY_POLICY,
  type RetryPolicy, type RetryCondition, type AttemptOutcome,
} from './retry.js';

export {
  compileConnectionPool, createClusterLimiter, DEFAULT_CONNECTION_POOL,
  type ConnectionPoolSettings, type ClusterLimiter, type RequestLease, type StartRequestResult, type PooledConnection,
} from './connection-pool.js';

export {
  compileOutlierDetection, createOutlierDetector, type OutlierSettings, type OutlierDetector, type EndpointOutcome,
} from './outlier.js';

export {
  compileLoadBalancer, createLoadBalancer, resolveTrafficPolicy, compileTrafficPolicy, DEFAULT_LOAD_BALANCER, RING_POINTS_PER_WEIGHT,
  type LoadBalancerSettings, type LoadBalancer, type LbEndpoint, type LbContext, type LbPick,
  type EffectiveTrafficPolicy, type CompiledTrafficPolicy,
} from './load-balancer.js';

export {
  compileTlsOrigination, planTlsOrigination,
  type TlsOriginationSettings, type TlsOriginationPlan, type TlsOriginationContext, type TlsCredential,
} from './tls-origination.js';

export {
  extractTraceContext, injectTraceContext, decideSampling, newSpanId, newTraceId, startServerSpan, customTagValues,
  resolveTracingConfig, createZipkinExporter,
  type SpanContext, type Span, type Endpoint as SpanEndpoint, type TracingProvider, type CustomTag, type TracingConfig,
  type ZipkinExporter, type ZipkinExporterOptions, type ExporterLogger,
} from './tracing.js';
