// Public surface of @ambit/controller/translate: Kubernetes/Istio objects -> Istio's workload API.
export { createMemoryIndex, objectKey, keyOf, parseObjectKey, workloadLabels, selectorOf, labelsMatch } from './object-index.js';
export type { ObjectIndex, LabelMap, SelectableKind, SelectorKind } from './object-index.js';
export { resolveMeshSettings, TRANSLATE_NAMES, CONDITION_TYPES } from './mesh.js';
export type { MeshSettings, ResolvedMeshSettings } from './mesh.js';
export { createContext, TranslationError } from './context.js';
export type { TranslateContext } from './context.js';
export { createTranslator, UNIT_KINDS } from './translator.js';
export type { Translator, TranslatorOptions, StatusRef, ObjectStatus } from './translator.js';
export {
  translatePod, translateWorkloadEntry, translateServiceEntryWorkloads, translateEndpointSlice,
  podUid, podWorkloadName, canonicalService, workloadPolicies, selectorPolicyKeys,
} from './workloads.js';
export type { WorkloadTranslation } from './workloads.js';
export { translateService, translateServiceEntry, serviceHostname, serviceKey } from './services.js';
export type { ServiceTranslation } from './services.js';
export { translateAuthorizationPolicy, toStringMatch } from './authorization.js';
export type { PolicyTranslation, StatusCondition } from './authorization.js';
export {
  translatePeerAuthentication, peerAuthenticationKeys, staticStrictAuthorization,
  STATIC_STRICT_POLICY_NAME, PORT_LEVEL_POLICY_PREFIX,
} from './peer-authentication.js';
export { waypointFor, waypointOfInstance, lookupWaypoint } from './waypoints.js';
export type { Waypoint, WaypointBinding, WaypointProblem, TrafficKind } from './waypoints.js';
