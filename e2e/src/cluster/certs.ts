// The control plane's PKI, made fresh for every cluster with @ambit/pki (no openssl, no cfssl, nothing cached):
// one CA for the whole cluster, as envtest and kubeadm's single-CA layouts do. Kubernetes takes identities from
// client certificates: CN is the user, each O a group. The names below are the ones the bootstrap RBAC policy
// binds (system:kube-controller-manager, system:kube-scheduler, system:masters), so no RBAC objects of our own
// are needed to start.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  createTlsCa,
  generateServiceAccountKeyPair,
  issueTlsCertificate,
  type ServiceAccountKeyPair,
  type TlsKeyPair,
} from '@ambit/pki';

/** Names the apiserver's serving certificate answers to: what in-cluster clients and kubeconfigs use. */
export const APISERVER_DNS_NAMES = Object.freeze([
  'localhost',
  'kubernetes',
  'kubernetes.default',
  'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local',
]);

/** A day: longer than any test run, short enough that a leaked file is useless soon. */
const CERT_TTL_SECONDS = 24 * 3600;

export interface ControlPlanePki {
  ca: TlsKeyPair;
  /** kube-apiserver's serving certificate (IP SANs 127.0.0.1 and the `kubernetes` Service IP). */
  apiserver: TlsKeyPair;
  /** The apiserver's client certificate towards kubelets (logs, exec, port-forward). */
  apiserverKubeletClient: TlsKeyPair;
  /** CN=admin, O=system:masters: the tests' cluster-admin. */
  admin: TlsKeyPair;
  /** CN=system:kube-controller-manager; also serves its /healthz on 127.0.0.1. */
  controllerManager: TlsKeyPair;
  /** CN=system:kube-scheduler; also serves its /healthz on 127.0.0.1. */
  scheduler: TlsKeyPair;
  /** Signs and verifies service-account tokens (TokenRequest, projected volumes, the legacy token controller). */
  serviceAccount: ServiceAccountKeyPair;
}

export interface CreateControlPlanePkiOptions {
  /** The `kubernetes` Service's ClusterIP, the first address of the service range (e.g. 10.96.0.1). */
  serviceIp: string;
}

/** Generates every key and certificate the control plane needs (about 50 ms; keys are EC P-256 except the SA key). */
export async function createControlPlanePki(options: CreateControlPlanePkiOptions): Promise<ControlPlanePki> {
  const ca = await createTlsCa({ commonName: 'ambit-e2e-kubernetes-ca' });
  const ttlSeconds = CERT_TTL_SECONDS;
  const loopback = ['127.0.0.1'];
  const [apiserver, apiserverKubeletClient, admin, controllerManager, scheduler] = await Promise.all([
    issueTlsCertificate(ca, {
      commonName: 'kube-apiserver',
      dnsNames: APISERVER_DNS_NAMES,
      ipAddresses: [...loopback, options.serviceIp],
      usages: ['server'],
      ttlSeconds,
    }),
    // system:masters as kubeadm gave it before 1.29: lets the apiserver reach every kubelet API without extra RBAC.
    issueTlsCertificate(ca, { commonName: 'kube-apiserver-kubelet-client', organizations: ['system:masters'], usages: ['client'], ttlSeconds }),
    issueTlsCertificate(ca, { commonName: 'admin', organizations: ['system:masters'], usages: ['client'], ttlSeconds }),
    issueTlsCertificate(ca, {
      commonName: 'system:kube-controller-manager',
      dnsNames: ['localhost'],
      ipAddresses: loopback,
      usages: ['client', 'server'],
      ttlSeconds,
    }),
    issueTlsCertificate(ca, {
      commonName: 'system:kube-scheduler',
      dnsNames: ['localhost'],
      ipAddresses: loopback,
      usages: ['client', 'server'],
      ttlSeconds,
    }),
  ]);
  return { ca, apiserver, apiserverKubeletClient, admin, controllerManager, scheduler, serviceAccount: generateServiceAccountKeyPair() };
}

/** Where writeControlPlanePki put each file. */
export interface ControlPlanePkiFiles {
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  schedulerCert: string;
  schedulerKey: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
}

/** Writes the PKI under `dir` (created 0700; keys 0600) and returns the paths for the components' flags. */
export function writeControlPlanePki(dir: string, pki: ControlPlanePki): ControlPlanePkiFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const write = (name: string, text: string, secret: boolean): string => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: secret ? 0o600 : 0o644 });
    return path;
  };
  return {
    caCert: write('ca.crt', pki.ca.certPem, false),
    caKey: write('ca.key', pki.ca.keyPem, true),
    apiserverCert: write('apiserver.crt', pki.apiserver.certPem, false),
    apiserverKey: write('apiserver.key', pki.apiserver.keyPem, true),
    kubeletClientCert: write('apiserver-kubelet-client.crt', pki.apiserverKubeletClient.certPem, false),
    kubeletClientKey: write('apiserver-kubelet-client.key', pki.apiserverKubeletClient.keyPem, true),
    controllerManagerCert: write('controller-manager.crt', pki.controllerManager.certPem, false),
    controllerManagerKey: write('controller-manager.key', pki.controllerManager.keyPem, true),
    schedulerCert: write('scheduler.crt', pki.scheduler.certPem, false),
    schedulerKey: write('scheduler.key', pki.scheduler.keyPem, true),
    serviceAccountPublicKey: write('sa.pub', pki.serviceAccount.publicKeyPem, false),
    serviceAccountPrivateKey: write('sa.key', pki.serviceAccount.privateKeyPem, true),
  };
}

export interface KubeconfigOptions {
  /** https://127.0.0.1:<port> */
  server: string;
  caPem: string;
  /** The user's client certificate and key, or a bearer token (a service account's). */
  client?: TlsKeyPair;
  token?: string;
  /** Names the cluster, user and context; default `ambit-e2e`. */
  name?: string;
  /** The context's default namespace. */
  namespace?: string;
}

/**
 * A kubeconfig with everything inline (base64 *-data fields), so it can be copied anywhere — into a node's
 * directory for the kubelet, or printed for a human running kubectl against a paused test.
 */
export function buildKubeconfig(options: KubeconfigOptions): string {
  const name = options.name ?? 'ambit-e2e';
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  if (!options.client === !options.token) throw new Error('a kubeconfig user needs either a client certificate or a token');
  const user = options.client
    ? { 'client-certificate-data': b64(options.client.certPem), 'client-key-data': b64(options.client.keyPem) }
    : { token: options.token };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: options.server, 'certificate-authority-data': b64(options.caPem) } }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name, ...(options.namespace ? { namespace: options.namespace } : {}) } }],
    'current-context': name,
    preferences: {},
  });
}

/**
 * The first usable address of an IPv4 service range: the ClusterIP kube-apiserver gives the `kubernetes` Service
 * (10.96.0.0/16 -> 10.96.0.1), which its serving certificate must name.
 */
export function firstServiceIp(cidr: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || octets.some((o) => o > 255) || bits < 8 || bits > 30) {
    throw new Error(`service range "${cidr}" is not an IPv4 CIDR between /8 and /30 (e.g. 10.96.0.0/16)`);
  }
  const value = octets.reduce((acc, o) => acc * 256 + o, 0);
  const network = value - (value % 2 ** (32 - bits));
  if (network !== value) throw new Error(`service range "${cidr}" has host bits set; did you mean ${formatIpv4(network)}/${bits}?`);
  return formatIpv4(network + 1);
}

function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
