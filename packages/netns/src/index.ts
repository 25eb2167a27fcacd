// Public surface of @ambit/netns: sockets in pod network namespaces (native addon) and the in-pod redirection rules.
export {
  AddonLoadError, bindFd, getMark, getOriginalDst, listenInNetns, loadAddon, setMark, setReusePort, setTransparent,
  socketInNetns,
} from './addon.js';
export type { IpFamily, NetnsListenOptions, NetnsSocketOptions, OriginalDst } from './addon.js';
export {
  connectInNetns, createServerInNetns, getSocketFd, getSocketOriginalDst, listenServerInNetns,
} from './sockets.js';
export type { ConnectInNetnsOptions, CreateServerInNetnsOptions, ListenInNetnsOptions } from './sockets.js';
export {
  assertPrivileges, CAPABILITIES, checkPrivileges, evaluatePrivileges, parseEffectiveCapabilities, PrivilegeError,
} from './privileges.js';
export type { CapabilityName, PrivilegeReport } from './privileges.js';
export {
  buildPodRedirectionRules, CHAIN_OUTPUT, CHAIN_PRERT, diffIptables, diffPolicyRouting, formatDrift, MANAGED_TABLES,
  OWNED_CHAINS, parseIptablesSave, planIptablesRestore, TPROXY_RULE_PRIORITY,
} from './pod-rules.js';
export type {
  ChainJump, ChainRules, DriftKind, IptablesRuleSet, IptablesTable, IpVersion, PodRedirectionOptions,
  PodRedirectionRules, PolicyRouting, RedirectionDrift, SavedTables,
} from './pod-rules.js';
export {
  applyPodRedirection, checkPodRedirection, removePodRedirection, repairPodRedirection,
} from './pod-redirection.js';
export type { PodRedirectionTarget, RedirectionCheck, RedirectionResult } from './pod-redirection.js';
export { NetnsCommandError, runInNetns } from './netns-exec.js';
export type { CommandResult } from './netns-exec.js';
