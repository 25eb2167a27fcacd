// Where a well-known file really is. In a real pod, volumes are mounted at their mountPath; in the cluster-in-a-box
// (no mount namespaces) the kubelet passes AMBIT_MOUNTS = JSON {mountPath: directory} instead. Deployables resolve
// every well-known path (service-account token, root cert, CNI dirs) through this one function so the same
// binary runs in both.

export const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type EnvLike = Readonly<Record<string, string | undefined>>;

/** The mounts announced in AMBIT_MOUNTS; empty when unset. Throws on malformed JSON (a kubelet bug, say so). */
export function announcedMounts(env: EnvLike): Record<string, string> {
  const raw = env.AMBIT_MOUNTS;
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new Error(`AMBIT_MOUNTS is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('AMBIT_MOUNTS must be a JSON object {mountPath: directory}');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** `path` rewritten under the directory of the longest announced mountPath that contains it; else `path`. */
export function mountedPath(path: string, env: EnvLike): string {
  const mounts = announcedMounts(env);
  let best: string | undefined;
  for (const mountPath of Object.keys(mounts)) {
    const m = mountPath.replace(/\/+$/, '');
    if ((path === m || path.startsWith(`${m}/`)) && (best === undefined || m.length > best.length)) best = m;
  }
  if (best === undefined) return path;
  return `${mounts[best === '' ? '/' : best] ?? mounts[`${best}/`]}${path.slice(best.length)}`;
}

export interface InClusterConnection {
  server: string;
  caFile: string;
  tokenFile: string;
  namespaceFile: string;
}

/** The API server as a pod sees it (KUBERNETES_SERVICE_HOST/PORT + the service-account mount), or undefined outside a pod. */
export function inClusterConnection(env: EnvLike): InClusterConnection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  const dir = mountedPath(SERVICEACCOUNT_DIR, env);
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    caFile: `${dir}/ca.crt`,
    tokenFile: `${dir}/token`,
    namespaceFile: `${dir}/namespace`,
  };
}
