// Service traffic for uncaptured pods: the real kube-proxy (built from the same Kubernetes module as the control
// plane, iptables mode) in every node netns, and cluster DNS: the real CoreDNS (built from its Go module) with
// the kubernetes plugin, running in node 1's netns behind the ClusterIP Service kube-system/kube-dns 10.96.0.10
// (a Service without selector plus a manual EndpointSlice to node 1's address, 10.255.0.1:53).
//
// The apiserver listens on the root netns' loopback, which a node netns cannot reach. Each node netns therefore
// gets a small forwarder on its own *:<apiserver port> (127.0.0.1 for kube-proxy/CoreDNS kubeconfigs, and the
// advertise address on lo for pods using the kubernetes Service) that relays to a Unix socket (paths are not per
// netns), behind which this process relays to the real 127.0.0.1:<port>. The apiserver's serving certificate is
// for 127.0.0.1, so kube-proxy and CoreDNS verify it as usual.
//
// Pods reach ClusterIPs through their node (default route 10.0.N.1): the packets are routed by the node netns,
// so kube-proxy's PREROUTING DNAT applies; replies are un-NATed by the node's conntrack.
import { createServer, connect, type Server } from 'node:net';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetnsProcess } from '../process.js';
import { waitFor } from '../wait.js';
import type { K8sBinaries } from './binaries.js';
import { APISERVER_ADVERTISE_IP, type ControlPlane } from './control-plane.js';
import type { NodePool } from './node-pool.js';

export const CLUSTER_DNS_IP = '10.96.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';
export const CLUSTER_CIDR = '10.0.0.0/16';

export interface ClusterServices {
  /** The node netns that runs CoreDNS, and its address (the kube-dns endpoint). */
  readonly dnsNode: { netns: string; ip: string };
  /** Processes started in node namespaces (forwarders, kube-proxies, CoreDNS), by name. */
  readonly processes: ReadonlyMap<string, NetnsProcess>;
  /** A resolv.conf for a pod in `namespace`, as the kubelet's ClusterFirst policy writes it. */
  resolvConf(namespace: string): string;
  /** Fails with the last log lines if one of the processes has died. */
  assertHealthy(): void;
  stop(): Promise<void>;
}

const FORWARDER = `const net=require('net');const [port,sock]=process.argv.slice(1);
net.createServer((c)=>{const u=net.connect(sock);c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());c.on('close',()=>u.destroy());u.on('close',()=>c.destroy());})
.listen(Number(port),'0.0.0.0',()=>console.log('forwarding *:'+port+' to '+sock));`;

const DNS_PROBE = `const {Resolver}=require('dns').promises;const r=new Resolver({timeout:1000,tries:1});r.setServers([process.argv[1]]);
r.resolve4(process.argv[2]).then((a)=>{console.log(a.join(','));},(e)=>{console.error(e.code||e.message);process.exit(1);});`;

export async function startClusterServices(
  cp: ControlPlane,
  pool: NodePool,
  binaries: Pick<K8sBinaries, 'kubeProxy' | 'coredns'>,
  log: (line: string) => void = () => undefined,
): Promise<ClusterServices> {
  const dir = join(pool.dir, 'services');
  const processes = new Map<string, NetnsProcess>();
  const port = Number(new URL(cp.server).port);
  const sock = join(pool.dir, 'apiserver.sock');
  let relay: Server | undefined;
  const stop = async () => {
    for (const [name, p] of [...processes.entries()].reverse()) {
      await p.stop(2000).catch((err: unknown) => log(`stopping ${name}: ${(err as Error).message}`));
    }
    processes.clear();
    if (relay) await new Promise<void>((r) => relay!.close(() => r()));
    relay = undefined;
    rmSync(sock, { force: true });
  };
  const assertHealthy = () => {
    for (const [name, p] of processes) {
      if (p.exited) throw new Error(`${name} exited (${p.exited.code ?? p.exited.signal}): ${(p.stderr() || p.stdout()).slice(-2000)}`);
    }
  };
  const dnsNode = { netns: pool.topology.node(1).netns, ip: pool.topology.node(1).uplinkIp };
  try {
    if (!binaries.coredns) throw new Error('this build of the Kubernetes binaries has no coredns; run scripts/install-k8s-binaries.sh');

    mkdirSync(dir, { recursive: true });
    // Root side of the apiserver relay.
    relay = createServer((c) => {
      const u = connect(port, '127.0.0.1');
      c.pipe(u);
      u.pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
      c.on('close', () => u.destroy());
      u.on('close', () => c.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      relay!.once('error', reject);
      relay!.listen(sock, () => resolve());
    });
    relay.unref();

    // RBAC for CoreDNS (kube-proxy's user system:kube-proxy is bound by the bootstrap policy: system:node-proxier).
    await cp.client.apply('/apis/rbac.authorization.k8s.io/v1/clusterroles/ambit:coredns', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'ambit:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    }, { fieldManager: 'ambit-e2e', force: true });
    await cp.client.apply('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/ambit:coredns', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'ambit:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ambit:coredns' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:coredns' }],
    }, { fieldManager: 'ambit-e2e', force: true });
    // kube-dns: a Service without selector and a manual EndpointSlice to CoreDNS on node 1.
    await cp.client.apply('/api/v1/namespaces/kube-system/services/kube-dns', {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
      spec: { clusterIP: CLUSTER_DNS_IP, ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 }] },
    }, { fieldManager: 'ambit-e2e', force: true });
    await cp.client.apply('/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-ambit', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'kube-dns-ambit', namespace: 'kube-system', labels: { 'kubernetes.io/service-name': 'kube-dns', 'endpointslice.kubernetes.io/managed-by': 'ambit-e2e' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [dnsNode.ip], conditions: { ready: true }, nodeName: pool.nodeName(1) }],
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }],
    }, { fieldManager: 'ambit-e2e', force: true });

    const spawn = async (name: string, netns: string, argv: readonly string[]) => {
      const p = await pool.topology.spawnIn(netns, argv, { logFile: join(dir, `${name}.log`) });
      processes.set(name, p);
      return p;
    };
    for (const [i, k] of pool.kubelets.entries()) {
      const n = i + 1;
      const netns = pool.topology.node(n).netns;
      // Processes in the node netns itself (not pods) reach ClusterIPs too: the node netns has no default route, so
      // the Service range gets one (OUTPUT DNAT then rewrites the destination, as on a real node).
      await pool.topology.execIn(netns, ['ip', 'route', 'replace', cp.serviceClusterIpRange, 'dev', pool.topology.node(n).bridge], { check: true });
      // Pods reach the apiserver at the kubernetes Service (10.96.0.1:443), which kube-proxy DNATs to the endpoint
      // APISERVER_ADVERTISE_IP:<port>: that address lives on the node's lo, where the forwarder below listens.
      await pool.topology.execIn(netns, ['ip', 'addr', 'replace', `${APISERVER_ADVERTISE_IP}/32`, 'dev', 'lo'], { check: true });
      await spawn(`apiserver-forwarder-${k.nodeName}`, netns, [process.execPath, '-e', FORWARDER, String(port), sock]).then((p) => p.waitForOutput('forwarding', 10_000));
      const kubeconfig = join(dir, `kube-proxy-${k.nodeName}.kubeconfig`);
      writeFileSync(kubeconfig, await cp.kubeconfigFor({ commonName: 'system:kube-proxy' }), { mode: 0o600 });
      const config = join(dir, `kube-proxy-${k.nodeName}.yaml`);
      writeFileSync(config, [
        'apiVersion: kubeproxy.config.k8s.io/v1alpha1',
        'kind: KubeProxyConfiguration',
        'clientConnection:',
        `  kubeconfig: ${kubeconfig}`,
        `hostnameOverride: ${k.nodeName}`,
        `clusterCIDR: ${CLUSTER_CIDR}`,
        'mode: iptables',
        'healthzBindAddress: 127.0.0.1:10256',
        'metricsBindAddress: 127.0.0.1:10249',
        'iptables:',
        '  minSyncPeriod: 0s',
        '  syncPeriod: 30s',
        'conntrack:',
        '  maxPerCore: 0',
        '  min: 0',
        '  tcpEstablishedTimeout: 0s',
        '  tcpCloseWaitTimeout: 0s',
        '',
      ].join('\n'));
      await spawn(`kube-proxy-${k.nodeName}`, netns, [binaries.kubeProxy, `--config=${config}`, '--v=2']);
    }
    const corednsKubeconfig = join(dir, 'coredns.kubeconfig');
    writeFileSync(corednsKubeconfig, await cp.kubeconfigFor({ commonName: 'system:coredns' }), { mode: 0o600 });
    const corefile = join(dir, 'Corefile');
    writeFileSync(corefile, [
      '.:53 {',
      '  errors',
      `  kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {`,
      `    kubeconfig ${corednsKubeconfig}`,
      '    pods insecure',
      '    fallthrough in-addr.arpa ip6.arpa',
      '  }',
      '}',
      '',
    ].join('\n'));
    await spawn('coredns', dnsNode.netns, [binaries.coredns, '-conf', corefile]);

    // Ready when every node NATs the kube-dns ClusterIP and CoreDNS answers for the kubernetes Service through it.
    for (const k of pool.kubelets) {
      const netns = k.node.netns;
      await waitFor(async () => {
        assertHealthy();
        const r = await pool.topology.execIn(netns, ['iptables', '-t', 'nat', '-S', 'KUBE-SERVICES']);
        return r.code === 0 && r.stdout.includes(`${CLUSTER_DNS_IP}/32`);
      }, { timeoutMs: 30_000, intervalMs: 200, message: `kube-proxy on ${k.nodeName} to program ${CLUSTER_DNS_IP}` });
    }
    const probeNetns = pool.kubelets[pool.kubelets.length - 1]!.node.netns;
    await waitFor(async () => {
      assertHealthy();
      const r = await pool.topology.execIn(probeNetns, [process.execPath, '-e', DNS_PROBE, dnsNode.ip, `kubernetes.default.svc.${CLUSTER_DOMAIN}`], { timeoutMs: 5000 });
      return r.code === 0 && r.stdout.trim() !== '';
    }, { timeoutMs: 30_000, intervalMs: 250, message: `CoreDNS to answer kubernetes.default.svc.${CLUSTER_DOMAIN} on ${dnsNode.ip}:53` });
    await waitFor(async () => {
      assertHealthy();
      const r = await pool.topology.execIn(probeNetns, [process.execPath, '-e', DNS_PROBE, CLUSTER_DNS_IP, `kubernetes.default.svc.${CLUSTER_DOMAIN}`], { timeoutMs: 5000 });
      return r.code === 0 && r.stdout.trim() !== '';
    }, { timeoutMs: 30_000, intervalMs: 250, message: `CoreDNS to answer kubernetes.default.svc.${CLUSTER_DOMAIN} via ${CLUSTER_DNS_IP}` });
    log(`cluster services up: kube-proxy on ${pool.kubelets.length} node(s), CoreDNS in ${dnsNode.netns} behind ${CLUSTER_DNS_IP}`);
  } catch (err) {
    const detail = [...processes.entries()].map(([name, p]) => `${name}: ${(p.stderr() || p.stdout()).slice(-800)}`).join('\n');
    await stop().catch(() => undefined);
    throw new Error(`cluster services failed to start: ${(err as Error).message}\n${detail}`, { cause: err });
  }
  return {
    dnsNode,
    processes,
    resolvConf: (namespace) => `nameserver ${CLUSTER_DNS_IP}\nsearch ${namespace}.svc.${CLUSTER_DOMAIN} svc.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}\noptions ndots:5\n`,
    assertHealthy,
    stop,
  };
}
