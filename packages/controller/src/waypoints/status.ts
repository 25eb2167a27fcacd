// Pure status of waypoint Gateways and of the GatewayClass: conditions with Gateway API reasons, Istio's messages,
// addresses as Istio reports them for waypoints (the Service's cluster IPs, then its hostname), and a change test so
// the deployer writes only when something a reader can see has changed.
import { isDeepStrictEqual } from 'node:util';
import { describeObject } from '@ambit/api';
import { WAYPOINT_CONTROLLER_NAME, WAYPOINT_LISTENER_PORT } from './constants.js';
import { serviceHostname, type ConditionInput, type GatewayObject, type WaypointEvaluation } from './manifests.js';

export interface Condition extends ConditionInput {
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface ListenerStatus {
  name: string;
  supportedKinds: { group?: string; kind: string }[];
  attachedRoutes: number;
  conditions: Condition[];
}

export interface GatewayStatus {
  addresses?: { type: 'IPAddress' | 'Hostname'; value: string }[];
  conditions: Condition[];
  listeners: ListenerStatus[];
}

/** What the cluster holds for one waypoint, read from the deployer's caches. */
export interface ObservedWaypoint {
  service?: { spec?: { clusterIP?: string; clusterIPs?: string[] } };
  deployment?: { spec?: { replicas?: number }; status?: { availableReplicas?: number; replicas?: number } };
  /** Set when a generated name is taken by an object the deployer does not manage (it is left alone). */
  conflict?: string;
}

/** Kubernetes' condition timestamp format (RFC 3339, whole seconds). */
export function conditionTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Conditions with observedGeneration, keeping the previous lastTransitionTime of a condition whose status did not
 * change (Gateway API: the time the status last flipped).
 */
export function withTransitions(next: readonly ConditionInput[], previous: readonly Partial<Condition>[] | undefined, generation: number | undefined, now: Date): Condition[] {
  return next.map((c) => {
    const prev = previous?.find((p) => p.type === c.type);
    const keep = prev !== undefined && prev.status === c.status && typeof prev.lastTransitionTime === 'string';
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: keep ? prev.lastTransitionTime! : conditionTime(now),
    };
  });
}

function clusterIps(observed: ObservedWaypoint): string[] {
  const spec = observed.service?.spec;
  const ips = spec?.clusterIPs?.length ? spec.clusterIPs : spec?.clusterIP ? [spec.clusterIP] : [];
  return ips.filter((ip) => ip !== '' && ip !== 'None');
}

/** Programmed: the Service has an address and the Deployment has an available replica. */
export function programmedCondition(gw: GatewayObject, evaluation: WaypointEvaluation, observed: ObservedWaypoint, clusterDomain: string): ConditionInput {
  const ns = gw.metadata.namespace ?? '';
  const name = evaluation.deploymentName;
  if (!evaluation.deploy) {
    return { type: 'Programmed', status: 'False', reason: 'Invalid', message: 'Not deployed: the Gateway is not accepted (see the Accepted condition)' };
  }
  if (observed.conflict) return { type: 'Programmed', status: 'False', reason: 'Invalid', message: observed.conflict };
  if (clusterIps(observed).length === 0) {
    return { type: 'Programmed', status: 'False', reason: 'AddressNotAssigned', message: `Waiting for Service ${ns}/${name} to get a cluster IP` };
  }
  const available = observed.deployment?.status?.availableReplicas ?? 0;
  if (available < 1) {
    const wanted = observed.deployment?.spec?.replicas ?? 1;
    const state = observed.deployment ? `${available} of ${wanted} replica(s) available` : 'it does not exist yet';
    return { type: 'Programmed', status: 'False', reason: 'Pending', message: `Waiting for Deployment ${ns}/${name} to have an available replica (${state})` };
  }
  const host = serviceHostname(name, ns, clusterDomain);
  return { type: 'Programmed', status: 'True', reason: 'Programmed', message: `Resource programmed, assigned to service(s) ${host}:${WAYPOINT_LISTENER_PORT}` };
}

/** The whole status the deployer wants on a waypoint Gateway. */
export function buildGatewayStatus(gw: GatewayObject, evaluation: WaypointEvaluation, observed: ObservedWaypoint, clusterDomain: string, now: Date): GatewayStatus {
  const current = (gw.status ?? {}) as Partial<GatewayStatus>;
  const generation = gw.metadata.generation;
  const programmed = programmedCondition(gw, evaluation, observed, clusterDomain);
  const conditions = withTransitions([evaluation.accepted, programmed], current.conditions, generation, now);

  const listeners: ListenerStatus[] = evaluation.listeners.map((l) => {
    const previous = current.listeners?.find((p) => p.name === l.name)?.conditions;
    const inputs: ConditionInput[] = l.valid
      ? [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: l.message },
        programmed.status === 'True'
          ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: l.message }
          : { type: 'Programmed', status: 'False', reason: programmed.reason === 'Invalid' ? 'Invalid' : 'Pending', message: programmed.message },
        { type: 'Conflicted', status: 'False', reason: 'NoConflicts', message: l.message },
        { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: l.message },
      ]
      : [
        { type: 'Accepted', status: 'False', reason: 'UnsupportedProtocol', message: l.message },
        { type: 'Programmed', status: 'False', reason: 'Invalid', message: l.message },
        { type: 'Conflicted', status: 'False', reason: 'NoConflicts', message: 'No errors found' },
        { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'No errors found' },
      ];
    // Routes bind to a waypoint through Services (istio.io/use-waypoint), never to its HBONE listener, so the
    // listener supports no route kinds and has no attached routes.
    return { name: l.name, supportedKinds: [], attachedRoutes: 0, conditions: withTransitions(inputs, previous, generation, now) };
  });

  const status: GatewayStatus = { conditions, listeners };
  const ips = evaluation.deploy ? clusterIps(observed) : [];
  if (ips.length > 0) {
    // Istio reports both kinds for waypoints (consumers of different versions read different ones).
    status.addresses = [
      ...ips.map((value) => ({ type: 'IPAddress' as const, value })),
      { type: 'Hostname', value: serviceHostname(evaluation.deploymentName, gw.metadata.namespace ?? '', clusterDomain) },
    ];
  } else if (evaluation.deploy && current.addresses?.length) {
    // As Istio: once reported, an address is not withdrawn while the Service is being recreated.
    status.addresses = current.addresses;
  }
  return status;
}

/** True when `desired` differs from the status on the object in anything but timestamps. */
export function gatewayStatusChanged(current: unknown, desired: GatewayStatus): boolean {
  const cur = (current ?? {}) as Partial<GatewayStatus>;
  const strip = (cs: readonly Partial<Condition>[] | undefined) => (cs ?? []).map(({ lastTransitionTime: _t, ...rest }) => rest);
  const norm = (s: Partial<GatewayStatus>) => ({
    addresses: (s.addresses ?? []).map((a) => ({ type: a.type ?? 'IPAddress', value: a.value })),
    conditions: strip(s.conditions).filter((c) => c.type === 'Accepted' || c.type === 'Programmed'),
    listeners: (s.listeners ?? []).map((l) => ({ name: l.name, supportedKinds: l.supportedKinds ?? [], attachedRoutes: l.attachedRoutes, conditions: strip(l.conditions) })),
  });
  return !isDeepStrictEqual(norm(cur), norm(desired));
}

export interface GatewayClassObject {
  metadata: { name: string; generation?: number; [key: string]: unknown };
  spec?: { controllerName?: string; [key: string]: unknown };
  status?: { conditions?: Partial<Condition>[]; [key: string]: unknown };
}

/** Accepted=True on a class this controller implements; undefined when it is not ours or nothing changed. */
export function gatewayClassStatusUpdate(gc: GatewayClassObject, now: Date): { conditions: Condition[] } | undefined {
  if (gc.spec?.controllerName !== WAYPOINT_CONTROLLER_NAME) return undefined;
  const accepted: ConditionInput = { type: 'Accepted', status: 'True', reason: 'Accepted', message: `Handled by the Ambit waypoint controller (${WAYPOINT_CONTROLLER_NAME})` };
  const prev = gc.status?.conditions?.find((c) => c.type === 'Accepted');
  if (prev && prev.status === accepted.status && prev.reason === accepted.reason && prev.message === accepted.message && prev.observedGeneration === gc.metadata.generation) {
    return undefined;
  }
  return { conditions: withTransitions([accepted], gc.status?.conditions, gc.metadata.generation, now) };
}

/** `Gateway ns/name`, for logs. */
export function gatewayKeyOf(gw: Pick<GatewayObject, 'metadata'>): string {
  return `${gw.metadata.namespace ?? ''}/${gw.metadata.name}`;
}

export function describeGateway(gw: Pick<GatewayObject, 'metadata'>): string {
  return describeObject({ kind: 'Gateway', metadata: gw.metadata });
}
