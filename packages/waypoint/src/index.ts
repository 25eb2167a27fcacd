// Public surface of @ambit/waypoint.
export const WAYPOINT_PACKAGE = '@ambit/waypoint';
export { loadConfig, type WaypointConfig, type WaypointLimits, type ListenAddress } from './config/load.js';
export { ENV } from './config/env.js';
export { createWaypointApp, type WaypointApp, type WaypointRuntime } from './app.js';
export { createConfigStore, type ConfigStore, type ConfigStoreOptions, type ConfigBatch, type ConfigApplyResult, type ObjectValidator } from './state/config-store.js';
export { compileObject, fqdn, DEFAULT_RETRIES, type CompileOptions, type CompiledPiece } from './routing/compile.js';
export { selectRoute, pickWeighted, rewritePath, redirectLocation, applyHeaderOps, type RequestFacts, type RouteMatch } from './routing/router.js';
export type * from './routing/types.js';
export { configObjectXdsType, parseConfigObjects, readConfigObjects, watchConfigObjects } from './discovery/config-source.js';
export { detectProtocol, type DetectedProtocol } from './proxy/inbound.js';
export { RESPONSE_FLAG, DURATION_BUCKETS_MS, SIZE_BUCKETS_BYTES, type ResponseFlag } from './telemetry/request-telemetry.js';
export { loadPlugin, PluginError, type WaypointPlugin, type PluginRequest, type PluginResponse, type LocalReply } from './plugins/plugin.js';
