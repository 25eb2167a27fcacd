// Waypoint binding (spec §3.7, §5.1, §5.2): `istio.io/use-waypoint` (+ `-namespace`) on the object, else on its
// Namespace, names a Gateway of class istio-waypoint; `istio.io/waypoint-for` (Gateway, else GatewayClass, default
// `service`) says whether it takes service-addressed or workload-addressed traffic; the listener's allowedRoutes
// says which namespaces may attach. The result is the GatewayAddress ztunnel dials (HBONE 15008).
import {
  ANNOTATIONS, LABELS, PORTS, WAYPOINT_FOR, WAYPOINT_GATEWAY_CLASS,
  type ApplicationTunnel, type GatewayAddress, type KubeObject,
} from '@ambit/api';
import type { TranslateContext } from './context.js';
import { parseIp } from './addresses.js';
import { matchesLabelSelector, type LabelSelector } from './label-selector.js';
import { TRANSLATE_NAMES } from './mesh.js';

export type TrafficKind = 'service' | 'workload';

export interface Waypoint {
  readonly namespace: string;
  readonly name: string;
  readonly address: GatewayAddress;
  /** `service`, `workload`, `all` or `none`. */
  readonly trafficType: string;
  /** Sandwich binding for the waypoint's own pods (`ambient.istio.io/waypoint-inbound-binding`). */
  readonly binding?: ApplicationTunnel;
  readonly allowedRoutes: { from: string; selector?: LabelSelector };
}

/** Why a use-waypoint reference did not bind (Istio's WaypointBound reasons). */
export interface WaypointProblem {
  readonly reason: 'WaypointNotFound' | 'WaypointNotReady' | 'AttachmentDenied' | 'UnsupportedTrafficType' | 'NotAWaypoint';
  readonly message: string;
}

export interface WaypointBinding {
  readonly waypoint?: Waypoint;
  readonly problem?: WaypointProblem;
}

/** The GatewayAddress of a waypoint, from Gateway status, else its Service, else a status IP; undefined when not ready. */
function waypointAddress(ctx: TranslateContext, gw: KubeObject): GatewayAddress | undefined {
  const ns = gw.metadata.namespace ?? '';
  const statusAddresses = (gw.status?.addresses ?? []) as { type?: string; value?: string }[];
  const hostname = statusAddresses.find((a) => a?.type === 'Hostname' && a.value)?.value;
  const byHostname = (h: string): GatewayAddress => ({ hostname: { namespace: ns, hostname: h }, hbone_mtls_port: PORTS.hbone });
  if (hostname) return byHostname(hostname);
  // Before the deployer has written status: the Service it creates for the Gateway (same name unless overridden).
  const svcName = gw.metadata.annotations?.[LABELS.nameOverride] ?? gw.metadata.labels?.[LABELS.nameOverride] ?? gw.metadata.name;
  if (ctx.get('Service', ns, svcName)) return byHostname(`${svcName}.${ns}.svc.${ctx.mesh.clusterDomain}`);
  for (const a of statusAddresses) {
    const ip = a?.type === 'IPAddress' && a.value ? parseIp(a.value) : undefined;
    if (ip) return { address: { network: ctx.mesh.network, address: ip }, hbone_mtls_port: PORTS.hbone };
  }
  return undefined;
}

function inboundBinding(gw: KubeObject, cls: KubeObject | undefined): ApplicationTunnel | undefined {
  const value = gw.metadata.annotations?.[ANNOTATIONS.waypointInboundBinding] ?? cls?.metadata.annotations?.[ANNOTATIONS.waypointInboundBinding];
  if (!value) return undefined;
  const m = /^(NONE|PROXY)(?:\/(\d{1,5}))?$/.exec(value);
  if (!m) return undefined;
  return { protocol: m[1] as 'NONE' | 'PROXY', ...(m[2] ? { port: Number(m[2]) } : {}) };
}

interface Listener {
  port?: number;
  protocol?: string;
  allowedRoutes?: { namespaces?: { from?: string; selector?: LabelSelector } };
}

function allowedRoutesOf(gw: KubeObject, binding: ApplicationTunnel | undefined): Waypoint['allowedRoutes'] {
  const listeners = (gw.spec?.listeners ?? []) as Listener[];
  let listener: Listener | undefined;
  if (binding?.port) listener = listeners.find((l) => l.port === binding.port);
  else if (binding?.protocol === 'PROXY') listener = listeners.find((l) => l.protocol === 'PROXY');
  listener ??= listeners.find((l) => l.protocol === 'HBONE' && l.port === PORTS.hbone);
  const ns = listener?.allowedRoutes?.namespaces;
  return { from: ns?.from ?? 'Same', ...(ns?.selector ? { selector: ns.selector } : {}) };
}

/** The waypoint named `namespace/name`, or why it cannot be used. */
export function lookupWaypoint(ctx: TranslateContext, namespace: string, name: string): Waypoint | WaypointProblem {
  const gw = ctx.get('Gateway', namespace, name);
  if (!gw) return { reason: 'WaypointNotFound', message: `waypoint ${namespace}/${name} was not found` };
  const className = String(gw.spec?.gatewayClassName ?? '');
  if (className !== WAYPOINT_GATEWAY_CLASS) {
    return { reason: 'NotAWaypoint', message: `Gateway ${namespace}/${name} has class "${className}", not ${WAYPOINT_GATEWAY_CLASS}` };
  }
  const cls = ctx.get('GatewayClass', '', className);
  const address = waypointAddress(ctx, gw);
  if (!address) return { reason: 'WaypointNotReady', message: `waypoint ${namespace}/${name} has no address yet (no status address and no Service)` };
  const trafficType = gw.metadata.labels?.[LABELS.waypointFor] ?? cls?.metadata.labels?.[LABELS.waypointFor] ?? WAYPOINT_FOR.service;
  const binding = inboundBinding(gw, cls);
  return {
    namespace, name, address, trafficType,
    ...(binding ? { binding } : {}),
    allowedRoutes: allowedRoutesOf(gw, binding),
  };
}

function isProblem(w: Waypoint | WaypointProblem): w is WaypointProblem {
  return 'reason' in w;
}

function allowsAttachment(ctx: TranslateContext, w: Waypoint, fromNamespace: string): boolean {
  switch (w.allowedRoutes.from) {
    case 'All': return true;
    case 'Selector': {
      const ns = ctx.get('Namespace', '', fromNamespace);
      return matchesLabelSelector(w.allowedRoutes.selector ?? {}, ns?.metadata.labels ?? {});
    }
    default: return w.namespace === fromNamespace;
  }
}

/** `istio.io/use-waypoint` of some labels: undefined (no label), 'none' (opt-out), or the reference. */
function useWaypoint(labels: Readonly<Record<string, string>> | undefined, defaultNamespace: string): { namespace: string; name: string } | 'none' | undefined {
  const name = labels?.[LABELS.useWaypoint];
  if (name === undefined) return undefined;
  if (name === 'none') return 'none';
  return { namespace: labels?.[LABELS.useWaypointNamespace] || defaultNamespace, name };
}

export function isManagedGateway(labels: Readonly<Record<string, string>> | undefined): boolean {
  return labels?.[TRANSLATE_NAMES.gatewayManaged] === TRANSLATE_NAMES.gatewayManagedValue;
}

/**
 * The waypoint for a Service/ServiceEntry (`service`) or a Pod/WorkloadEntry (`workload`) with these labels in this
 * namespace. The object's own label wins over its namespace's; `none` on the object opts out.
 */
export function waypointFor(ctx: TranslateContext, target: { namespace: string; labels?: Readonly<Record<string, string>> }, traffic: TrafficKind): WaypointBinding {
  // Waypoints and east-west gateways never get a waypoint themselves.
  if (isManagedGateway(target.labels)) return {};
  let ref = useWaypoint(target.labels, target.namespace);
  if (ref === 'none') return {};
  if (!ref) {
    const ns = ctx.get('Namespace', '', target.namespace);
    const nsRef = useWaypoint(ns?.metadata.labels, target.namespace);
    if (!nsRef || nsRef === 'none') return {};
    ref = nsRef;
  }
  const w = lookupWaypoint(ctx, ref.namespace, ref.name);
  if (isProblem(w)) return { problem: w };
  if (!allowsAttachment(ctx, w, target.namespace)) {
    return { problem: { reason: 'AttachmentDenied', message: `waypoint ${w.namespace}/${w.name} does not allow attachment from namespace ${target.namespace} (allowedRoutes from ${w.allowedRoutes.from})` } };
  }
  if (w.trafficType === WAYPOINT_FOR.all || w.trafficType === traffic) return { waypoint: w };
  return {
    problem: {
      reason: 'UnsupportedTrafficType',
      message: `waypoint ${w.namespace}/${w.name} is for ${w.trafficType} traffic (istio.io/waypoint-for), not ${traffic} traffic`,
    },
  };
}

/** The waypoint this object is an instance of (label gateway.networking.k8s.io/gateway-name), if that waypoint exists. */
export function waypointOfInstance(ctx: TranslateContext, target: { namespace: string; labels?: Readonly<Record<string, string>> }): Waypoint | undefined {
  const gwName = target.labels?.[LABELS.gatewayName];
  if (!gwName) return undefined;
  const w = lookupWaypoint(ctx, target.namespace, gwName);
  return isProblem(w) ? undefined : w;
}
