// Forwards the L7 configuration objects (VirtualService, DestinationRule, HTTPRoute, AuthorizationPolicy, ...) to
// waypoints: each valid version is stored under CONFIG_OBJECT_TYPE_URL as one resource named
// `<Kind>/<namespace>/<name>`, its value the object's JSON. An invalid version is not served: the last valid one
// stays (or nothing, if there never was one), the problem is logged and reported as status — the same shape istiod
// writes on Istio objects (`conditions` plus `validationMessages`) — until a later valid version clears it.
// Services travel too, reduced to the ports they declare opaque (tcp, tls, mysql, ...), so waypoints skip protocol
// detection there as Istio does for declared ports.
import type { Logger } from 'pino';
import {
  CONFIG_OBJECT_TYPE_URL, L7_CONFIG_KINDS, configObjectName, waypointServiceView, describeObject, documentationUrl, encodeConfigObject,
  formatDiagnostic, sortDiagnostics, validateObject,
  type Diagnostic, type KubeObject, type L7ConfigKind,
} from '@ambit/api';
import type { ResourceStore } from '../xds/resource-store.js';

/** Condition type the forwarder owns on the objects it validates. */
export const VALIDATION_CONDITION_TYPE = 'ambit.io/Validated';

export interface ConfigObjectRef {
  kind: string;
  namespace: string;
  name: string;
  generation?: number;
}

export interface ValidationCondition {
  type: string;
  status: 'True' | 'False';
  reason: 'Accepted' | 'Invalid';
  message: string;
  observedGeneration?: number;
}

/** One entry of Istio's `status.validationMessages` (istio.analysis.v1alpha1.AnalysisMessageBase). */
export interface ValidationMessage {
  type: { code: string; name: string };
  level: 'ERROR' | 'WARNING' | 'INFO';
  documentationUrl: string;
  /** The diagnostic's text (field path included), so `kubectl get -o yaml` shows what is wrong. */
  description: string;
}

export interface ConfigStatus {
  conditions: ValidationCondition[];
  validationMessages: ValidationMessage[];
}

export interface ForwardResult {
  /** `stored`: this version is served; `unchanged`: identical to what is served; `rejected`: not served (see
   * diagnostics); `ignored`: not an L7 kind. */
  action: 'stored' | 'unchanged' | 'rejected' | 'ignored';
  diagnostics: Diagnostic[];
  /** Whether some version of the object is being served after this call. */
  serving: boolean;
}

export interface ConfigForwarderOptions {
  store: ResourceStore;
  logger: Logger;
  /** Called when an object's validation status changes (not on every identical update). */
  onStatus?: (ref: ConfigObjectRef, status: ConfigStatus) => void;
}

export interface ConfigForwarder {
  update(obj: KubeObject): ForwardResult;
  remove(kind: string, namespace: string, name: string): void;
  /** Current diagnostics of every object seen (latest version), errors first. */
  diagnostics(): Diagnostic[];
}

interface Tracked {
  diagnostics: Diagnostic[];
  /** Generation of the version being served, if any. */
  servedGeneration: number | undefined;
  serving: boolean;
  /** Last status given to onStatus, to report changes only. */
  statusKey: string | undefined;
}

const L7_KINDS: ReadonlySet<string> = new Set(L7_CONFIG_KINDS);
const LEVELS = { Error: 'ERROR', Warning: 'WARNING', Info: 'INFO' } as const;

export function isL7ConfigKind(kind: string | undefined): kind is L7ConfigKind {
  return kind !== undefined && L7_KINDS.has(kind);
}

export function createConfigForwarder(options: ConfigForwarderOptions): ConfigForwarder {
  const { store } = options;
  const logger = options.logger.child({ component: 'config-forwarder' });
  const tracked = new Map<string, Tracked>();

  function statusOf(obj: KubeObject, t: Tracked): ConfigStatus {
    const errors = t.diagnostics.filter((d) => d.severity === 'Error');
    const generation = obj.metadata.generation;
    let condition: ValidationCondition;
    if (errors.length > 0) {
      const kept = t.serving
        ? `; the last valid version${t.servedGeneration !== undefined ? ` (generation ${t.servedGeneration})` : ''} is still served`
        : '; nothing is served for this object';
      condition = {
        type: VALIDATION_CONDITION_TYPE,
        status: 'False',
        reason: 'Invalid',
        message: `${errors.map(formatDiagnostic).join('\n')}${kept}`,
      };
    } else {
      condition = { type: VALIDATION_CONDITION_TYPE, status: 'True', reason: 'Accepted', message: 'configuration is valid and served to waypoints' };
    }
    if (generation !== undefined) condition.observedGeneration = generation;
    return {
      conditions: [condition],
      validationMessages: t.diagnostics.map((d) => ({
        type: { code: d.code, name: d.name },
        level: LEVELS[d.severity],
        documentationUrl: documentationUrl(d.code),
        description: d.message,
      })),
    };
  }

  function report(obj: KubeObject, t: Tracked): void {
    if (!options.onStatus) return;
    const status = statusOf(obj, t);
    const key = JSON.stringify(status);
    if (key === t.statusKey) return;
    t.statusKey = key;
    const ref: ConfigObjectRef = { kind: obj.kind ?? '', namespace: obj.metadata.namespace ?? '', name: obj.metadata.name };
    if (obj.metadata.generation !== undefined) ref.generation = obj.metadata.generation;
    options.onStatus(ref, status);
  }

  /**
   * A Service reaches waypoints only as the ports it declares opaque (waypointServiceView); a Service that declares
   * none (or stops declaring them) is not, or no longer, sent. Services get no validation status: the API server
   * validated them, and their status belongs to Kubernetes.
   */
  function updateService(obj: KubeObject): ForwardResult {
    const name = configObjectName(obj);
    const view = waypointServiceView(obj);
    if (!view) {
      if (store.remove(CONFIG_OBJECT_TYPE_URL, name)) logger.debug({ object: name }, 'service declares no opaque port any more');
      return { action: 'ignored', diagnostics: [], serving: false };
    }
    const before = store.get(CONFIG_OBJECT_TYPE_URL, name)?.version;
    const version = store.upsertEncoded(CONFIG_OBJECT_TYPE_URL, name, { type_url: CONFIG_OBJECT_TYPE_URL, value: encodeConfigObject(view) });
    return { action: before === version ? 'unchanged' : 'stored', diagnostics: [], serving: true };
  }

  return {
    update(obj) {
      if (obj.kind === 'Service') return updateService(obj);
      if (!isL7ConfigKind(obj.kind)) return { action: 'ignored', diagnostics: [], serving: false };
      const name = configObjectName(obj);
      const diagnostics = sortDiagnostics(validateObject(obj));
      const errors = diagnostics.filter((d) => d.severity === 'Error');
      const t = tracked.get(name) ?? { diagnostics: [], servedGeneration: undefined, serving: false, statusKey: undefined };
      tracked.set(name, t);
      t.diagnostics = diagnostics;
      if (errors.length > 0) {
        const object = describeObject(obj);
        for (const d of errors) logger.warn({ object, code: d.code, field: d.field }, formatDiagnostic(d));
        logger.warn({ object, errors: errors.length, keepingPrevious: t.serving }, t.serving
          ? `${object} rejected: ${errors.length} error(s); the last valid version stays in force`
          : `${object} rejected: ${errors.length} error(s); nothing is served for it until a valid version arrives`);
        report(obj, t);
        return { action: 'rejected', diagnostics, serving: t.serving };
      }
      const before = store.get(CONFIG_OBJECT_TYPE_URL, name)?.version;
      const version = store.upsertEncoded(CONFIG_OBJECT_TYPE_URL, name, { type_url: CONFIG_OBJECT_TYPE_URL, value: encodeConfigObject(obj) });
      t.serving = true;
      t.servedGeneration = obj.metadata.generation;
      for (const d of diagnostics) logger.info({ object: describeObject(obj), code: d.code, field: d.field }, formatDiagnostic(d));
      report(obj, t);
      return { action: before === version ? 'unchanged' : 'stored', diagnostics, serving: true };
    },
    remove(kind, namespace, name) {
      if (kind === 'Service') {
        if (store.remove(CONFIG_OBJECT_TYPE_URL, configObjectName({ kind, metadata: { name, namespace } }))) logger.debug({ object: `Service ${namespace}/${name}` }, 'service protocol view removed');
        return;
      }
      if (!isL7ConfigKind(kind)) return;
      const key = configObjectName({ kind, metadata: { name, namespace } });
      tracked.delete(key);
      if (store.remove(CONFIG_OBJECT_TYPE_URL, key)) logger.debug({ object: key }, 'configuration object removed');
    },
    diagnostics() {
      return sortDiagnostics([...tracked.values()].flatMap((t) => t.diagnostics));
    },
  };
}
