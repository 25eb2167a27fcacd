// Opaque TCP through the waypoint (no HTTP detected): the istio_tcp_* families with reporter="waypoint", and one
// access line per connection.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CONNECTION_SECURITY_POLICY, REPORTER } from '@ambit/api';
import { createConnectionMetrics, deriveTrafficLabels, type ConnectionMetrics, type ServiceFacts, type WorkloadFacts } from '@ambit/ztunnel';

export interface TcpConnectionFacts {
  readonly sourceIdentity?: string;
  readonly sourceWorkload?: WorkloadFacts;
  readonly sourceAddress: string;
  readonly hboneAuthority: string;
  readonly destinationService?: ServiceFacts;
  readonly destinationWorkload?: WorkloadFacts;
  readonly destinationIdentity?: string;
  readonly upstreamHost?: string;
}

export interface TcpTelemetry {
  /** Records a finished connection (bytes each way, failure flag). */
  record(facts: TcpConnectionFacts, outcome: { bytesFromClient: number; bytesToClient: number; durationMs: number; flags: string; error?: string }): void;
}

export function createTcpTelemetry(options: { registry: Registry; logger: Logger; version: string }): TcpTelemetry {
  const metrics: ConnectionMetrics = createConnectionMetrics(options.registry, { component: 'waypoint', tag: options.version });
  return {
    record(f, o) {
      const derived = deriveTrafficLabels({
        reporter: REPORTER.destination,
        ...(f.sourceWorkload ? { sourceWorkload: f.sourceWorkload } : {}),
        ...(f.sourceIdentity ? { sourceIdentity: f.sourceIdentity } : {}),
        ...(f.destinationService ? { destinationService: f.destinationService } : {}),
        ...(f.destinationWorkload ? { destinationWorkload: f.destinationWorkload } : {}),
        ...(f.destinationIdentity ? { destinationIdentity: f.destinationIdentity } : {}),
        securityPolicy: f.sourceIdentity ? CONNECTION_SECURITY_POLICY.mutualTls : CONNECTION_SECURITY_POLICY.unknown,
      });
      // The L4 flag vocabulary is ztunnel's; the waypoint reports Envoy's flags (UF, NR, ...) as they are.
      const labels = { ...derived, reporter: REPORTER.waypoint, response_flags: o.flags };
      metrics.opened.inc(labels);
      metrics.closed.inc(labels);
      if (o.error) metrics.failed.inc(labels);
      metrics.receivedBytes.inc(labels, o.bytesFromClient);
      metrics.sentBytes.inc(labels, o.bytesToClient);
      const line = {
        'src.addr': f.sourceAddress, 'src.identity': f.sourceIdentity ?? '-', 'dst.addr': f.upstreamHost ?? '-',
        'dst.hbone_addr': f.hboneAuthority, 'dst.service': f.destinationService?.hostname ?? '-',
        'dst.workload': f.destinationWorkload?.name ?? '-', bytes_sent: o.bytesToClient, bytes_recv: o.bytesFromClient,
        duration: `${Math.round(o.durationMs)}ms`, response_flags: o.flags, ...(o.error ? { error: o.error } : {}),
      };
      if (o.error) options.logger.error(line, 'connection complete');
      else options.logger.info(line, 'connection complete');
    },
  };
}
