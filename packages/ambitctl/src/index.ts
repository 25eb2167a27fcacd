export { main, HELP } from './main.js';
export { waypointGateway, waypointCommand, WAYPOINT_CLASS, FIELD_MANAGER } from './waypoint.js';
export { ztunnelConfigCommand, ztunnelConfigTable } from './ztunnel-config.js';
export { analyzeCommand, readManifests, ANALYZE_FOUND_ISSUES_EXIT } from './analyze.js';
export { CliError, formatTable, type CliIo } from './io.js';
export { parseDurationMs } from './args.js';
