export const WAYPOINT_PACKAGE = "@ambit/waypoint";
