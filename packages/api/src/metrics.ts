/** Metric names and label names exactly as Istio exports them (spec §7). Each is defined here once. */
export const METRICS = Object.freeze({
  tcpConnectionsOpened: 'istio_tcp_connections_opened_total',
  tcpConnectionsClosed: 'istio_tcp_connections_closed_total',
  tcpSentBytes: 'istio_tcp_sent_bytes_total',
  tcpReceivedBytes: 'istio_tcp_received_bytes_total',
  tcpConnectionsFailed: 'istio_tcp_connections_failed_total',
  tcpSocketsOpen: 'istio_tcp_sockets_open',
  requestsTotal: 'istio_requests_total',
  requestDurationMs: 'istio_request_duration_milliseconds',
  requestBytes: 'istio_request_bytes',
  responseBytes: 'istio_response_bytes',
  xdsConnectionTerminations: 'istio_xds_connection_terminations_total',
  xdsMessages: 'istio_xds_message_total',
  xdsMessageBytes: 'istio_xds_message_bytes_total',
  activeProxyCount: 'istio_active_proxy_count',
  pendingProxyCount: 'istio_pending_proxy_count',
  proxiesStarted: 'istio_proxies_started_total',
  proxiesStopped: 'istio_proxies_stopped_total',
  build: 'istio_build',
} as const);

/** The standard label set shared by the istio_tcp_* metrics, in Istio's order. */
export const TCP_METRIC_LABELS = Object.freeze([
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const);
export type TcpMetricLabel = (typeof TCP_METRIC_LABELS)[number];

/** The waypoint's request metrics add these to the standard set. */
export const HTTP_METRIC_EXTRA_LABELS = Object.freeze(['response_code', 'grpc_response_status', 'destination_port'] as const);

/** Value of any label whose fact is unknown. */
export const UNKNOWN = 'unknown';

export const REPORTER = Object.freeze({ source: 'source', destination: 'destination', waypoint: 'waypoint' } as const);

/** `response_flags` values of the L4 metrics. */
export const RESPONSE_FLAGS = Object.freeze({
  none: '-',
  deny: 'DENY',
  connect: 'CONNECT',
  tlsFailure: 'TLS_FAILURE',
  h2HandshakeFailure: 'H2_HANDSHAKE_FAILURE',
  networkPolicy: 'NETWORK_POLICY',
  identityError: 'IDENTITY_ERROR',
  certRevoked: 'CERT_REVOKED',
} as const);

export const CONNECTION_SECURITY_POLICY = Object.freeze({ mutualTls: 'mutual_tls', unknown: 'unknown' } as const);
