// An ambient testbed in network namespaces: nodes and pods from @ambit/e2e, one real agent process per node
// (dist/src/main.js, run inside the node netns), pods enrolled through the real CNI plugin executable, a local
// CA and a local config file the tests rewrite. Everything is torn down by `close()`, also after a failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { CertificateAuthority } from '@ambit/pki';
import { connectInNetns } from '@ambit/netns';
import { createTopology, requireRoot, requireTools, waitFor, type NetnsProcess, type Topology, type TopologyPod } from '@ambit/e2e';

const here = dirname(fileURLToPath(import.meta.url));
/** packages/ztunnel, from dist/test. */
export const PACKAGE_ROOT = resolve(here, '..', '..');
export const AGENT_MAIN = join(PACKAGE_ROOT, 'dist', 'src', 'main.js');
export const CNI_PLUGIN = join(PACKAGE_ROOT, 'bin', 'ambit-cni');

export interface PodDef {
  node: number;
  index: number;
  name: string;
  namespace: string;
  serviceAccount: string;
  /** Enrolled through the CNI plugin and marked HBONE in the config. */
  captured: boolean;
  app?: string;
  version?: string;
  services?: Record<string, Record<number, number>>;
  policies?: string[];
}

export interface Agent {
  node: number;
  process: NetnsProcess;
  logFile: string;
  env: Record<string, string>;
}

export class Testbed {
  readonly dir: string;
  readonly configPath: string;
  /** The newest agent of each node. */
  readonly agents = new Map<number, Agent>();
  private readonly allAgents: Agent[] = [];
  private extraConfig: { services: unknown[]; policies: unknown[] } = { services: [], policies: [] };
  private podPolicies = new Map<string, string[]>();
  private generation = 0;

  private constructor(readonly topo: Topology, readonly pods: PodDef[], readonly ca: CertificateAuthority) {
    this.dir = mkdtempSync(join(tmpdir(), 'ambit-ztunnel-e2e-'));
    this.configPath = join(this.dir, 'config.yaml');
    writeFileSync(join(this.dir, 'ca-cert.pem'), ca.rootCertPem);
    writeFileSync(join(this.dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  }

  static async create(pods: PodDef[], options: { nodes: number; services?: unknown[]; policies?: unknown[] }): Promise<Testbed> {
    requireRoot();
    requireTools(['nsenter', 'iptables-restore', 'iptables-save', 'tcpdump', 'ip']);
    const perNode = Math.max(...pods.map((p) => p.index)) - 1;
    const topo = await createTopology({ nodes: options.nodes, podsPerNode: perNode });
    const ca = await CertificateAuthority.create();
    const bed = new Testbed(topo, pods, ca);
    bed.extraConfig = { services: options.services ?? [], policies: options.policies ?? [] };
    bed.writeConfig();
    return bed;
  }

  pod(name: string): TopologyPod {
    const d = this.def(name);
    return this.topo.pod(d.node, d.index);
  }

  def(name: string): PodDef {
    const d = this.pods.find((p) => p.name === name);
    if (!d) throw new Error(`no pod ${name} in the testbed`);
    return d;
  }

  /** Rewrites the local config file atomically (the agents' watchers reload it). */
  setConfig(change: { services?: unknown[]; policies?: unknown[]; podPolicies?: Record<string, string[]> }): void {
    if (change.services) this.extraConfig.services = change.services;
    if (change.policies) this.extraConfig.policies = change.policies;
    if (change.podPolicies) this.podPolicies = new Map(Object.entries(change.podPolicies));
    this.writeConfig();
  }

  private writeConfig(): void {
    const workloads = this.pods.map((p) => {
      const ip = this.topo.pod(p.node, p.index).ip;
      return {
        uid: `Kubernetes//Pod/${p.namespace}/${p.name}`,
        name: p.name,
        namespace: p.namespace,
        serviceAccount: p.serviceAccount,
        workloadIps: [ip],
        protocol: p.captured ? 'HBONE' : 'TCP',
        node: `node-${p.node}`,
        canonicalName: p.app ?? p.name,
        canonicalRevision: p.version ?? 'latest',
        workloadName: p.app ?? p.name,
        workloadType: 'deployment',
        clusterId: 'Kubernetes',
        services: p.services ?? {},
        authorizationPolicies: this.podPolicies.get(p.name) ?? p.policies ?? [],
      };
    });
    const tmp = `${this.configPath}.${++this.generation}.tmp`;
    writeFileSync(tmp, `# generation ${this.generation}\n` + stringify({ workloads, services: this.extraConfig.services, policies: this.extraConfig.policies }));
    renameSync(tmp, this.configPath);
  }

  /** Starts the agent of a node (a second call starts a second process, as an upgrade does). */
  async startAgent(node: number, env: Record<string, string> = {}): Promise<Agent> {
    const readinessPort = Number((env.AMBIT_READINESS_ADDRESS ?? ':15021').split(':').pop());
    const n = this.topo.node(node);
    const logFile = join(this.dir, `agent-n${node}-${Date.now()}.log`);
    const fullEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LOCAL_XDS_PATH: this.configPath,
      AMBIT_LOCAL_CA_CERT: join(this.dir, 'ca-cert.pem'),
      AMBIT_LOCAL_CA_KEY: join(this.dir, 'ca-key.pem'),
      NODE_NAME: `node-${node}`,
      AMBIT_CNI_SOCKET: this.socketOf(node),
      AMBIT_POD_SNAPSHOT: join(this.dir, `pods-n${node}.json`),
      LOG_LEVEL: process.env.AMBIT_E2E_LOG_LEVEL ?? 'info',
      AMBIT_RULE_CHECK_INTERVAL_SECONDS: '1',
      ...env,
    };
    const proc = await this.topo.spawnIn(n, [process.execPath, '--enable-source-maps', AGENT_MAIN], { env: fullEnv, logFile });
    const agent: Agent = { node, process: proc, logFile, env: fullEnv };
    await waitFor(async () => {
      if (!proc.running) throw new Error(`agent on node ${node} exited (${proc.exited ? JSON.stringify(await proc.exited) : ''}): ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      return (await this.httpGet(node, readinessPort, '/healthz/ready').catch(() => ({ status: 0 }))).status === 200;
    }, { timeoutMs: 20_000, message: `agent on node ${node} to become ready` });
    this.agents.set(node, agent);
    this.allAgents.push(agent);
    return agent;
  }

  socketOf(node: number): string {
    return join(this.dir, `cni-n${node}.sock`);
  }

  /** Runs the real CNI plugin as the kubelet would, for ADD of a pod. */
  async cni(command: 'ADD' | 'DEL' | 'CHECK', name: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const d = this.def(name);
    const pod = this.pod(name);
    const netconf = {
      cniVersion: '1.0.0', name: 'ambit-test', type: 'ambit-cni', agentSocket: this.socketOf(d.node), timeoutSeconds: 20,
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: pod.nsPath }], ips: [{ address: `${pod.ip}/24`, interface: 0, gateway: pod.gateway }] },
    };
    return await new Promise((resolvePromise, reject) => {
      const child = spawn(CNI_PLUGIN, [], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: command, CNI_CONTAINERID: `sandbox-${name}`, CNI_NETNS: pod.nsPath,
          CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin',
          CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${d.namespace};K8S_POD_NAME=${d.name};K8S_POD_UID=uid-${d.name}`,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => { stdout += c; });
      child.stderr.on('data', (c) => { stderr += c; });
      child.on('error', reject);
      child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
      child.stdin.end(JSON.stringify(netconf));
    });
  }

  async enrollAll(): Promise<void> {
    for (const p of this.pods.filter((x) => x.captured)) {
      const r = await this.cni('ADD', p.name);
      if (r.code !== 0) throw new Error(`CNI ADD of ${p.name} failed: ${r.stdout} ${r.stderr}`);
    }
  }

  /** HTTP GET to an agent port inside the node's netns (the test process stays in the root netns). */
  httpGet(node: number, port: number, path: string): Promise<{ status: number; body: string }> {
    return httpInNetns(this.topo.node(node).nsPath, '127.0.0.1', port, 'GET', path);
  }

  async metrics(node: number): Promise<string[]> {
    const r = await this.httpGet(node, 15020, '/metrics');
    return r.body.split('\n');
  }

  /** Every JSON log line of an agent. */
  allLogLines(agent: Agent): Array<Record<string, unknown>> {
    if (!existsSync(agent.logFile)) return [];
    return readFileSync(agent.logFile, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** The access-log lines of an agent (one per connection). */
  accessLog(agent: Agent): Array<Record<string, unknown>> {
    return this.allLogLines(agent).filter((l) => l.component === 'access');
  }

  /** A TCP connection made from inside a pod's netns with no mark: the pod's rules capture it like the app's own. */
  connectFrom(name: string, host: string, port: number): net.Socket {
    return connectInNetns({ netns: this.pod(name).nsPath, host, port });
  }

  async close(): Promise<void> {
    for (const a of this.allAgents) await a.process.stop(3000).catch(() => {});
    await this.topo.destroy();
    if (!process.env.AMBIT_E2E_KEEP) rmSync(this.dir, { recursive: true, force: true });
    else process.stderr.write(`testbed files kept in ${this.dir}\n`);
  }
}

export function httpInNetns(nsPath: string, host: string, port: number, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request({ method, path, host, port, createConnection: () => connectInNetns({ netns: nsPath, host, port }), timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** One request/response over a fresh captured connection: sends `message`, half-closes, reads everything. */
export function exchange(socket: net.Socket, message: string, timeoutMs = 10_000): Promise<{ banner: string; echo: string; error?: string }> {
  return new Promise((resolvePromise) => {
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); resolvePromise({ banner: '', echo: '', error: `timed out; got ${JSON.stringify(data)}` }); }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => { data += c; });
    socket.once('connect', () => socket.end(message));
    socket.once('error', (err) => { clearTimeout(timer); resolvePromise({ banner: '', echo: '', error: (err as NodeJS.ErrnoException).code ?? err.message }); });
    socket.once('end', () => {
      clearTimeout(timer);
      const nl = data.indexOf('\n');
      resolvePromise({ banner: nl >= 0 ? data.slice(0, nl) : data, echo: nl >= 0 ? data.slice(nl + 1) : '' });
    });
  });
}

export function bannerPeer(banner: string): string | undefined {
  return /peer=([^\s]+):\d+/.exec(banner)?.[1]?.replace(/^::ffff:/, '');
}

export function bannerLocal(banner: string): string | undefined {
  return /local=([^\s]+):\d+/.exec(banner)?.[1]?.replace(/^::ffff:/, '');
}
