// A container's environment as the kubelet computes it: envFrom, then env in order, with the downward API
// (fieldRef, resourceFieldRef), ConfigMap/Secret keys, and `$(VAR)` expansion, following the rules of
// pkg/kubelet/kubelet_pods.go makeEnvironmentVariables and third_party/forked/golang/expansion. Pure: ConfigMaps
// and Secrets are fetched by the caller (see `envSources`) and handed in, so the rules are unit-tested.
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';

export interface EnvContext {
  pod: V1Pod;
  podIP: string | undefined;
  podIPs: readonly string[];
  hostIP: string | undefined;
  /** Node allocatable, the default for resourceFieldRef of a container without limits. */
  nodeAllocatable: { cpu: string; memory: string; 'ephemeral-storage'?: string };
  /** `ConfigMap/<name>` or `Secret/<name>` -> data (Secrets already base64-decoded); absent = not found. */
  sources: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

export interface EnvSource {
  kind: 'ConfigMap' | 'Secret';
  name: string;
}

/** Thrown for a reference that cannot be resolved; the kubelet reports it as CreateContainerConfigError. */
export class EnvConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvConfigError';
  }
}

/** ConfigMaps and Secrets a container's env refers to, deduplicated. */
export function envSources(container: V1Container): EnvSource[] {
  const out = new Map<string, EnvSource>();
  const add = (kind: EnvSource['kind'], name: string | undefined) => {
    if (name) out.set(`${kind}/${name}`, { kind, name });
  };
  for (const f of container.envFrom ?? []) {
    add('ConfigMap', f.configMapRef?.name);
    add('Secret', f.secretRef?.name);
  }
  for (const e of container.env ?? []) {
    add('ConfigMap', e.valueFrom?.configMapKeyRef?.name);
    add('Secret', e.valueFrom?.secretKeyRef?.name);
  }
  return [...out.values()];
}

/**
 * Expands `$(NAME)` from `lookup`; `$$` is an escaped `$`; a reference that is not defined stays as written
 * (Kubernetes leaves it, so a typo is visible in the process rather than silently empty).
 */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      const value = lookup(name);
      out += value ?? `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/** Parses a Kubernetes quantity (`100m`, `1.5`, `128Mi`, `1G`) to a number of base units. */
export function parseQuantity(q: string): number {
  const m = /^([+-]?\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(q.trim());
  if (!m) throw new EnvConfigError(`invalid quantity ${JSON.stringify(q)}`);
  const n = Number(m[1]);
  const mult: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  };
  const f = mult[m[2]!];
  if (f === undefined) throw new EnvConfigError(`invalid quantity suffix in ${JSON.stringify(q)}`);
  return n * f;
}

function fieldRef(path: string, ctx: EnvContext): string {
  const { pod } = ctx;
  const sub = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (sub) return (sub[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[sub[2]!] ?? '';
  switch (path) {
    case 'metadata.name': return pod.metadata?.name ?? '';
    case 'metadata.namespace': return pod.metadata?.namespace ?? '';
    case 'metadata.uid': return pod.metadata?.uid ?? '';
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP': return ctx.podIP ?? '';
    case 'status.podIPs': return ctx.podIPs.join(',');
    case 'status.hostIP': return ctx.hostIP ?? '';
    case 'status.hostIPs': return ctx.hostIP ?? '';
    default: throw new EnvConfigError(`unsupported fieldRef fieldPath ${JSON.stringify(path)}`);
  }
}

function resourceFieldRef(ref: NonNullable<NonNullable<V1EnvVar['valueFrom']>['resourceFieldRef']>, container: V1Container, ctx: EnvContext): string {
  const [kind, resource] = ref.resource.split('.') as ['limits' | 'requests', string];
  const fromSpec = container.resources?.[kind]?.[resource];
  // Limits default to node allocatable, requests to 0 (cpu) / 0 (memory), as the kubelet does.
  const fallback = kind === 'limits' ? (ctx.nodeAllocatable as Record<string, string | undefined>)[resource] : '0';
  const quantity = fromSpec ?? fallback;
  if (quantity === undefined) throw new EnvConfigError(`unsupported resourceFieldRef resource ${JSON.stringify(ref.resource)}`);
  const divisor = parseQuantity(ref.divisor ?? '1');
  // Round up, so `limits.cpu` of 500m is 1 (never 0 CPUs), as the kubelet's ExtractResourceValueByContainerName.
  return String(Math.ceil(parseQuantity(quantity) / divisor));
}

/**
 * The container's environment in order (later entries override earlier ones, as in a real container), without the
 * kubelet's own additions (service links, HOSTNAME) which the caller puts first.
 */
export function resolveEnv(container: V1Container, ctx: EnvContext, base: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = { ...base };
  const source = (kind: EnvSource['kind'], name: string, optional: boolean | undefined): Readonly<Record<string, string>> | undefined => {
    const data = ctx.sources.get(`${kind}/${name}`);
    if (!data && !optional) throw new EnvConfigError(`${kind.toLowerCase()} "${name}" not found`);
    return data;
  };
  for (const f of container.envFrom ?? []) {
    const data = f.configMapRef ? source('ConfigMap', f.configMapRef.name ?? '', f.configMapRef.optional) : f.secretRef ? source('Secret', f.secretRef.name ?? '', f.secretRef.optional) : undefined;
    for (const [k, v] of Object.entries(data ?? {})) {
      const key = `${f.prefix ?? ''}${k}`;
      // Kubernetes skips keys that are not valid variable names (and emits an event); we skip them too.
      if (/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(key)) env[key] = v;
    }
  }
  for (const e of container.env ?? []) {
    let value: string;
    const from = e.valueFrom;
    if (!from) value = expandVars(e.value ?? '', (n) => env[n]);
    else if (from.fieldRef) value = fieldRef(from.fieldRef.fieldPath, ctx);
    else if (from.resourceFieldRef) value = resourceFieldRef(from.resourceFieldRef, container, ctx);
    else if (from.configMapKeyRef || from.secretKeyRef) {
      const ref = (from.configMapKeyRef ?? from.secretKeyRef)!;
      const kind = from.configMapKeyRef ? 'ConfigMap' : 'Secret';
      const data = source(kind, ref.name ?? '', ref.optional);
      if (data === undefined) continue;
      const v = data[ref.key];
      if (v === undefined) {
        if (ref.optional) continue;
        throw new EnvConfigError(`couldn't find key ${ref.key} in ${kind} ${ctx.pod.metadata?.namespace}/${ref.name}`);
      }
      value = v;
    } else {
      throw new EnvConfigError(`env ${e.name}: unsupported valueFrom ${JSON.stringify(from)}`);
    }
    env[e.name] = value;
  }
  return env;
}

/** The container's argv with `$(VAR)` expanded from its final environment (command and args only, as Kubernetes). */
export function expandCommand(argv: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return argv.map((a) => expandVars(a, (n) => env[n]));
}
