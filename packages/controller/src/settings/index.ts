export { ENV } from './env.js';
export { DEFAULT_LEASE_NAME, DEFAULT_MONITORING_PORT, DEFAULT_WAYPOINT_IMAGE, LOG_LEVELS, loadSettings } from './settings.js';
export type { EmbeddedSettings, KubernetesConnection, LeaderElectionSettings, LogLevel, Settings } from './settings.js';
