// The controller's metrics under istiod's names, in the process registry.
import { Counter, Gauge, type Registry } from 'prom-client';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '@ambit/api';
import type { NackRecord, XdsServer } from '../xds/xds-server.js';

/** istiod's short names for the `type` label (pilot/pkg/xds/v3 GetMetricType). */
export function metricType(typeUrl: string): string {
  if (typeUrl === ADDRESS_TYPE_URL) return 'wads';
  if (typeUrl === AUTHORIZATION_TYPE_URL) return 'wdsauthz';
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

export interface ControllerMetrics {
  /** Wire into XdsServerOptions.onPush. */
  onPush(push: { typeUrl: string; resources: number; removed: number }): void;
  /** Wire into XdsServerOptions.onNack. */
  onNack(nack: NackRecord): void;
  /** Counts an object event (pilot_k8s_cfg_events). */
  configEvent(kind: string, event: 'add' | 'update' | 'delete'): void;
  /** The gauges read the xDS server when scraped. */
  attachXds(xds: Pick<XdsServer, 'connectionCount'>): void;
  certificateIssued(): void;
}

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  let xds: Pick<XdsServer, 'connectionCount'> | undefined;
  const pushes = new Counter({ name: 'pilot_xds_pushes', help: 'Pilot build and send errors for lds, rds, cds and eds.', labelNames: ['type'], registers: [registry] });
  const rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Total number of XDS responses from pilot rejected by proxy.', labelNames: ['type'], registers: [registry] });
  const cfgEvents = new Counter({ name: 'pilot_k8s_cfg_events', help: 'Events from k8s config.', labelNames: ['type', 'event'], registers: [registry] });
  const certs = new Counter({ name: 'citadel_server_success_cert_issuance_count', help: 'The number of certificates issuances that have succeeded.', registers: [registry] });
  new Gauge({
    name: 'pilot_xds',
    help: 'Number of endpoints connected to this pilot using XDS.',
    labelNames: ['version'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ version: '0.1.0' }, xds?.connectionCount() ?? 0);
    },
  });
  return {
    onPush: (p) => pushes.inc({ type: metricType(p.typeUrl) }),
    onNack: (n) => rejects.inc({ type: metricType(n.typeUrl) }),
    configEvent: (kind, event) => cfgEvents.inc({ type: kind, event }),
    attachXds(x) {
      xds = x;
    },
    certificateIssued: () => certs.inc(),
  };
}
