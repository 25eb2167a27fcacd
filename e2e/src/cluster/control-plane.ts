// A real Kubernetes control plane on loopback, the way controller-runtime's envtest runs one: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler as child processes on 127.0.0.1 with random free
// ports, fresh certificates from @ambit/pki and a temp directory that holds everything (data, PKI, kubeconfigs,
// logs). Nothing is bound to a non-loopback address and nothing in the root network namespace is configured.
//
// Leaving nothing behind:
// - stop() SIGTERMs every process group, SIGKILLs what is left after a grace period, and removes the directory;
// - the shared exit/signal handler (../cleanup.ts) does the same synchronously if the test process dies first;
// - each component is started through `setpriv --pdeathsig SIGKILL`, so the kernel kills it even if the test
//   process is SIGKILLed (setpriv execs the binary, so the PID we record is the component's own);
// - a directory left by a SIGKILLed run is swept by the next start (its owner PID is dead).
//
// A component that dies while we are not stopping it is recorded as a ControlPlaneProcessExitedError carrying
// its last log lines; `failure` exposes it and every wait of this module and of cluster.ts fails with it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { registerForCleanup, unregisterFromCleanup } from '../cleanup.js';
import { isProcessAlive, signalPid } from '../netns.js';
import { runCommand, type ExecOptions, type ExecResult } from '../process.js';
import { pollSync, WaitTimeoutError } from '../wait.js';
import { k8sBinaries } from './binaries.js';
import {
  buildKubeconfig,
  createControlPlanePki,
  firstServiceIp,
  writeControlPlanePki,
  type ControlPlanePki,
  type ControlPlanePkiFiles,
} from './certs.js';
import { issueTlsCertificate } from '@ambit/pki';


/** The kubernetes Service's endpoint address inside the cluster-in-a-box's node netns (CGNAT range, unused elsewhere). */
export const APISERVER_ADVERTISE_IP = '100.64.255.1';
export type ComponentName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler';

/** Paths of the executables the control plane runs. */
export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
}

export interface ControlPlaneOptions {
  /** Default: the cached builds from scripts/install-k8s-binaries.sh (k8sBinaries(), which throws if missing). */
  binaries?: ControlPlaneBinaries;
  /** Service ClusterIP range; its first address is the `kubernetes` Service. Default 10.96.0.0/16. */
  serviceClusterIpRange?: string;
  /** Pod range known to the controller-manager; nodes get 10.0.N.0/24 from the kubelet. Default 10.0.0.0/16. */
  clusterCidr?: string;
  /** Start-up deadline, from spawning etcd to the `default` ServiceAccount existing. Default 60 s. */
  startTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL on stop. Default 5 s. */
  stopGraceMs?: number;
  /** Extra flags per component, appended last (so they override ours). */
  extraArgs?: Partial<Record<ComponentName, readonly string[]>>;
  /** Copy the component logs into this directory on stop (post-mortems); by default they go with the temp dir. */
  keepLogsIn?: string;
  /** Parent of the temp directory; default os.tmpdir(). */
  baseDir?: string;
}

/** A control-plane component died while nobody was stopping it. */
export class ControlPlaneProcessExitedError extends Error {
  constructor(
    readonly component: ComponentName,
    readonly pid: number,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly lastLogLines: string,
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    super(`${component} (pid ${pid}) ${how}; last log lines:\n${lastLogLines || '(log is empty)'}`);
    this.name = 'ControlPlaneProcessExitedError';
  }
}

/** Start-up did not finish: says which step and carries the failure or the relevant component's log tail. */
export class ControlPlaneStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ControlPlaneStartError';
  }
}

/** One running component. */
export interface ControlPlaneProcess {
  readonly name: ComponentName;
  readonly pid: number;
  readonly argv: readonly string[];
  readonly logPath: string;
  /** Set once the process has exited (Node has reaped it). */
  readonly exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/** How long each start-up step took, in ms (cold start is their sum plus spawning). */
export interface StartupTimings {
  pki: number;
  etcd: number;
  apiserver: number;
  controllersAndScheduler: number;
  defaultServiceAccount: number;
  total: number;
}

const DIR_PREFIX = 'ambit-cp-';
const OWNER_FILE = 'owner.pid';
const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const DEFAULT_SERVICE_RANGE = '10.96.0.0/16';
const DEFAULT_CLUSTER_CIDR = '10.0.0.0/16';

class ManagedProcess implements ControlPlaneProcess {
  readonly pid: number;
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exitPromise: Promise<void>;

  constructor(
    readonly name: ComponentName,
    readonly argv: readonly string[],
    readonly logPath: string,
    /** Kept so that Node keeps reaping it. */
    readonly child: ChildProcess,
    onExit: (p: ManagedProcess) => void,
  ) {
    if (child.pid === undefined) throw new ControlPlaneStartError(`could not spawn ${name} (${argv[0]})`);
    this.pid = child.pid;
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        onExit(this);
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.exited === undefined && isProcessAlive(this.pid);
  }

  /** The whole process group: setpriv execs in place, so the group is the component and whatever it forked. */
  signal(sig: NodeJS.Signals): void {
    signalPid(-this.pid, sig);
    signalPid(this.pid, sig);
  }

  lastLogLines(count = 20): string {
    return tailFile(this.logPath, count);
  }

  describe(): string {
    return `${this.name} (pid ${this.pid})`;
  }
}

/** A running control plane. Create with startControlPlane(); always stop() it (also done on process exit). */
export class ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly apiserverPort: number;
  /** Admin kubeconfig (CN=admin, O=system:masters) on disk, for kubectl and for copying elsewhere. */
  readonly kubeconfigPath: string;
  /** The same kubeconfig as text. */
  readonly kubeconfig: string;
  /** A REST client with the admin credentials. */
  readonly client: KubeClient;
  /** Issuer of the service-account tokens (the `iss` claim). */
  readonly serviceAccountIssuer = SERVICE_ACCOUNT_ISSUER;
  readonly serviceClusterIpRange: string;
  readonly clusterCidr: string;
  /** The `kubernetes` Service's ClusterIP. */
  readonly kubernetesServiceIp: string;
  timings: StartupTimings | undefined;

  private readonly procs: ManagedProcess[] = [];
  private readonly failures: ControlPlaneProcessExitedError[] = [];
  private readonly failureListeners = new Set<(err: ControlPlaneProcessExitedError) => void>();
  private stopping = false;
  private stopped = false;
  /** Rejects with the first unexpected death, so a wait blocked in a request is released at once. */
  private readonly died: Promise<never>;
  private rejectDied: (err: Error) => void = () => undefined;
  /** For the shared cleanup handler's messages. */
  readonly prefix: string;

  /** @internal use startControlPlane() */
  constructor(
    readonly dir: string,
    readonly pki: ControlPlanePki,
    readonly pkiFiles: ControlPlanePkiFiles,
    readonly binaries: ControlPlaneBinaries,
    readonly ports: Readonly<Record<'etcdClient' | 'etcdPeer' | 'apiserver' | 'controllerManager' | 'scheduler', number>>,
    readonly options: ControlPlaneOptions,
  ) {
    this.prefix = `control plane ${dir}`;
    this.died = new Promise<never>((_, reject) => (this.rejectDied = reject));
    this.died.catch(() => undefined); // observed by waits; not an unhandled rejection when nobody waits
    this.apiserverPort = ports.apiserver;
    this.server = `https://127.0.0.1:${ports.apiserver}`;
    this.serviceClusterIpRange = options.serviceClusterIpRange ?? DEFAULT_SERVICE_RANGE;
    this.clusterCidr = options.clusterCidr ?? DEFAULT_CLUSTER_CIDR;
    this.kubernetesServiceIp = firstServiceIp(this.serviceClusterIpRange);
    this.kubeconfig = buildKubeconfig({ server: this.server, caPem: pki.ca.certPem, client: pki.admin, name: 'ambit-e2e-admin' });
    this.kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(this.kubeconfigPath, this.kubeconfig, { mode: 0o600 });
    this.client = new KubeClient({ server: this.server, ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem });
  }

  /** The running (or exited) components, in start order. */
  get processes(): readonly ControlPlaneProcess[] {
    return this.procs;
  }

  process(name: ComponentName): ControlPlaneProcess {
    const p = this.procs.find((x) => x.name === name);
    if (!p) throw new Error(`${name} has not been started`);
    return p;
  }

  /** The first component that died unexpectedly, if any. */
  get failure(): ControlPlaneProcessExitedError | undefined {
    return this.failures[0];
  }

  /** Every unexpected death, in order (killing etcd may take the apiserver with it later). */
  get allFailures(): readonly ControlPlaneProcessExitedError[] {
    return this.failures;
  }

  /** Throws the first unexpected death, so a wait can fail with the cause rather than time out. */
  assertHealthy(): void {
    if (this.failure) throw this.failure;
    if (this.stopped) throw new Error(`${this.prefix} has been stopped`);
  }

  /** Called once per unexpected death. Returns a function that removes the listener. */
  onFailure(listener: (err: ControlPlaneProcessExitedError) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** The last `count` lines of a component's log. */
  lastLogLines(name: ComponentName, count = 20): string {
    return tailFile(join(this.dir, 'logs', `${name}.log`), count);
  }

  /** The whole log of a component (they are small: default verbosity). */
  readLog(name: ComponentName): string {
    try {
      return readFileSync(join(this.dir, 'logs', `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** Copies every component log into `dir` (e.g. a failing test's artifacts). */
  copyLogsTo(dir: string): void {
    mkdirSync(dir, { recursive: true });
    cpSync(join(this.dir, 'logs'), dir, { recursive: true });
  }

  /** A client certificate signed by the cluster CA: CN is the user, organizations its groups. */
  async issueClientCertificate(user: { commonName: string; organizations?: readonly string[] }): Promise<{ certPem: string; keyPem: string }> {
    return issueTlsCertificate(this.pki.ca, { ...user, usages: ['client'], ttlSeconds: 24 * 3600 });
  }

  /**
   * A kubeconfig for another identity: a client certificate (e.g. a kubelet's system:node:<name> in
   * system:nodes) or a bearer token (a service account's).
   */
  async kubeconfigFor(
    identity: { commonName: string; organizations?: readonly string[] } | { token: string },
    options: { name?: string; namespace?: string } = {},
  ): Promise<string> {
    if ('token' in identity) {
      return buildKubeconfig({ server: this.server, caPem: this.pki.ca.certPem, token: identity.token, name: options.name ?? 'ambit-e2e-token', namespace: options.namespace });
    }
    const client = await this.issueClientCertificate(identity);
    return buildKubeconfig({ server: this.server, caPem: this.pki.ca.certPem, client, name: options.name ?? identity.commonName, namespace: options.namespace });
  }

  /** A REST client for another identity (see kubeconfigFor). */
  async clientFor(identity: { commonName: string; organizations?: readonly string[] } | { token: string }): Promise<KubeClient> {
    if ('token' in identity) return new KubeClient({ server: this.server, ca: this.pki.ca.certPem, token: identity.token });
    const c = await this.issueClientCertificate(identity);
    return new KubeClient({ server: this.server, ca: this.pki.ca.certPem, cert: c.certPem, key: c.keyPem });
  }

  /**
   * The admin kubeconfig loaded into @kubernetes/client-node. Loaded on demand so that this module works where
   * that package cannot load (2.0.1 pulls undici 8, which needs Node >= 22.19).
   */
  async loadKubeConfig(kubeconfig: string = this.kubeconfig): Promise<KubeConfig> {
    const { KubeConfig: KubeConfigClass } = await import('@kubernetes/client-node');
    const kc = new KubeConfigClass();
    kc.loadFromString(kubeconfig);
    return kc;
  }

  /** Runs the built kubectl with the admin kubeconfig. */
  kubectl(args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return runCommand([this.binaries.kubectl, `--kubeconfig=${this.kubeconfigPath}`, ...args], { timeoutMs: 30_000, ...options });
  }

  /** GET an apiserver path with the admin certificate; resolves with status and body (never throws on HTTP status). */
  apiserverGet(path: string): Promise<{ status: number; body: string }> {
    return this.client.raw('GET', path);
  }

  /** @internal */
  startProcess(name: ComponentName, binary: string, args: readonly string[]): ManagedProcess {
    this.assertHealthy();
    const logPath = join(this.dir, 'logs', `${name}.log`);
    const fd = openSync(logPath, 'a');
    const argv = [binary, ...args, ...(this.options.extraArgs?.[name] ?? [])];
    // KUBECONFIG from the caller's shell must not leak into components that fall back to it.
    const env = { ...process.env };
    delete env.KUBECONFIG;
    let child: ChildProcess;
    try {
      const [cmd, ...rest] = SETPRIV ? ['setpriv', '--pdeathsig', 'SIGKILL', '--', ...argv] : argv;
      child = spawn(cmd!, rest, { stdio: ['ignore', fd, fd], detached: true, env, cwd: this.dir });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    child.on('error', () => undefined); // ENOENT etc. shows up as an exit with code -2 / the missing pid below
    const proc = new ManagedProcess(name, argv, logPath, child, (p) => this.onProcessExit(p));
    this.procs.push(proc);
    return proc;
  }

  private onProcessExit(p: ManagedProcess): void {
    if (this.stopping) return;
    const err = new ControlPlaneProcessExitedError(p.name, p.pid, p.exited?.code ?? null, p.exited?.signal ?? null, p.lastLogLines());
    this.failures.push(err);
    this.rejectDied(err);
    for (const l of this.failureListeners) {
      try {
        l(err);
      } catch {
        // a listener's bug must not hide the failure from the others
      }
    }
  }

  /**
   * Polls `check` until it returns a truthy value; fails at once with the component's death if one dies,
   * and on timeout with what it was waiting for, the last error and the named component's log tail.
   */
  async waitUntil<T>(
    what: string,
    check: () => Promise<T | undefined | false> | T | undefined | false,
    options: { timeoutMs: number; intervalMs?: number; logOf?: ComponentName },
  ): Promise<T> {
    const deadline = Date.now() + options.timeoutMs;
    let last: unknown;
    for (;;) {
      this.assertHealthy();
      try {
        const v = await Promise.race([check(), this.died]);
        if (v) return v;
      } catch (err) {
        last = err;
      }
      this.assertHealthy();
      if (Date.now() >= deadline) {
        const why = last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : String(last)})`;
        const log = options.logOf ? `; last log lines of ${options.logOf}:\n${this.lastLogLines(options.logOf)}` : '';
        throw new WaitTimeoutError(`timed out after ${options.timeoutMs} ms waiting for ${what}${why}${log}`, { cause: last });
      }
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
    }
  }

  /**
   * Stops the components in reverse start order (clients before the apiserver before etcd, so none waits on a
   * peer that is already gone): SIGTERM, SIGKILL after the grace period. Then removes the directory. Safe to
   * call twice.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopping = true;
    const grace = this.options.stopGraceMs ?? 5000;
    const tiers: ComponentName[][] = [['kube-scheduler', 'kube-controller-manager'], ['kube-apiserver'], ['etcd']];
    for (const tier of tiers) {
      const live = this.procs.filter((p) => tier.includes(p.name) && p.exited === undefined);
      for (const p of live) p.signal('SIGTERM');
      const all = Promise.all(live.map((p) => p.exitPromise));
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), grace).unref())]);
      if (timedOut) {
        for (const p of live) if (p.exited === undefined) p.signal('SIGKILL');
        await Promise.race([all, new Promise((r) => setTimeout(r, 10_000).unref())]);
      }
    }
    this.finish();
  }

  /** Synchronous teardown for the process 'exit' and signal handlers. */
  destroySync(): void {
    if (this.stopped) return;
    this.stopping = true;
    const live = this.procs.filter((p) => p.running);
    for (const p of live) p.signal('SIGKILL');
    pollSync(() => live.every((p) => !isProcessAlive(p.pid)), { timeoutMs: 5000 });
    this.finish();
  }

  private finish(): void {
    this.stopped = true;
    unregisterFromCleanup(this);
    if (this.options.keepLogsIn) {
      try {
        this.copyLogsTo(this.options.keepLogsIn);
      } catch {
        // logs are a courtesy; the directory must still go
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** setpriv (util-linux) gives us PR_SET_PDEATHSIG; without it we still clean up on every exit short of SIGKILL. */
const SETPRIV = spawnSync('sh', ['-c', 'command -v setpriv >/dev/null']).status === 0;

/**
 * Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1 and resolves once the
 * apiserver is ready, both controllers answer /healthz and the `default` ServiceAccount exists (so pods can be
 * created). On any failure everything started so far is torn down before the error is thrown.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const t0 = Date.now();
  const binaries = options.binaries ?? controlPlaneBinariesFromCache();
  for (const [what, path] of Object.entries(binaries)) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new ControlPlaneStartError(`${what} binary ${path} is missing or not executable; run scripts/install-k8s-binaries.sh`);
    }
  }
  sweepStaleDirs(options.baseDir ?? tmpdir());
  const dir = mkdtempSync(join(options.baseDir ?? tmpdir(), DIR_PREFIX));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  let cp: ControlPlane | undefined;
  try {
    const serviceRange = options.serviceClusterIpRange ?? DEFAULT_SERVICE_RANGE;
    const [pki, ports] = await Promise.all([
      createControlPlanePki({ serviceIp: firstServiceIp(serviceRange) }),
      freePorts(5),
    ]);
    const pkiFiles = writeControlPlanePki(join(dir, 'pki'), pki);
    mkdirSync(join(dir, 'logs'));
    cp = new ControlPlane(dir, pki, pkiFiles, binaries, {
      etcdClient: ports[0]!,
      etcdPeer: ports[1]!,
      apiserver: ports[2]!,
      controllerManager: ports[3]!,
      scheduler: ports[4]!,
    }, options);
    registerForCleanup(cp);
    const tPki = Date.now();
    await boot(cp, t0 + (options.startTimeoutMs ?? 60_000), tPki - t0, t0);
    return cp;
  } catch (err) {
    if (cp) await cp.stop();
    else rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function boot(cp: ControlPlane, deadline: number, pkiMs: number, t0: number): Promise<void> {
  const left = (): number => Math.max(0, deadline - Date.now());
  const f = cp.pkiFiles;
  const { ports } = cp;
  const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
  const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;

  // etcd speaks plain HTTP on loopback, as in envtest: only this host's processes can reach it, and TLS there
  // would cost start-up time for no isolation we do not already have. Its data is throwaway, hence no fsync.
  let t = Date.now();
  const etcdHelp = await runCommand([cp.binaries.etcd, '--help'], { timeoutMs: 10_000 }).catch(() => undefined);
  const noFsync = etcdHelp?.stdout.includes('--unsafe-no-fsync') || etcdHelp?.stderr.includes('--unsafe-no-fsync');
  cp.startProcess('etcd', cp.binaries.etcd, [
    '--name=default',
    `--data-dir=${join(cp.dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    '--initial-cluster-state=new',
    ...(noFsync ? ['--unsafe-no-fsync=true'] : []),
  ]);
  await cp.waitUntil(
    `etcd health on ${etcdUrl}`,
    async () => {
      const r = await httpGet(`${etcdUrl}/health`);
      return r.status === 200 && /"health":\s*"true"/.test(r.body);
    },
    { timeoutMs: left(), intervalMs: 50, logOf: 'etcd' },
  );
  const etcdMs = Date.now() - t;

  t = Date.now();
  cp.startProcess('kube-apiserver', cp.binaries.kubeApiserver, [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    // The address written to the kubernetes Service's endpoints. Endpoints may not be loopback, and node netns
    // cannot reach the root netns' loopback anyway: each node netns carries this address on its lo, where a
    // forwarder relays to the apiserver (services.ts).
    `--advertise-address=${APISERVER_ADVERTISE_IP}`,
    `--secure-port=${ports.apiserver}`,
    `--cert-dir=${join(cp.dir, 'apiserver')}`, // unused (we pass certs) but keeps it out of /var/run/kubernetes
    `--tls-cert-file=${f.apiserverCert}`,
    `--tls-private-key-file=${f.apiserverKey}`,
    `--client-ca-file=${f.caCert}`,
    // Node for kubelets' system:node:<name> identities, RBAC for everyone else; NodeRestriction keeps a kubelet
    // to its own Node and pods, as kubeadm clusters do.
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${f.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${f.serviceAccountPrivateKey}`,
    `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-cluster-ip-range=${cp.serviceClusterIpRange}`,
    '--allow-privileged=true',
    `--kubelet-client-certificate=${f.kubeletClientCert}`,
    `--kubelet-client-key=${f.kubeletClientKey}`,
    '--profiling=false',
  ]);
  await cp.waitUntil(
    'kube-apiserver /readyz',
    async () => (await cp.apiserverGet('/readyz')).status === 200,
    { timeoutMs: left(), intervalMs: 100, logOf: 'kube-apiserver' },
  );
  const apiserverMs = Date.now() - t;

  // Both need the apiserver up (the controller-manager gives up if /healthz fails for 10 s), so they start now.
  t = Date.now();
  const cmKubeconfig = join(cp.dir, 'controller-manager.kubeconfig');
  const schedKubeconfig = join(cp.dir, 'scheduler.kubeconfig');
  writeFileSync(cmKubeconfig, buildKubeconfig({ server: cp.server, caPem: cp.pki.ca.certPem, client: cp.pki.controllerManager, name: 'kube-controller-manager' }), { mode: 0o600 });
  writeFileSync(schedKubeconfig, buildKubeconfig({ server: cp.server, caPem: cp.pki.ca.certPem, client: cp.pki.scheduler, name: 'kube-scheduler' }), { mode: 0o600 });
  cp.startProcess('kube-controller-manager', cp.binaries.kubeControllerManager, [
    `--kubeconfig=${cmKubeconfig}`,
    // Delegated authn/authz for its own /healthz and /metrics; without them it logs a warning per request.
    `--authentication-kubeconfig=${cmKubeconfig}`,
    `--authorization-kubeconfig=${cmKubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.controllerManager}`,
    `--tls-cert-file=${f.controllerManagerCert}`,
    `--tls-private-key-file=${f.controllerManagerKey}`,
    `--service-account-private-key-file=${f.serviceAccountPrivateKey}`,
    `--root-ca-file=${f.caCert}`,
    // Signs CertificateSigningRequests (kubelet client/serving certificates) with the cluster CA.
    `--cluster-signing-cert-file=${f.caCert}`,
    `--cluster-signing-key-file=${f.caKey}`,
    // Each controller acts as its own service account, so RBAC is exercised as in a real cluster.
    '--use-service-account-credentials=true',
    '--controllers=*',
    // Our kubelet registers Nodes with podCIDR 10.0.N.0/24 itself (matching the netns topology).
    '--allocate-node-cidrs=false',
    `--cluster-cidr=${cp.clusterCidr}`,
    `--service-cluster-ip-range=${cp.serviceClusterIpRange}`,
    '--cluster-name=ambit-e2e',
    '--leader-elect=false',
  ]);
  cp.startProcess('kube-scheduler', cp.binaries.kubeScheduler, [
    `--kubeconfig=${schedKubeconfig}`,
    `--authentication-kubeconfig=${schedKubeconfig}`,
    `--authorization-kubeconfig=${schedKubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.scheduler}`,
    `--tls-cert-file=${f.schedulerCert}`,
    `--tls-private-key-file=${f.schedulerKey}`,
    '--leader-elect=false',
  ]);
  const tls = { ca: cp.pki.ca.certPem };
  await Promise.all([
    cp.waitUntil(
      'kube-controller-manager /healthz',
      async () => (await httpsGet(`https://127.0.0.1:${ports.controllerManager}/healthz`, tls)).status === 200,
      { timeoutMs: left(), logOf: 'kube-controller-manager' },
    ),
    cp.waitUntil(
      'kube-scheduler /healthz',
      async () => (await httpsGet(`https://127.0.0.1:${ports.scheduler}/healthz`, tls)).status === 200,
      { timeoutMs: left(), logOf: 'kube-scheduler' },
    ),
  ]);
  const controllersMs = Date.now() - t;

  // Pods cannot be created in a namespace before its `default` ServiceAccount exists (ServiceAccount admission).
  t = Date.now();
  await cp.waitUntil(
    'the default ServiceAccount in namespace default',
    async () => (await cp.apiserverGet('/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
    { timeoutMs: left(), intervalMs: 100, logOf: 'kube-controller-manager' },
  );
  const saMs = Date.now() - t;
  cp.timings = {
    pki: pkiMs,
    etcd: etcdMs,
    apiserver: apiserverMs,
    controllersAndScheduler: controllersMs,
    defaultServiceAccount: saMs,
    total: Date.now() - t0,
  };
}

/** The cached binaries (scripts/install-k8s-binaries.sh), mapped to what the control plane runs. */
export function controlPlaneBinariesFromCache(): ControlPlaneBinaries {
  const b = k8sBinaries();
  return {
    etcd: b.etcd,
    kubeApiserver: b.kubeApiserver,
    kubeControllerManager: b.kubeControllerManager,
    kubeScheduler: b.kubeScheduler,
    kubectl: b.kubectl,
  };
}

/** Distinct free TCP ports on 127.0.0.1: all held open together, then released, so no two are the same. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * Removes control-plane directories whose owner process is gone (a run that was SIGKILLed: its components died
 * with it through PDEATHSIG, but nothing removed the directory).
 */
export function sweepStaleDirs(base: string): string[] {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(base).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return removed;
  }
  for (const e of entries) {
    const dir = join(base, e);
    try {
      if (!statSync(dir).isDirectory()) continue;
      const ownerPath = join(dir, OWNER_FILE);
      if (!existsSync(ownerPath)) continue;
      const owner = Number(readFileSync(ownerPath, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && !isProcessAlive(owner)) {
        rmSync(dir, { recursive: true, force: true });
        removed.push(dir);
      }
    } catch {
      // another run may be removing it right now
    }
  }
  return removed;
}

/** The last `count` non-empty lines of a file, reading at most its last 64 KiB. */
export function tailFile(path: string, count: number): string {
  let text: string;
  try {
    const buf = readFileSync(path);
    text = buf.subarray(Math.max(0, buf.length - 65536)).toString('utf8');
  } catch {
    return '';
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-count).join('\n');
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function httpsGet(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: string }> {
  return httpsSend(url, { method: 'GET', ...tls });
}

function httpsSend(url: string, options: RequestOptions, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // agent: false: no pooled sockets to keep a finished test's event loop alive; a loopback handshake is cheap.
    const req = httpsRequest(url, { timeout: 10_000, agent: false, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A Kubernetes API error: the HTTP status and the apiserver's Status reason and message. */
export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly reason: string | undefined,
    readonly body: string,
  ) {
    const parsed = parseJson(body) as { message?: string } | undefined;
    super(`${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${parsed?.message ?? body.slice(0, 500)}`);
    this.name = 'KubeApiError';
  }
}

export interface KubeClientOptions {
  server: string;
  ca: string;
  /** Client certificate and key (PEM), or a bearer token. */
  cert?: string;
  key?: string;
  token?: string;
}

/**
 * A small JSON client for the Kubernetes REST API over node:https: enough for start-up checks, server-side
 * apply, waits, TokenRequest/TokenReview and RBAC checks, with no dependency that could keep it from loading.
 */
export class KubeClient {
  constructor(readonly options: KubeClientOptions) {}

  /** One request; resolves with status and body whatever the status. */
  raw(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: string }> {
    const { server, ca, cert, key, token } = this.options;
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    return httpsSend(`${server}${path}`, { method, headers, ca, cert, key }, payload);
  }

  /** One request; parses the JSON answer, throws KubeApiError for status >= 400. */
  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const r = await this.raw(method, path, body, contentType);
    if (r.status >= 400) {
      const reason = (parseJson(r.body) as { reason?: string } | undefined)?.reason;
      throw new KubeApiError(method, path, r.status, reason, r.body);
    }
    return (parseJson(r.body) ?? {}) as T;
  }

  get<T = Record<string, unknown>>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** GET that resolves undefined on 404. */
  async find<T = Record<string, unknown>>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  post<T = Record<string, unknown>>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  delete<T = Record<string, unknown>>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /** Server-side apply (PATCH application/apply-patch+yaml; JSON is YAML). */
  apply<T = Record<string, unknown>>(path: string, object: unknown, options: { fieldManager: string; force?: boolean }): Promise<T> {
    const q = `?fieldManager=${encodeURIComponent(options.fieldManager)}${options.force === false ? '' : '&force=true'}`;
    return this.request<T>('PATCH', `${path}${q}`, object, 'application/apply-patch+yaml');
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
