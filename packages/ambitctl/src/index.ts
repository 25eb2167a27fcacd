export const AMBITCTL_PACKAGE = "@ambit/ambitctl";
