// Public surface of the waypoint deployer (re-exported by the controller's index.ts).
export { createWaypointDeployer, type WaypointDeployer, type WaypointDeployerOptions } from './deployer.js';
export {
  evaluateWaypointGateway, renderWaypointObjects, resolveWaypointSettings, servicePorts, serviceHostname, isWaypointListener,
  type WaypointSettings, type ResolvedWaypointSettings, type WaypointEvaluation, type WaypointObjects, type GatewayObject,
} from './manifests.js';
export { buildGatewayStatus, gatewayStatusChanged, gatewayClassStatusUpdate, type GatewayStatus, type ObservedWaypoint } from './status.js';
export {
  WAYPOINT_CONTROLLER_NAME, WAYPOINT_GATEWAY_CLASS, MANAGED_LABEL, MANAGED_LABEL_VALUE, GATEWAY_CLASS_NAME_LABEL, FIELD_MANAGER as WAYPOINT_FIELD_MANAGER,
} from './constants.js';
