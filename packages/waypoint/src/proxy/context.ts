import type { Logger } from 'pino';
import type { ProxyState, Service, Workload } from '@ambit/ztunnel';
import type { WaypointConfig } from '../config/load.js';
import type { ConfigStore } from '../state/config-store.js';
import type { RequestTelemetry } from '../telemetry/request-telemetry.js';
import type { WaypointPlugin } from '../plugins/plugin.js';
import type { EndpointPicker } from './endpoints.js';
import type { UpstreamPool } from './upstream.js';
import type { TcpTelemetry } from '../telemetry/tcp-telemetry.js';
import type { PolicyState } from './policy-state.js';
import type { ClusterManager } from './clusters.js';
import type { TracingState } from '../telemetry/tracing-state.js';

/** Where the HBONE CONNECT pointed: a service VIP:port, a workload IP:port, or nothing we know. */
export type InboundTarget =
  | { readonly kind: 'service'; readonly service: Service; readonly port: number }
  | { readonly kind: 'workload'; readonly workload: Workload; readonly address: string; readonly port: number }
  | { readonly kind: 'unknown'; readonly reason: string };

/** One tunnelled connection from a source agent (one HBONE CONNECT stream). */
export interface DownstreamConnection {
  readonly target: InboundTarget;
  /** The CONNECT :authority. */
  readonly hboneAuthority: string;
  /** The source workload's verified identity (the HBONE client certificate). */
  readonly peerIdentity: string;
  /** Source IP (the `forwarded: for=` of the CONNECT, else the HBONE peer). */
  readonly sourceAddress: string;
  readonly sourceWorkload: Workload | undefined;
  readonly sourceNamespace: string | undefined;
  /** CONNECT headers worth passing on to the destination (baggage, traceparent). */
  readonly connectHeaders: Readonly<Record<string, string>>;
}

/** The data path's inputs, built once in app.ts (STYLE.md "One inputs bundle"). */
export interface ProxyInputs {
  readonly config: WaypointConfig;
  readonly state: ProxyState;
  readonly routes: ConfigStore;
  /** AuthorizationPolicy / RequestAuthentication in force. */
  readonly policy: PolicyState;
  readonly endpoints: EndpointPicker;
  /** Per-cluster DestinationRule state: circuit breakers, outlier detection, load balancer, TLS origination. */
  readonly clusters: ClusterManager;
  /** Telemetry tracing (spans, trace header propagation). */
  readonly tracing: TracingState;
  readonly upstream: UpstreamPool;
  readonly telemetry: RequestTelemetry;
  readonly tcpTelemetry: TcpTelemetry;
  readonly plugins: readonly WaypointPlugin[];
  readonly logger: Logger;
  /** Uniform in [0, 1); tests inject it. */
  readonly random?: () => number;
  /** Wall clock in ms (outlier detection). */
  readonly now?: () => number;
}
