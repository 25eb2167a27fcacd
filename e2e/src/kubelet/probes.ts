// Probes as the kubelet runs them (pkg/kubelet/prober): the pure part (timing defaults, the result state machine,
// when the next run is due) apart from running one probe inside the pod's netns, so the rules are unit-tested.
//   readiness: starts "failure" (not ready) and turns success after successThreshold passes in a row;
//   liveness and startup: start "success"/"unknown"; failureThreshold failures in a row mean restart.
import type { V1Container, V1Probe } from '@kubernetes/client-node';
import { execInNetns } from '../process.js';
import { e2eAppPath } from './image-registry.js';

export type ProbeKind = 'readiness' | 'liveness' | 'startup';

export interface ProbeTiming {
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

/** Kubernetes' defaults: period 10 s, timeout 1 s, success 1, failure 3; liveness/startup success must be 1. */
export function probeTiming(probe: V1Probe, kind: ProbeKind): ProbeTiming {
  return {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: Math.max(1, probe.periodSeconds ?? 10) * 1000,
    timeoutMs: Math.max(1, probe.timeoutSeconds ?? 1) * 1000,
    successThreshold: kind === 'readiness' ? Math.max(1, probe.successThreshold ?? 1) : 1,
    failureThreshold: Math.max(1, probe.failureThreshold ?? 3),
  };
}

export interface ProbeState {
  result: 'success' | 'failure' | 'unknown';
  successes: number;
  failures: number;
  lastMessage: string;
  lastRunAt: number | undefined;
}

export function initialProbeState(kind: ProbeKind): ProbeState {
  return { result: kind === 'readiness' ? 'failure' : kind === 'liveness' ? 'success' : 'unknown', successes: 0, failures: 0, lastMessage: '', lastRunAt: undefined };
}

/** Applies one probe outcome; `changed` says whether the result flipped (the kubelet then acts). */
export function recordProbe(state: ProbeState, timing: ProbeTiming, ok: boolean, message: string, now: number): { state: ProbeState; changed: boolean } {
  const next: ProbeState = {
    ...state,
    successes: ok ? state.successes + 1 : 0,
    failures: ok ? 0 : state.failures + 1,
    lastMessage: message,
    lastRunAt: now,
  };
  if (ok && next.successes >= timing.successThreshold) next.result = 'success';
  else if (!ok && next.failures >= timing.failureThreshold) next.result = 'failure';
  return { state: next, changed: next.result !== state.result };
}

/** Milliseconds until the probe is due: initialDelay after the container started, then every period. */
export function nextProbeDelay(timing: ProbeTiming, startedAt: number, lastRunAt: number | undefined, now: number): number {
  const due = lastRunAt === undefined ? startedAt + timing.initialDelayMs : lastRunAt + timing.periodMs;
  return Math.max(0, due - now);
}

/** A port number, or a named port of the container (`ports[].name`). */
export function resolvePort(port: number | string | undefined, container: V1Container): number {
  if (typeof port === 'number') return port;
  if (port !== undefined && /^\d+$/.test(port)) return Number(port);
  const named = container.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`port ${JSON.stringify(port)} is not a number and no container port has that name`);
  return named.containerPort;
}

export interface ProbeTarget {
  /** Netns the pod's processes run in (the pod's own, or the node's for hostNetwork pods). */
  netns: string;
  podIP: string;
  container: V1Container;
  env: Readonly<Record<string, string>>;
}

/** Runs one probe from inside the pod's netns; resolves { ok, message }, never throws. */
export async function runProbe(probe: V1Probe, timing: ProbeTiming, target: ProbeTarget): Promise<{ ok: boolean; message: string }> {
  let argv: string[];
  let env: Readonly<Record<string, string>> | undefined;
  try {
    if (probe.exec) {
      argv = probe.exec.command ?? [];
      if (argv.length === 0) return { ok: false, message: 'exec probe without a command' };
      env = target.env;
    } else if (probe.tcpSocket) {
      const port = resolvePort(probe.tcpSocket.port as number | string, target.container);
      argv = [process.execPath, e2eAppPath('probe'), 'tcp', probe.tcpSocket.host ?? target.podIP, String(port), String(timing.timeoutMs)];
    } else if (probe.httpGet) {
      const g = probe.httpGet;
      if ((g.scheme ?? 'HTTP').toUpperCase() !== 'HTTP') return { ok: false, message: `httpGet scheme ${g.scheme} is not supported by the cluster-in-a-box kubelet` };
      const port = resolvePort(g.port as number | string, target.container);
      const path = (g.path ?? '/').startsWith('/') ? (g.path ?? '/') : `/${g.path}`;
      const url = `http://${g.host ?? target.podIP}:${port}${path}`;
      argv = [process.execPath, e2eAppPath('probe'), 'http', url, String(timing.timeoutMs), ...(g.httpHeaders ?? []).map((h) => `${h.name}:${h.value}`)];
    } else if (probe.grpc) {
      return { ok: false, message: 'grpc probes are not supported by the cluster-in-a-box kubelet' };
    } else {
      return { ok: false, message: 'probe has no handler' };
    }
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  try {
    // The probe program bounds itself by the probe timeout; the exec timeout is the backstop (node start-up included).
    const r = await execInNetns(target.netns, argv, { timeoutMs: timing.timeoutMs + 3000, ...(env ? { env: cleanEnv(env) } : {}) });
    return r.code === 0 ? { ok: true, message: '' } : { ok: false, message: (r.stderr.trim() || r.stdout.trim() || `exit status ${r.code ?? r.signal}`).slice(-300) };
  } catch (err) {
    return { ok: false, message: `probe timed out: ${(err as Error).message.slice(0, 200)}` };
  }
}

/** An environment with only `env` (and PATH), for programs that must not see the kubelet's own variables. */
export function cleanEnv(env: Readonly<Record<string, string>>): Record<string, string | undefined> {
  // spawn() merges with process.env; undefined values are dropped by Node, which hides the kubelet's variables.
  const out: Record<string, string | undefined> = {};
  for (const k of Object.keys(process.env)) out[k] = undefined;
  out.PATH = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return Object.assign(out, env);
}
