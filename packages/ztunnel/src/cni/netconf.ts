import { DEFAULT_CNI_SOCKET_PATH } from '../inpod/enrollment-contract.js';
import { parseCniArgs } from '@ambit/api/cni';
import { CNI_ERROR, CniError, isSupportedVersion, SUPPORTED_CNI_VERSIONS, type CniResult, type CniVersion } from './cni-spec.js';

export { parseCniArgs };

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

export type CniLogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LOG_LEVELS: readonly CniLogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** Environment variable names the runtime sets (SPEC.md "Parameters"). */
export const CNI_ENV = Object.freeze({
  command: 'CNI_COMMAND',
  containerId: 'CNI_CONTAINERID',
  netns: 'CNI_NETNS',
  ifname: 'CNI_IFNAME',
  args: 'CNI_ARGS',
  path: 'CNI_PATH',
} as const);

/** CNI_ARGS keys Kubernetes runtimes (containerd, CRI-O) pass. */
export const K8S_ARGS = Object.freeze({
  namespace: 'K8S_POD_NAMESPACE',
  name: 'K8S_POD_NAME',
  uid: 'K8S_POD_UID',
  infraContainerId: 'K8S_POD_INFRA_CONTAINER_ID',
} as const);

/** The network configuration handed to our plugin: the standard keys plus Ambit's. */
export interface AmbitNetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  prevResult?: CniResult;
  /** The node agent's enrollment socket. */
  agentSocket: string;
  timeoutSeconds: number;
  logLevel: CniLogLevel;
  /**
   * Pods here start without asking the agent. Default [kube-system], as istio-cni's `excludeNamespaces`: system
   * pods (CoreDNS, the CNI itself) must come up even when the Ambit agent is down.
   */
  excludeNamespaces: string[];
}

export const NETCONF_DEFAULTS = Object.freeze({
  agentSocket: DEFAULT_CNI_SOCKET_PATH,
  timeoutSeconds: 30,
  logLevel: 'info' as CniLogLevel,
  excludeNamespaces: Object.freeze(['kube-system']),
});

function badConf(message: string): never {
  throw new CniError(CNI_ERROR.invalidNetworkConfig, `invalid network configuration: ${message}`);
}

/** Parses and checks the network configuration from stdin. */
export function parseNetConf(text: string): AmbitNetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_ERROR.decodingFailure, 'decoding failure: the network configuration on stdin is not JSON', (err as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CNI_ERROR.decodingFailure, 'decoding failure: the network configuration on stdin is not a JSON object');
  }
  const o = raw as Record<string, unknown>;
  if (!isSupportedVersion(o.cniVersion)) {
    throw new CniError(
      CNI_ERROR.incompatibleVersion,
      o.cniVersion === undefined ? 'incompatible CNI versions: the network configuration has no cniVersion' : `incompatible CNI versions: config is ${JSON.stringify(o.cniVersion)}`,
      `plugin supports ${SUPPORTED_CNI_VERSIONS.join(', ')}`,
    );
  }
  if (typeof o.name !== 'string' || o.name === '') badConf('name must be a non-empty string');
  if (typeof o.type !== 'string' || o.type === '') badConf('type must be a non-empty string');
  const conf: AmbitNetConf = {
    cniVersion: o.cniVersion,
    name: o.name,
    type: o.type,
    agentSocket: NETCONF_DEFAULTS.agentSocket,
    timeoutSeconds: NETCONF_DEFAULTS.timeoutSeconds,
    logLevel: NETCONF_DEFAULTS.logLevel,
    excludeNamespaces: [...NETCONF_DEFAULTS.excludeNamespaces],
  };
  if (o.prevResult !== undefined && o.prevResult !== null) {
    if (typeof o.prevResult !== 'object' || Array.isArray(o.prevResult)) badConf('prevResult must be an object');
    conf.prevResult = o.prevResult as CniResult;
  }
  if (o.agentSocket !== undefined) {
    if (typeof o.agentSocket !== 'string' || !o.agentSocket.startsWith('/')) badConf(`agentSocket must be an absolute path, got ${JSON.stringify(o.agentSocket)}`);
    conf.agentSocket = o.agentSocket;
  }
  if (o.timeoutSeconds !== undefined) {
    if (typeof o.timeoutSeconds !== 'number' || !Number.isFinite(o.timeoutSeconds) || o.timeoutSeconds <= 0) {
      badConf(`timeoutSeconds must be a positive number, got ${JSON.stringify(o.timeoutSeconds)}`);
    }
    conf.timeoutSeconds = o.timeoutSeconds;
  }
  if (o.logLevel !== undefined) {
    const level = typeof o.logLevel === 'string' ? o.logLevel.toLowerCase() : undefined;
    const normalized = level === 'none' ? 'silent' : level === 'warning' ? 'warn' : level;
    if (!LOG_LEVELS.includes(normalized as CniLogLevel)) badConf(`logLevel must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(o.logLevel)}`);
    conf.logLevel = normalized as CniLogLevel;
  }
  if (o.excludeNamespaces !== undefined && o.excludeNamespaces !== null) {
    if (!Array.isArray(o.excludeNamespaces) || !o.excludeNamespaces.every((n) => typeof n === 'string')) {
      badConf('excludeNamespaces must be an array of namespace names');
    }
    conf.excludeNamespaces = o.excludeNamespaces as string[];
  }
  return conf;
}

/** What the runtime told us through the environment. */
export interface CniInvocation {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  args: Record<string, string>;
}

const REQUIRED_ENV: Record<CniCommand, readonly string[]> = {
  ADD: [CNI_ENV.containerId, CNI_ENV.netns, CNI_ENV.ifname],
  CHECK: [CNI_ENV.containerId, CNI_ENV.netns, CNI_ENV.ifname],
  // DEL may come after the netns is gone, so the runtime may leave CNI_NETNS empty.
  DEL: [CNI_ENV.containerId, CNI_ENV.ifname],
  VERSION: [],
  GC: [],
  STATUS: [],
};

/** Reads the CNI_* variables; throws CniError code 4 naming the missing ones. */
export function readCniInvocation(env: Readonly<Record<string, string | undefined>>): CniInvocation {
  const command = env[CNI_ENV.command];
  if (!command) throw new CniError(CNI_ERROR.invalidEnvironment, `required environment variable ${CNI_ENV.command} is missing`);
  if (!COMMANDS.includes(command as CniCommand)) {
    throw new CniError(CNI_ERROR.invalidEnvironment, `unknown ${CNI_ENV.command} ${JSON.stringify(command)}; expected one of ${COMMANDS.join(', ')}`);
  }
  const missing = REQUIRED_ENV[command as CniCommand].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new CniError(CNI_ERROR.invalidEnvironment, `required environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing for ${command}`);
  }
  return {
    command: command as CniCommand,
    containerId: env[CNI_ENV.containerId] ?? '',
    netns: env[CNI_ENV.netns] ?? '',
    ifname: env[CNI_ENV.ifname] ?? '',
    args: parseCniArgs(env[CNI_ENV.args]),
  };
}

export interface PodIdentity {
  namespace: string;
  name: string;
  uid: string;
  /** False when the runtime sent no K8S_POD_UID and the sandbox container id stands in for it. */
  uidFromRuntime: boolean;
}

/** The Kubernetes pod behind this call, or undefined when the runtime is not Kubernetes (no K8S_POD_NAME). */
export function podIdentityOf(invocation: CniInvocation): PodIdentity | undefined {
  const namespace = invocation.args[K8S_ARGS.namespace];
  const name = invocation.args[K8S_ARGS.name];
  if (!namespace || !name) return undefined;
  const uid = invocation.args[K8S_ARGS.uid];
  if (uid) return { namespace, name, uid, uidFromRuntime: true };
  // Old runtimes omit K8S_POD_UID; the sandbox id is stable across ADD/CHECK/DEL of one sandbox, which is all
  // the agent needs to pair them.
  return { namespace, name, uid: invocation.args[K8S_ARGS.infraContainerId] || invocation.containerId, uidFromRuntime: false };
}
