import { isIP } from 'node:net';
import { DEFAULT_SERVICE_ACCOUNT, formatSpiffeId, PORTS } from '@ambit/api';
import { formatAuthority } from '@ambit/hbone';
import type { ProxyState } from '../state/store.js';
import type { GatewayAddress, Service, Workload } from '../state/types.js';

/** Where an outbound connection goes (ztunnel's `build_request`), decided from state only: pure and testable. */
export type OutboundPlan =
  | {
      kind: 'hbone';
      /** The HBONE peer: destination pod or waypoint, port 15008. */
      nextHop: { host: string; port: number };
      /** CONNECT :authority: pod ip:targetPort, or the original destination when going through a waypoint. */
      authority: string;
      /** The server must present one of these. */
      identities: string[];
      service?: Service;
      workload?: Workload;
      viaWaypoint: boolean;
    }
  | { kind: 'passthrough'; target: { host: string; port: number }; service?: Service; workload?: Workload; reason: string }
  | { kind: 'fail'; reason: string; service?: Service };

export interface PlanInput {
  state: ProxyState;
  network: string;
  trustDomain: string;
  source: Workload | undefined;
  destination: { address: string; port: number };
  random?: () => number;
}

export function identityOf(w: Workload, defaultTrustDomain: string): string {
  return formatSpiffeId({ trustDomain: w.trustDomain || defaultTrustDomain, namespace: w.namespace, serviceAccount: w.serviceAccount || DEFAULT_SERVICE_ACCOUNT });
}

export function planOutbound(input: PlanInput): OutboundPlan {
  const { state, network, destination } = input;
  const service = state.serviceByVip(network, destination.address);
  if (service) {
    if (service.waypoint) return viaWaypoint(input, service.waypoint, { service });
    const choice = state.pickEndpoint(service, destination.port, {
      ...(input.source ? { source: input.source } : {}),
      ...(input.random ? { random: input.random } : {}),
      family: (isIP(destination.address) || 4) as 4 | 6,
    });
    if (choice.kind === 'passthrough') return { kind: 'passthrough', target: { host: destination.address, port: destination.port }, service, reason: `service ${service.hostname} load balancing is Passthrough` };
    if (choice.kind === 'none') return { kind: 'fail', reason: choice.reason, service };
    if (!choice.address) return { kind: 'fail', reason: `endpoint ${choice.workload.namespace}/${choice.workload.name} of ${service.hostname} has no address of the destination's IP family`, service };
    return toWorkload(input, choice.workload, choice.address, choice.targetPort, service);
  }
  const workload = state.workloadByAddress(network, destination.address);
  if (workload) {
    if (workload.waypoint) return viaWaypoint(input, workload.waypoint, { workload });
    return toWorkload(input, workload, destination.address, destination.port, undefined);
  }
  return { kind: 'passthrough', target: { host: destination.address, port: destination.port }, reason: 'destination is not a known service or workload' };
}

function toWorkload(input: PlanInput, w: Workload, address: string, port: number, service: Service | undefined): OutboundPlan {
  if (w.protocol !== 'HBONE') {
    return { kind: 'passthrough', target: { host: address, port }, workload: w, ...(service ? { service } : {}), reason: `workload ${w.namespace}/${w.name} is not captured (protocol ${w.protocol})` };
  }
  return {
    kind: 'hbone',
    nextHop: { host: address, port: PORTS.hbone },
    authority: formatAuthority(address, port),
    identities: [identityOf(w, input.trustDomain), ...(service?.subjectAltNames ?? [])],
    ...(service ? { service } : {}),
    workload: w,
    viaWaypoint: false,
  };
}

function viaWaypoint(input: PlanInput, gw: GatewayAddress, target: { service?: Service; workload?: Workload }): OutboundPlan {
  const { state } = input;
  const dest = gw.destination;
  const what = target.service ? `service ${target.service.hostname}` : `workload ${target.workload!.namespace}/${target.workload!.name}`;
  let waypoint: Workload | undefined;
  let address: string | undefined;
  if ('hostname' in dest) {
    const svc = state.serviceByKey(`${dest.namespace}/${dest.hostname}`) ?? state.serviceByHostname(dest.hostname, dest.namespace);
    if (!svc) return { kind: 'fail', reason: `waypoint ${dest.namespace}/${dest.hostname} of ${what} is not a known service`, ...(target.service ? { service: target.service } : {}) };
    const healthy = state.endpointsOf(svc).map((e) => e.workload).filter((w) => w.status === 'Healthy' && w.workloadIps.length > 0);
    if (healthy.length === 0) return { kind: 'fail', reason: `waypoint ${dest.hostname} of ${what} has no healthy endpoint`, ...(target.service ? { service: target.service } : {}) };
    waypoint = healthy[Math.floor((input.random ?? Math.random)() * healthy.length)]!;
    address = waypoint.workloadIps[0];
  } else {
    waypoint = state.workloadByAddress(dest.network, dest.address);
    address = dest.address;
    if (!waypoint) {
      const svc = state.serviceByVip(dest.network, dest.address);
      const w = svc ? state.endpointsOf(svc).map((e) => e.workload).find((x) => x.status === 'Healthy') : undefined;
      if (!w) return { kind: 'fail', reason: `waypoint address ${dest.address} of ${what} is not a known workload`, ...(target.service ? { service: target.service } : {}) };
      waypoint = w;
      address = w.workloadIps[0];
    }
  }
  return {
    kind: 'hbone',
    nextHop: { host: address!, port: gw.hboneMtlsPort || PORTS.hbone },
    authority: formatAuthority(input.destination.address, input.destination.port),
    identities: [identityOf(waypoint, input.trustDomain)],
    ...target,
    viaWaypoint: true,
  };
}
