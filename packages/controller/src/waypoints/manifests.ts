// Pure part of the waypoint deployer: which Gateways are waypoints we deploy, what is wrong with the others, and
// the ServiceAccount, Deployment and Service of each, shaped as Istio's istio-discovery chart renders
// files/waypoint.yaml (names, labels, probes, volumes), with the env our waypoint binary reads.
import type { V1Deployment, V1EnvVar, V1Service, V1ServiceAccount } from '@kubernetes/client-node';
import { ANNOTATIONS, DATAPLANE_MODE, LABELS, PORTS, ROOT_CERT_CONFIGMAP, ROOT_CERT_CONFIGMAP_KEY, describeObject, type KubeObject } from '@ambit/api';
import {
  GATEWAY_API_GROUP, GATEWAY_API_VERSION, GATEWAY_CLASS_NAME_LABEL, GATEWAY_NAME_LABEL, MANAGED_LABEL, MANAGED_LABEL_VALUE,
  NON_COPIED_ANNOTATIONS, ROOT_CERT_DIR, ROOT_CERT_VOLUME, SERVICE_TYPES, TOKEN_AUDIENCE, TOKEN_DIR, TOKEN_EXPIRATION_SECONDS, TOKEN_FILE,
  TOKEN_VOLUME, UNEXPECTED_LISTENER_MESSAGE, WAYPOINT_CONTAINER_NAME, WAYPOINT_LISTENER_PORT, WAYPOINT_LISTENER_PROTOCOL,
} from './constants.js';

/** What the deployer puts into every waypoint it renders. */
export interface WaypointSettings {
  /** Waypoint container image (the controller's AMBIT_WAYPOINT_IMAGE). */
  image: string;
  /** XDS_ADDRESS for the waypoint; default `istiod.<controllerNamespace>.svc:15012`. */
  xdsAddress?: string;
  /** CA_ADDRESS for the waypoint; default the xDS address (the controller serves both on 15012). */
  caAddress?: string;
  clusterId: string;
  trustDomain: string;
  /** Namespace the controller runs in (the default addresses name its Service there). */
  controllerNamespace: string;
  /** Cluster DNS suffix of Service hostnames; default `cluster.local`. */
  clusterDomain?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
}

export interface ResolvedWaypointSettings extends Required<Omit<WaypointSettings, 'imagePullPolicy'>> {
  imagePullPolicy?: WaypointSettings['imagePullPolicy'];
}

export function resolveWaypointSettings(s: WaypointSettings): ResolvedWaypointSettings {
  for (const k of ['image', 'clusterId', 'trustDomain', 'controllerNamespace'] as const) {
    if (typeof s[k] !== 'string' || s[k].trim() === '') throw new TypeError(`waypoint deployer settings: ${k} must be a non-empty string`);
  }
  const xdsAddress = s.xdsAddress ?? `istiod.${s.controllerNamespace}.svc:${PORTS.xds}`;
  return {
    image: s.image,
    xdsAddress,
    caAddress: s.caAddress ?? xdsAddress,
    clusterId: s.clusterId,
    trustDomain: s.trustDomain,
    controllerNamespace: s.controllerNamespace,
    clusterDomain: s.clusterDomain ?? 'cluster.local',
    ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
  };
}

/** The fields of a Gateway the deployer reads. */
export interface GatewayListener {
  name?: string;
  port?: number;
  protocol?: string;
  [key: string]: unknown;
}
export interface GatewayObject extends KubeObject {
  spec?: {
    gatewayClassName?: string;
    listeners?: GatewayListener[];
    addresses?: { type?: string; value?: string }[];
    infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string>; parametersRef?: { group?: string; kind?: string; name?: string } };
    [key: string]: unknown;
  };
}

/** A Gateway condition before lastTransitionTime/observedGeneration are filled in. */
export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** Why a Gateway is or is not accepted, and what each listener gets. */
export interface WaypointEvaluation {
  /** True when the objects should exist (Accepted=True, possibly with some bad listeners). */
  deploy: boolean;
  accepted: ConditionInput;
  /** Per listener, in spec order: accepted or the reason it is not. */
  listeners: { name: string; valid: boolean; message: string }[];
  /** Names of the generated objects (Gateway name unless overridden by annotation). */
  deploymentName: string;
  serviceAccountName: string;
  serviceType: (typeof SERVICE_TYPES)[number];
}

/** Listener validity as Istio judges waypoint listeners (port 15008, protocol HBONE). */
export function isWaypointListener(l: GatewayListener): boolean {
  return l.port === WAYPOINT_LISTENER_PORT && l.protocol === WAYPOINT_LISTENER_PROTOCOL;
}

/** Decides whether a Gateway of a waypoint class is deployable and writes the Accepted condition. */
export function evaluateWaypointGateway(gw: GatewayObject): WaypointEvaluation {
  const what = describeObject({ kind: 'Gateway', metadata: gw.metadata });
  const annotations = gw.metadata.annotations ?? {};
  const listeners = (gw.spec?.listeners ?? []).map((l, i) => {
    const valid = isWaypointListener(l);
    return { name: l.name ?? `listener-${i}`, valid, message: valid ? 'No errors found' : UNEXPECTED_LISTENER_MESSAGE };
  });
  const deploymentName = annotations[LABELS.nameOverride] || gw.metadata.name;
  const serviceAccountName = annotations[LABELS.serviceAccountOverride] || deploymentName;
  const base = { listeners, deploymentName, serviceAccountName, serviceType: 'ClusterIP' as const };
  const reject = (reason: string, message: string): WaypointEvaluation => ({ ...base, deploy: false, accepted: { type: 'Accepted', status: 'False', reason, message: `${what}: ${message}` } });

  const requestedType = annotations[LABELS.serviceType];
  if (requestedType !== undefined && !(SERVICE_TYPES as readonly string[]).includes(requestedType)) {
    return reject('InvalidParameters', `metadata.annotations["${LABELS.serviceType}"]: "${requestedType}" is not one of ${SERVICE_TYPES.join(', ')}`);
  }
  const params = gw.spec?.infrastructure?.parametersRef;
  if (params) {
    return reject('InvalidParameters', `spec.infrastructure.parametersRef (${params.kind ?? '?'} ${params.name ?? '?'}): waypoint parameters are not supported; remove the reference`);
  }
  if ((gw.spec?.addresses ?? []).length > 0) {
    return reject('UnsupportedAddress', 'spec.addresses: a waypoint gets its address from its generated Service; remove spec.addresses');
  }
  const bad = (gw.spec?.listeners ?? []).flatMap((l, i) => (isWaypointListener(l) ? [] : [`spec.listeners[${i}] "${l.name ?? ''}" (port ${l.port ?? '?'}, protocol ${l.protocol ?? '?'})`]));
  const serviceType = (requestedType ?? 'ClusterIP') as WaypointEvaluation['serviceType'];
  if (listeners.every((l) => !l.valid)) {
    const found = bad.length > 0 ? `; found ${bad.join(', ')}` : '; it has no listeners';
    return reject('ListenersNotValid', `a waypoint needs a listener on port ${WAYPOINT_LISTENER_PORT} with protocol ${WAYPOINT_LISTENER_PROTOCOL}${found}`);
  }
  if (bad.length > 0) {
    // Gateway API: ListenersNotValid with Accepted=True when the Gateway still works through its valid listeners.
    return {
      ...base, serviceType, deploy: true,
      accepted: { type: 'Accepted', status: 'True', reason: 'ListenersNotValid', message: `${what}: ignoring ${bad.join(', ')}: ${UNEXPECTED_LISTENER_MESSAGE}` },
    };
  }
  return { ...base, serviceType, deploy: true, accepted: { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted' } };
}

/** Labels copied onto the generated objects: spec.infrastructure.labels when set, else the Gateway's own (Istio's default). */
export function infrastructureLabels(gw: GatewayObject): Record<string, string> {
  const infra = gw.spec?.infrastructure?.labels;
  if (infra) return withoutGatewayApiPrefix(infra);
  return { ...(gw.metadata.labels ?? {}) };
}

export function infrastructureAnnotations(gw: GatewayObject): Record<string, string> {
  const infra = gw.spec?.infrastructure?.annotations;
  const source = infra ? withoutGatewayApiPrefix(infra) : { ...(gw.metadata.annotations ?? {}) };
  for (const k of NON_COPIED_ANNOTATIONS) delete source[k];
  return source;
}

function withoutGatewayApiPrefix(m: Record<string, string>): Record<string, string> {
  // Istio drops these so a user cannot collide with the labels the controller owns.
  return Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('gateway.networking.k8s.io/')));
}

export interface WaypointObjects {
  serviceAccount: V1ServiceAccount & { apiVersion: 'v1'; kind: 'ServiceAccount' };
  deployment: V1Deployment & { apiVersion: 'apps/v1'; kind: 'Deployment' };
  service: V1Service & { apiVersion: 'v1'; kind: 'Service' };
}

/** The three objects of one waypoint Gateway, ready for server-side apply. The Gateway must have a uid. */
export function renderWaypointObjects(gw: GatewayObject, evaluation: WaypointEvaluation, settings: ResolvedWaypointSettings): WaypointObjects {
  const name = gw.metadata.name;
  const namespace = gw.metadata.namespace;
  const uid = gw.metadata.uid;
  if (!namespace || !uid) throw new TypeError(`${describeObject({ kind: 'Gateway', metadata: gw.metadata })}: metadata.namespace and metadata.uid are required to render a waypoint`);
  const className = gw.spec?.gatewayClassName ?? '';
  const infraLabels = infrastructureLabels(gw);
  const infraAnnotations = infrastructureAnnotations(gw);
  const ownerReferences = [{ apiVersion: `${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}`, kind: 'Gateway', name, uid }];
  const objectLabels = { ...infraLabels, [GATEWAY_NAME_LABEL]: name, [GATEWAY_CLASS_NAME_LABEL]: className, [MANAGED_LABEL]: MANAGED_LABEL_VALUE };
  const meta = (objName: string, annotations: Record<string, string> = infraAnnotations) => ({ name: objName, namespace, labels: { ...objectLabels }, annotations: { ...annotations }, ownerReferences });
  const { deploymentName, serviceAccountName } = evaluation;

  const podLabels = {
    [LABELS.sidecarInject]: 'false',
    [LABELS.dataplaneMode]: DATAPLANE_MODE.none,
    [LABELS.canonicalName]: deploymentName,
    [LABELS.canonicalRevision]: 'latest',
    ...infraLabels,
    [GATEWAY_NAME_LABEL]: name,
    [GATEWAY_CLASS_NAME_LABEL]: className,
    [MANAGED_LABEL]: MANAGED_LABEL_VALUE,
  };
  const podAnnotations = {
    ...infraAnnotations,
    [LABELS.rev]: gw.metadata.labels?.[LABELS.rev] || 'default',
    'prometheus.io/path': '/stats/prometheus',
    'prometheus.io/port': String(PORTS.metrics),
    'prometheus.io/scrape': 'true',
  };
  const field = (fieldPath: string): V1EnvVar['valueFrom'] => ({ fieldRef: { apiVersion: 'v1', fieldPath } });
  const env: V1EnvVar[] = [
    { name: 'POD_NAME', valueFrom: field('metadata.name') },
    { name: 'POD_NAMESPACE', valueFrom: field('metadata.namespace') },
    { name: 'INSTANCE_IP', valueFrom: field('status.podIP') },
    { name: 'NODE_NAME', valueFrom: field('spec.nodeName') },
    { name: 'SERVICE_ACCOUNT', valueFrom: field('spec.serviceAccountName') },
    { name: 'TRUST_DOMAIN', value: settings.trustDomain },
    { name: 'CLUSTER_ID', value: settings.clusterId },
    { name: 'XDS_ADDRESS', value: settings.xdsAddress },
    { name: 'CA_ADDRESS', value: settings.caAddress },
    { name: 'XDS_ROOT_CA', value: `${ROOT_CERT_DIR}/${ROOT_CERT_CONFIGMAP_KEY}` },
    { name: 'CA_ROOT_CA', value: `${ROOT_CERT_DIR}/${ROOT_CERT_CONFIGMAP_KEY}` },
    { name: 'AUTH_TOKEN', value: `${TOKEN_DIR}/${TOKEN_FILE}` },
    { name: 'GATEWAY_NAME', value: name },
  ];
  const readinessGet = { path: '/healthz/ready', port: PORTS.readiness, scheme: 'HTTP' };

  const deployment: WaypointObjects['deployment'] = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(deploymentName),
    spec: {
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: name } },
      template: {
        metadata: { labels: podLabels, annotations: podAnnotations },
        spec: {
          serviceAccountName,
          containers: [{
            name: WAYPOINT_CONTAINER_NAME,
            image: settings.image,
            ...(settings.imagePullPolicy ? { imagePullPolicy: settings.imagePullPolicy } : {}),
            ports: [
              { name: 'hbone', containerPort: PORTS.hbone, protocol: 'TCP' },
              { name: 'metrics', containerPort: PORTS.metrics, protocol: 'TCP' },
              { name: 'status-port', containerPort: PORTS.readiness, protocol: 'TCP' },
              { name: 'admin', containerPort: PORTS.admin, protocol: 'TCP' },
            ],
            env,
            // Istio's probes: a fast startup probe, then readiness every 15 s.
            startupProbe: { httpGet: readinessGet, initialDelaySeconds: 1, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 30 },
            readinessProbe: { httpGet: readinessGet, initialDelaySeconds: 0, periodSeconds: 15, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 4 },
            securityContext: {
              privileged: false,
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              runAsUser: 1337,
              runAsGroup: 1337,
              capabilities: { drop: ['ALL'] },
            },
            volumeMounts: [
              { name: ROOT_CERT_VOLUME, mountPath: ROOT_CERT_DIR },
              { name: TOKEN_VOLUME, mountPath: TOKEN_DIR },
            ],
          }],
          volumes: [
            { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: TOKEN_FILE } }] } },
            { name: ROOT_CERT_VOLUME, configMap: { name: ROOT_CERT_CONFIGMAP } },
          ],
        },
      },
    },
  };

  const service: WaypointObjects['service'] = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(deploymentName, { [ANNOTATIONS.trafficDistribution]: 'PreferClose', ...infraAnnotations }),
    spec: {
      type: evaluation.serviceType,
      ipFamilyPolicy: 'PreferDualStack',
      selector: { [GATEWAY_NAME_LABEL]: name },
      ports: servicePorts(gw),
    },
  };

  const serviceAccount: WaypointObjects['serviceAccount'] = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(serviceAccountName) };
  return { serviceAccount, deployment, service };
}

/** Istio's extractServicePorts: status-port 15021 first, then one port per distinct listener port, appProtocol = protocol lowercased. */
export function servicePorts(gw: GatewayObject): { name: string; port: number; protocol: 'TCP'; appProtocol: string }[] {
  const out: { name: string; port: number; protocol: 'TCP'; appProtocol: string }[] = [{ name: 'status-port', port: PORTS.readiness, protocol: 'TCP', appProtocol: 'tcp' }];
  const seen = new Set<number>();
  for (const [i, l] of (gw.spec?.listeners ?? []).entries()) {
    if (!isWaypointListener(l) || seen.has(l.port!)) continue;
    seen.add(l.port!);
    // Listener names allow dots and 253 characters; port names allow neither.
    const name = (l.name ?? '').replaceAll('.', '-').slice(0, 63) || `${(l.protocol ?? 'tcp').toLowerCase()}-${i}`;
    out.push({ name, port: l.port!, protocol: 'TCP', appProtocol: (l.protocol ?? '').toLowerCase() });
  }
  return out;
}

/** The FQDN Istio reports for a waypoint's Service. */
export function serviceHostname(name: string, namespace: string, clusterDomain: string): string {
  return `${name}.${namespace}.svc.${clusterDomain}`;
}
