// Everything the kubelet runs for one pod: its sandbox, one process per container, probes, restarts with backoff,
// and termination (SIGTERM, grace period, SIGKILL, then the sandbox). It knows nothing of the API server: `sync()`
// takes the pod object and the kubelet turns `snapshot()` into the status it writes, so the e2e test that has no
// API server yet drives a worker directly with a hand-written pod.
//
// Containers are processes in the pod's netns (the node's for hostNetwork pods), in their own process group. There
// is no mount namespace: volumes are directories under the pod's directory, named to the process through env vars
// (see volumes.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1ContainerState, V1Pod, V1Probe } from '@kubernetes/client-node';
import type { NetnsProcess } from '../process.js';
import type { Topology } from '../topology.js';
import { envSources, EnvConfigError, expandCommand, resolveEnv, type EnvSource } from './env.js';
import type { ImageRegistry } from './image-registry.js';
import { cleanEnv, initialProbeState, nextProbeDelay, probeTiming, recordProbe, runProbe, type ProbeKind, type ProbeState, type ProbeTiming } from './probes.js';
import type { Sandbox, SandboxManager } from './sandbox.js';
import type { ContainerSnapshot, PodSnapshot } from './status.js';

export interface PodWorkerDeps {
  topology: Topology;
  /** The node's netns name (hostNetwork pods run here). */
  nodeNetns: string;
  nodeName: string;
  hostIP: string;
  nodeAllocatable: { cpu: string; memory: string };
  sandboxes: SandboxManager;
  images: ImageRegistry;
  /** Root for per-pod directories (logs, volumes). */
  podsDir: string;
  /** Ask for another sync of this pod (a process exited, a probe flipped, a backoff elapsed). */
  notify(delayMs?: number): void;
  /** Record an event on the pod (the kubelet turns it into a core/v1 Event). */
  event(type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string): void;
  /** ConfigMaps/Secrets the env refers to; absent ones are left out of the map. */
  fetchSources?(namespace: string, sources: readonly EnvSource[]): Promise<Map<string, Record<string, string>>>;
  /** Prepares volumes, returns env naming them per container (volumes.ts); default none. */
  prepareVolumes?(pod: V1Pod, podDir: string): Promise<(container: V1Container) => Record<string, string>>;
  /** Env every container gets first (KUBERNETES_SERVICE_HOST/PORT). */
  baseEnv?(): Promise<Record<string, string>>;
  /** The pod's /etc/resolv.conf (cluster DNS), or undefined for the host's. */
  resolvConf?(pod: V1Pod): string | undefined;
  restartBackoff: { baseMs: number; maxMs: number };
  log(line: string): void;
}

interface ProbeRunner {
  kind: ProbeKind;
  probe: V1Probe;
  timing: ProbeTiming;
  state: ProbeState;
  timer?: NodeJS.Timeout;
}

interface ContainerRecord {
  spec: V1Container;
  restartCount: number;
  proc?: NetnsProcess;
  startedAt?: Date;
  state: V1ContainerState;
  lastState?: V1ContainerState;
  /** Earliest time the next start may happen (CrashLoopBackOff / ImagePullBackOff). */
  nextStartAt: number;
  /** Consecutive failed starts or crashes, for the backoff. */
  backoffSteps: number;
  probes: ProbeRunner[];
  env: Record<string, string>;
  /** Set while a liveness kill is in progress, so the exit is reported as such. */
  killReason?: string;
}

function waiting(reason: string, message?: string): V1ContainerState {
  return { waiting: { reason, ...(message ? { message } : {}) } };
}

export class PodWorker {
  readonly uid: string;
  readonly hostNetwork: boolean;
  sandbox: Sandbox | undefined;
  private readonly containers = new Map<string, ContainerRecord>();
  private readonly startTime = new Date();
  private sandboxError: string | undefined;
  private sandboxFailures = 0;
  private nextSandboxAttempt = 0;
  private containerEnvFor: ((c: V1Container) => Record<string, string>) | undefined;
  private terminating = false;
  private terminated = false;
  /** The sandbox was released because no container will run again; never recreate it. */
  private sandboxReleased = false;
  /** Kept after the sandbox is released: a finished pod's status still names its IP. */
  private lastPodIP: string | undefined;
  private readonly podDir: string;
  private readonly warned = new Set<string>();

  constructor(
    pod: V1Pod,
    private readonly deps: PodWorkerDeps,
  ) {
    this.uid = pod.metadata?.uid ?? '';
    this.hostNetwork = pod.spec?.hostNetwork === true;
    this.podDir = join(deps.podsDir, `${pod.metadata?.namespace}_${pod.metadata?.name}_${this.uid}`);
    mkdirSync(this.podDir, { recursive: true });
  }

  get netns(): string | undefined {
    return this.hostNetwork ? this.deps.nodeNetns : this.sandbox?.netns;
  }

  get podIP(): string | undefined {
    return this.hostNetwork ? this.deps.hostIP : (this.sandbox?.podIP ?? this.lastPodIP);
  }

  get isTerminated(): boolean {
    return this.terminated;
  }

  /** Processes of running containers (tests check they are gone after deletion). */
  pids(): number[] {
    return [...this.containers.values()].flatMap((c) => (c.proc?.running ? [c.proc.pid] : []));
  }

  /** Brings the pod towards its spec: sandbox, then every container that should run. Never throws for pod errors. */
  async sync(pod: V1Pod): Promise<{ requeueAfterMs?: number }> {
    if (this.terminating || this.terminated || this.sandboxReleased) return {};
    const now = Date.now();
    if (!this.hostNetwork && !this.sandbox) {
      if (now < this.nextSandboxAttempt) return { requeueAfterMs: this.nextSandboxAttempt - now };
      try {
        this.sandbox = await this.deps.sandboxes.create({ uid: this.uid, name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? '' });
        this.sandboxError = undefined;
        this.sandboxFailures = 0;
        this.lastPodIP = this.sandbox.podIP;
        this.deps.log(`pod ${pod.metadata?.namespace}/${pod.metadata?.name}: sandbox ${this.sandbox.netns} ip ${this.sandbox.podIP}`);
      } catch (err) {
        this.sandboxFailures++;
        const delay = Math.min(this.deps.restartBackoff.maxMs, this.deps.restartBackoff.baseMs * 2 ** (this.sandboxFailures - 1));
        this.nextSandboxAttempt = now + delay;
        this.sandboxError = `Failed to create pod sandbox: ${(err as Error).message}`;
        this.deps.event('Warning', 'FailedCreatePodSandBox', this.sandboxError);
        return { requeueAfterMs: delay };
      }
    }
    if (!this.containerEnvFor) {
      try {
        this.containerEnvFor = this.deps.prepareVolumes ? await this.deps.prepareVolumes(pod, this.podDir) : () => ({});
      } catch (err) {
        const msg = `MountVolume.SetUp failed: ${(err as Error).message}`;
        this.warnOnce('FailedMount', msg);
        for (const c of pod.spec?.containers ?? []) this.record(c).state = waiting('ContainerCreating', msg);
        return { requeueAfterMs: 2000 };
      }
    }
    let requeue: number | undefined;
    const soonest = (ms: number) => {
      requeue = requeue === undefined ? ms : Math.min(requeue, ms);
    };
    for (const spec of pod.spec?.containers ?? []) {
      const c = this.record(spec);
      if (c.proc && !c.proc.exited) continue;
      if (!this.shouldStart(pod, c)) continue;
      if (Date.now() < c.nextStartAt) {
        soonest(c.nextStartAt - Date.now());
        continue;
      }
      await this.start(pod, c);
      if (!c.proc) soonest(Math.max(0, c.nextStartAt - Date.now()));
    }
    return requeue === undefined ? {} : { requeueAfterMs: requeue };
  }

  private record(spec: V1Container): ContainerRecord {
    let c = this.containers.get(spec.name);
    if (!c) {
      c = { spec, restartCount: 0, state: waiting('ContainerCreating'), nextStartAt: 0, backoffSteps: 0, probes: [], env: {} };
      this.containers.set(spec.name, c);
    }
    return c;
  }

  private warnOnce(reason: string, message: string, fieldPath?: string): void {
    const key = `${reason}:${message}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.deps.event('Warning', reason, message, fieldPath);
  }

  /** Restart policy: a container that never ran starts; one that exited restarts per Always/OnFailure/Never. */
  private shouldStart(pod: V1Pod, c: ContainerRecord): boolean {
    const exited = c.state.terminated ?? c.lastState?.terminated;
    if (!c.proc && !c.state.terminated) return true;
    const policy = pod.spec?.restartPolicy ?? 'Always';
    if (policy === 'Always') return true;
    if (policy === 'OnFailure') return (exited?.exitCode ?? 0) !== 0;
    return false;
  }

  private backoff(c: ContainerRecord): number {
    const { baseMs, maxMs } = this.deps.restartBackoff;
    const delay = Math.min(maxMs, baseMs * 2 ** c.backoffSteps);
    c.backoffSteps++;
    c.nextStartAt = Date.now() + delay;
    return delay;
  }

  private async start(pod: V1Pod, c: ContainerRecord): Promise<void> {
    const fieldPath = `spec.containers{${c.spec.name}}`;
    const image = this.deps.images.resolve(c.spec);
    if (!image.ok) {
      const pulledBefore = c.state.waiting?.reason === 'ErrImagePull' || c.state.waiting?.reason === 'ImagePullBackOff';
      c.state = waiting(pulledBefore ? 'ImagePullBackOff' : image.reason, image.message);
      this.warnOnce('Failed', image.message, fieldPath);
      this.backoff(c);
      return;
    }
    let env: Record<string, string>;
    try {
      const sources = envSources(c.spec);
      const data = sources.length > 0 && this.deps.fetchSources ? await this.deps.fetchSources(pod.metadata?.namespace ?? '', sources) : new Map<string, Record<string, string>>();
      const base = { ...(this.deps.baseEnv ? await this.deps.baseEnv() : {}), HOSTNAME: pod.metadata?.name ?? '', ...image.env, ...this.containerEnvFor!(c.spec) };
      env = resolveEnv(c.spec, { pod, podIP: this.podIP, podIPs: this.podIP ? [this.podIP] : [], hostIP: this.deps.hostIP, nodeAllocatable: this.deps.nodeAllocatable, sources: data }, base);
    } catch (err) {
      const message = err instanceof EnvConfigError ? err.message : `env: ${(err as Error).message}`;
      c.state = waiting('CreateContainerConfigError', message);
      this.warnOnce('Failed', `Error: ${message}`, fieldPath);
      this.backoff(c);
      return;
    }
    let argv = expandCommand(image.argv, env);
    const logDir = join(this.podDir, c.spec.name);
    mkdirSync(logDir, { recursive: true });
    const resolv = this.deps.resolvConf?.(pod);
    if (resolv !== undefined) {
      // No container runtime: the pod's resolv.conf is bind-mounted over /etc/resolv.conf in a private mount
      // namespace of the container's process (unshare and exec keep the PID, so the recorded PID stays real).
      const file = join(this.podDir, 'resolv.conf');
      writeFileSync(file, resolv);
      argv = ['unshare', '--mount', '--propagation', 'slave', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', file, ...argv];
    }
    const netns = this.netns!;
    try {
      c.proc = await this.deps.topology.spawnIn(netns, argv, { env: cleanEnv(env), logFile: join(logDir, `${c.restartCount}.log`), cwd: c.spec.workingDir ?? '/' });
    } catch (err) {
      c.proc = undefined;
      const message = `failed to start container ${c.spec.name}: ${(err as Error).message}`;
      c.state = waiting('RunContainerError', message);
      this.warnOnce('Failed', message, fieldPath);
      this.backoff(c);
      return;
    }
    const proc = c.proc;
    c.env = env;
    c.startedAt = new Date();
    c.state = { running: { startedAt: c.startedAt } };
    c.killReason = undefined;
    this.deps.event('Normal', 'Started', `Started container ${c.spec.name}`, fieldPath);
    this.deps.log(`pod ${pod.metadata?.namespace}/${pod.metadata?.name}: started ${c.spec.name} pid ${proc.pid} in ${netns}: ${argv.join(' ')}`);
    void proc.waitExit(2 ** 31 - 1).then(
      (status) => this.onExit(pod, c, proc, status.code, status.signal),
      () => undefined,
    );
    this.startProbes(pod, c);
  }

  private onExit(pod: V1Pod, c: ContainerRecord, proc: NetnsProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (c.proc !== proc) return;
    for (const p of c.probes) clearTimeout(p.timer);
    c.probes = [];
    const exitCode = code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1);
    const finishedAt = new Date();
    const ran = finishedAt.getTime() - (c.startedAt?.getTime() ?? 0);
    const terminated: V1ContainerState = {
      terminated: {
        exitCode,
        ...(signal ? { signal: signalNumber(signal) ?? 0 } : {}),
        reason: exitCode === 0 ? 'Completed' : 'Error',
        ...(c.killReason ? { message: c.killReason } : {}),
        startedAt: c.startedAt ?? finishedAt,
        finishedAt,
        containerID: containerId(proc.pid),
      },
    };
    this.deps.log(`pod ${pod.metadata?.namespace}/${pod.metadata?.name}: container ${c.spec.name} pid ${proc.pid} exited ${exitCode}${signal ? ` (${signal})` : ''}`);
    c.proc = undefined;
    if (this.terminating) {
      c.state = terminated;
      return;
    }
    const policy = pod.spec?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (!restart) {
      c.state = terminated;
    } else {
      // A container that ran a while before exiting starts over with the shortest backoff (kubelet resets after 10 min;
      // ours after 10 s, the tests' timescale).
      if (ran > 10_000) c.backoffSteps = 0;
      const delay = this.backoff(c);
      c.lastState = terminated;
      c.restartCount++;
      c.state = waiting('CrashLoopBackOff', `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.spec.name} pod=${pod.metadata?.name}_${pod.metadata?.namespace}(${this.uid})`);
      if (exitCode !== 0) this.deps.event('Warning', 'BackOff', `Back-off restarting failed container ${c.spec.name} in pod ${pod.metadata?.name}`, `spec.containers{${c.spec.name}}`);
    }
    this.deps.notify();
  }

  private startProbes(pod: V1Pod, c: ContainerRecord): void {
    const kinds: [ProbeKind, V1Probe | undefined][] = [
      ['startup', c.spec.startupProbe],
      ['readiness', c.spec.readinessProbe],
      ['liveness', c.spec.livenessProbe],
    ];
    c.probes = kinds.filter(([, p]) => p !== undefined).map(([kind, probe]) => ({ kind, probe: probe!, timing: probeTiming(probe!, kind), state: initialProbeState(kind) }));
    for (const runner of c.probes) this.scheduleProbe(pod, c, runner);
    // Without a readiness probe a running container is ready at once: the status changed, write it.
    this.deps.notify();
  }

  private scheduleProbe(pod: V1Pod, c: ContainerRecord, runner: ProbeRunner): void {
    const proc = c.proc;
    if (!proc || !c.startedAt) return;
    const delay = nextProbeDelay(runner.timing, c.startedAt.getTime(), runner.state.lastRunAt, Date.now());
    runner.timer = setTimeout(() => void this.probeOnce(pod, c, runner, proc), delay);
    runner.timer.unref();
  }

  private async probeOnce(pod: V1Pod, c: ContainerRecord, runner: ProbeRunner, proc: NetnsProcess): Promise<void> {
    if (c.proc !== proc || this.terminating) return;
    // Readiness and liveness wait for the startup probe, as in Kubernetes.
    const startup = c.probes.find((p) => p.kind === 'startup');
    if (runner.kind !== 'startup' && startup && startup.state.result !== 'success') {
      runner.state = { ...runner.state, lastRunAt: Date.now() };
      return this.scheduleProbe(pod, c, runner);
    }
    const outcome = await runProbe(runner.probe, runner.timing, { netns: this.netns!, podIP: this.podIP ?? '127.0.0.1', container: c.spec, env: c.env });
    if (c.proc !== proc || this.terminating) return;
    const { state, changed } = recordProbe(runner.state, runner.timing, outcome.ok, outcome.message, Date.now());
    runner.state = state;
    const fieldPath = `spec.containers{${c.spec.name}}`;
    const label = runner.kind[0]!.toUpperCase() + runner.kind.slice(1);
    if (!outcome.ok) this.warnOnce('Unhealthy', `${label} probe failed: ${outcome.message}`, fieldPath);
    if (runner.kind === 'startup' && state.result === 'success') c.probes.find((p) => p.kind === 'startup')!.timer = undefined;
    if (changed) this.deps.notify();
    if ((runner.kind === 'liveness' || runner.kind === 'startup') && state.result === 'failure') {
      c.killReason = `Container ${c.spec.name} failed ${runner.kind} probe, will be restarted`;
      this.deps.event('Normal', 'Killing', c.killReason, fieldPath);
      void proc.stop(graceMs(pod));
      return;
    }
    if (runner.kind === 'startup' && state.result === 'success') return; // the startup probe stops once it succeeded
    this.scheduleProbe(pod, c, runner);
  }

  /** What runs now, for the status the kubelet writes. */
  snapshot(pod: V1Pod): PodSnapshot {
    const containers: ContainerSnapshot[] = (pod.spec?.containers ?? []).map((spec) => {
      const c = this.containers.get(spec.name);
      const running = c?.proc !== undefined && c.proc.exited === undefined;
      const readiness = c?.probes.find((p) => p.kind === 'readiness');
      const startup = c?.probes.find((p) => p.kind === 'startup');
      const started = running && (!startup || startup.state.result === 'success');
      const ready = running && started && (!readiness || readiness.state.result === 'success');
      return {
        name: spec.name,
        image: spec.image ?? '',
        ...(running ? { containerID: containerId(c!.proc!.pid) } : {}),
        restartCount: c?.restartCount ?? 0,
        ready,
        started,
        state: c?.state ?? waiting('ContainerCreating'),
        ...(c?.lastState ? { lastState: c.lastState } : {}),
      };
    });
    return {
      sandboxReady: (this.hostNetwork && !this.sandboxReleased) || this.sandbox !== undefined,
      ...(this.podIP ? { podIP: this.podIP, podIPs: [this.podIP] } : { podIPs: [] }),
      hostIP: this.deps.hostIP,
      startTime: this.startTime,
      containers,
      ...(this.sandboxError ? { message: this.sandboxError } : {}),
    };
  }

  /**
   * Stops the pod: SIGTERM to every container, SIGKILL after `graceMs`, then CNI DEL and the netns. Idempotent.
   * `keepStatus` leaves the container records (terminated) for a final status; deletion does not need them.
   */
  async terminate(graceMsValue: number): Promise<void> {
    if (this.terminated) return;
    this.terminating = true;
    const procs: NetnsProcess[] = [];
    for (const c of this.containers.values()) {
      for (const p of c.probes) clearTimeout(p.timer);
      if (c.proc && !c.proc.exited) procs.push(c.proc);
    }
    await Promise.all(procs.map((p) => p.stop(graceMsValue).catch(() => undefined)));
    await this.teardownSandbox();
    this.terminated = true;
  }

  /** Removes the sandbox (CNI DEL, netns) once no container will run again; safe to call twice. */
  async teardownSandbox(): Promise<void> {
    const sandbox = this.sandbox;
    if (!sandbox) return;
    this.sandbox = undefined;
    this.sandboxReleased = true;
    try {
      await this.deps.sandboxes.destroy(sandbox);
    } catch (err) {
      this.deps.event('Warning', 'FailedKillPod', `error tearing down the pod sandbox: ${(err as Error).message}`);
      this.deps.log(`sandbox ${sandbox.netns}: teardown error: ${(err as Error).message}`);
    }
  }

  /** Last-resort synchronous cleanup at process exit. */
  destroySync(): void {
    for (const c of this.containers.values()) {
      for (const p of c.probes) clearTimeout(p.timer);
      c.proc?.kill('SIGKILL');
    }
    if (this.sandbox) this.deps.sandboxes.destroySync(this.sandbox);
    this.sandbox = undefined;
    this.terminated = true;
  }

  /** True when every container has terminated for good (phase Succeeded/Failed). */
  finished(pod: V1Pod): boolean {
    const specs = pod.spec?.containers ?? [];
    return specs.length > 0 && specs.every((s) => {
      const c = this.containers.get(s.name);
      return c !== undefined && c.proc === undefined && c.state.terminated !== undefined;
    });
  }
}

/** The pod's termination grace period (deletion's own if set), in ms. */
export function graceMs(pod: V1Pod): number {
  const s = pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  return Math.max(0, s) * 1000;
}

/** `ambit://<pid>`: the runtime-type://id form Kubernetes expects, with the PID so tests can find the process. */
export function containerId(pid: number): string {
  return `ambit://${pid}`;
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
function signalNumber(signal: NodeJS.Signals): number | undefined {
  return SIGNALS[signal];
}
