import type { PodSpec } from '../inpod/enrollment-contract.js';
import { AgentCallError, createAgentClient, type AgentClient, type AgentClientOptions } from './agent-client.js';
import {
  CNI_ERROR, CniError, compareVersions, convertResult, isSupportedVersion, LATEST_CNI_VERSION, podIpsOf,
  SUPPORTED_CNI_VERSIONS, type CniErrorResult,
} from './cni-spec.js';
import { parseNetConf, podIdentityOf, readCniInvocation, type AmbitNetConf, type CniInvocation, type PodIdentity } from './netconf.js';
import { createStderrLogger, type CniLogger } from './stderr-logger.js';

/**
 * Ambit's chained CNI plugin: runs after the primary plugin has wired the pod's interface and asks the node agent
 * to capture the pod before any of its containers start. It never changes the network itself, so on success it
 * hands on the previous result unchanged. If the agent cannot capture an ambient pod the ADD fails: a pod must
 * never run uncaptured, and the kubelet retries the sandbox.
 */

export interface RunCniOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** The whole of stdin. */
  stdin: string;
  /** Receives log lines (stderr in the real plugin). */
  writeLog: (line: string) => void;
  /** Injected by tests; the real plugin talks HTTP to the agent's unix socket. */
  createClient?: (options: AgentClientOptions) => AgentClient;
}

export interface CniRunResult {
  exitCode: number;
  /** What goes to stdout: a result, a version answer, an error object, or nothing. */
  stdout: string;
}

const ok = (value?: unknown): CniRunResult => ({ exitCode: 0, stdout: value === undefined ? '' : JSON.stringify(value) + '\n' });

function podName(pod: PodIdentity): string {
  return `${pod.namespace}/${pod.name}`;
}

/** Maps a failed agent call to the CNI error code: transient conditions get "try again later". */
function codeFor(err: AgentCallError): number {
  if (err.kind === 'unreachable' || err.kind === 'timeout') return CNI_ERROR.tryAgainLater;
  if (err.kind === 'refused' && err.detail.status === 503) return CNI_ERROR.tryAgainLater;
  return CNI_ERROR.captureFailed;
}

function versionAnswer(stdin: string): CniRunResult {
  // VERSION's stdin is `{"cniVersion": "..."}` (1.1.0) or empty (older runtimes): answer in the asked version if
  // we speak it, else the newest.
  let asked: unknown;
  try { asked = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion; } catch { asked = undefined; }
  return ok({ cniVersion: isSupportedVersion(asked) ? asked : LATEST_CNI_VERSION, supportedVersions: [...SUPPORTED_CNI_VERSIONS] });
}

function errorVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    if (isSupportedVersion(v)) return v;
  } catch { /* the error is about stdin itself */ }
  return LATEST_CNI_VERSION;
}

interface Context {
  inv: CniInvocation;
  conf: AmbitNetConf;
  log: CniLogger;
  client: () => AgentClient;
}

/** The pod to talk to the agent about, or undefined (with a log line) when this call is none of the agent's business. */
function podToEnroll(ctx: Context): PodIdentity | undefined {
  const pod = podIdentityOf(ctx.inv);
  if (!pod) {
    ctx.log.info('no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS: not a Kubernetes pod, passing through');
    return undefined;
  }
  if (ctx.conf.excludeNamespaces.includes(pod.namespace)) {
    ctx.log.debug(`namespace ${pod.namespace} is excluded; passing pod ${podName(pod)} through`, { pod: podName(pod) });
    return undefined;
  }
  if (!pod.uidFromRuntime) ctx.log.warn('the runtime sent no K8S_POD_UID; using the sandbox id as the pod uid', { pod: podName(pod), uid: pod.uid });
  return pod;
}

async function cmdAdd(ctx: Context): Promise<CniRunResult> {
  const { conf, inv, log } = ctx;
  if (!conf.prevResult) {
    throw new CniError(
      CNI_ERROR.invalidNetworkConfig,
      `ambit: no prevResult in the network configuration: ${conf.type} is a chained plugin and must come after the plugin that creates the pod's interface in the conflist`,
    );
  }
  const result = convertResult(conf.prevResult, conf.cniVersion);
  const pod = podToEnroll(ctx);
  if (!pod) return ok(result);
  const spec: PodSpec = { uid: pod.uid, name: pod.name, namespace: pod.namespace, netns: inv.netns, containerId: inv.containerId };
  const ips = podIpsOf(result);
  if (ips.length > 0) spec.ips = ips;
  const started = Date.now();
  try {
    const outcome = await ctx.client().addPod(spec);
    if (outcome.captured) log.info(`pod ${podName(pod)} captured`, { pod: podName(pod), uid: pod.uid, ms: Date.now() - started });
    else log.info(`pod ${podName(pod)} not captured: ${outcome.reason}`, { pod: podName(pod), uid: pod.uid });
  } catch (err) {
    if (!(err instanceof AgentCallError)) throw err;
    throw new CniError(codeFor(err), `ambit: could not capture pod ${podName(pod)}: ${err.message}`, `uid=${pod.uid} netns=${inv.netns} containerId=${inv.containerId}`);
  }
  return ok(result);
}

async function cmdDel(ctx: Context): Promise<CniRunResult> {
  const pod = podToEnroll(ctx);
  if (!pod) return ok();
  try {
    const r = await ctx.client().deletePod(pod.uid);
    ctx.log.info(r.known ? `pod ${podName(pod)} released` : `pod ${podName(pod)} was not known to the agent`, { pod: podName(pod), uid: pod.uid });
  } catch (err) {
    // DEL must succeed when the agent is down or has forgotten the pod: otherwise the runtime cannot remove the
    // sandbox. The agent drops pods whose netns is gone when it next starts.
    ctx.log.warn(`could not tell the agent that pod ${podName(pod)} is gone: ${err instanceof Error ? err.message : String(err)}; continuing`, { pod: podName(pod), uid: pod.uid });
  }
  return ok();
}

async function cmdCheck(ctx: Context): Promise<CniRunResult> {
  const { conf } = ctx;
  if (compareVersions(conf.cniVersion, '0.4.0') < 0) {
    throw new CniError(CNI_ERROR.incompatibleVersion, `config version ${conf.cniVersion} does not allow CHECK (0.4.0 or later)`);
  }
  const pod = podToEnroll(ctx);
  if (!pod) return ok();
  let status;
  try {
    status = await ctx.client().getPod(pod.uid);
  } catch (err) {
    if (!(err instanceof AgentCallError)) throw err;
    throw new CniError(codeFor(err), `ambit: could not check pod ${podName(pod)}: ${err.message}`);
  }
  if (!status) {
    throw new CniError(CNI_ERROR.notCaptured, `ambit: pod ${podName(pod)} is not enrolled with the node agent on ${ctx.client().socketPath}; was the agent's pod snapshot lost?`, `uid=${pod.uid}`);
  }
  if (status.outcome === 'captured' && !status.captured) {
    throw new CniError(CNI_ERROR.notCaptured, `ambit: pod ${podName(pod)} is no longer captured by the node agent`, `uid=${pod.uid}`);
  }
  return ok();
}

/** Runs one CNI command and returns what to print and the exit code; never throws. */
export async function runCniPlugin(options: RunCniOptions): Promise<CniRunResult> {
  let log: CniLogger = createStderrLogger({ write: options.writeLog, level: 'info' });
  try {
    const inv = readCniInvocation(options.env);
    if (inv.command === 'VERSION') return versionAnswer(options.stdin);
    const conf = parseNetConf(options.stdin);
    log = createStderrLogger({ write: options.writeLog, level: conf.logLevel, base: { command: inv.command, containerId: inv.containerId } });
    let client: AgentClient | undefined;
    const ctx: Context = {
      inv,
      conf,
      log,
      client: () => (client ??= (options.createClient ?? createAgentClient)({ socketPath: conf.agentSocket, timeoutMs: conf.timeoutSeconds * 1000 })),
    };
    switch (inv.command) {
      case 'ADD': return await cmdAdd(ctx);
      case 'DEL': return await cmdDel(ctx);
      case 'CHECK': return await cmdCheck(ctx);
      // GC and STATUS (1.1.0) succeed without work: the agent reconciles its own pods from the snapshot, and a
      // failing STATUS would mark the whole node's network not ready because of us.
      case 'GC': return ok();
      case 'STATUS': return ok();
    }
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(CNI_ERROR.captureFailed, `ambit: internal error: ${err instanceof Error ? err.message : String(err)}`);
    log.error(e.message, { code: e.code, details: e.details || undefined });
    const body: CniErrorResult = { cniVersion: errorVersion(options.stdin), code: e.code, msg: e.message, details: e.details };
    return { exitCode: 1, stdout: JSON.stringify(body) + '\n' };
  }
}
