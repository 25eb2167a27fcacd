// Helpers shared by the chart tests: run the built helm (k8sBinaries().helm) on charts/ambit, render it with a
// profile, and pick objects out of the rendering.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runCommand, type ExecResult } from '../process.js';
import { k8sBinaries } from '../cluster/binaries.js';
import { parseManifest, type KubernetesObject } from '../cluster/cluster.js';

/** The repository root (this file is e2e/dist/src/chart/helm.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const CHART_DIR = join(REPO_ROOT, 'charts', 'ambit');
export const PROFILES = ['default', 'minimal', 'demo', 'ambient'] as const;
export type Profile = (typeof PROFILES)[number];
/** What `helm template --api-versions` needs to render the GatewayClass as on a cluster with the Gateway API. */
export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1/GatewayClass';

export function profilePath(profile: Profile): string {
  return join(CHART_DIR, 'profiles', `${profile}.yaml`);
}

/** The profile files present in the chart (a test checks they are exactly PROFILES). */
export function profileFiles(): string[] {
  return readdirSync(join(CHART_DIR, 'profiles')).filter((f) => f.endsWith('.yaml')).sort();
}

/** Runs helm; never throws on a non-zero exit (tests look at the message). */
export function helm(args: readonly string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ExecResult> {
  return runCommand([k8sBinaries().helm, ...args], {
    timeoutMs: options.timeoutMs ?? 60_000,
    // Keep helm's caches and config out of the user's home and away from other runs.
    env: { HELM_CACHE_HOME: '/tmp/ambit-helm/cache', HELM_CONFIG_HOME: '/tmp/ambit-helm/config', HELM_DATA_HOME: '/tmp/ambit-helm/data', ...options.env },
  });
}

export interface RenderOptions {
  profile?: Profile;
  namespace?: string;
  /** --set flags, `key=value`. */
  set?: readonly string[];
  /** Extra values files. */
  values?: readonly string[];
  apiVersions?: readonly string[];
}

/** `helm template` of the chart; throws with helm's stderr when it fails. */
export async function renderChart(options: RenderOptions = {}): Promise<KubernetesObject[]> {
  const r = await helm(templateArgs(options));
  if (r.code !== 0) throw new Error(`helm template failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseManifest(r.stdout);
}

export function templateArgs(options: RenderOptions): string[] {
  return [
    'template', 'ambit', CHART_DIR, '--namespace', options.namespace ?? 'istio-system',
    ...(options.profile ? ['-f', profilePath(options.profile)] : []),
    ...(options.values ?? []).flatMap((v) => ['-f', v]),
    ...(options.set ?? []).flatMap((s) => ['--set', s]),
    ...(options.apiVersions ?? []).flatMap((a) => ['--api-versions', a]),
  ];
}

export function findObject<T = KubernetesObject>(objects: readonly KubernetesObject[], kind: string, name: string): T | undefined {
  return objects.find((o) => o.kind === kind && o.metadata?.name === name) as T | undefined;
}

export function mustFind<T = KubernetesObject>(objects: readonly KubernetesObject[], kind: string, name: string): T {
  const o = findObject<T>(objects, kind, name);
  if (!o) throw new Error(`no ${kind} ${name} in the rendering; kinds: ${objects.map((x) => `${x.kind}/${x.metadata?.name}`).join(', ')}`);
  return o;
}

/** Minimal pod-template shapes the tests read. */
export interface EnvVar { name: string; value?: string; valueFrom?: unknown }
export interface Container {
  name: string;
  image: string;
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: number } };
  livenessProbe?: unknown;
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    runAsUser?: number;
    runAsNonRoot?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[];
}
export interface PodSpec {
  serviceAccountName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; hostPath?: { path: string }; configMap?: { name: string } }[];
}
export interface Workload extends KubernetesObject {
  spec: {
    replicas?: number;
    template: { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
    updateStrategy?: { type: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
  };
}
export interface PolicyRule { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }

/** Environment names a component reads, from its `ENV` table (config/env.ts or settings/env.ts) as source text. */
export function envNamesIn(source: string): Set<string> {
  const body = /export const ENV\s*=\s*Object\.freeze\(\{([\s\S]*?)\}\s*as const\)/.exec(source);
  if (!body) throw new Error('no `export const ENV = Object.freeze({...} as const)` table in the source');
  return new Set([...body[1]!.matchAll(/:\s*'([A-Z0-9_]+)'/g)].map((m) => m[1]!));
}
