// Volumes without a mount namespace. Each volume becomes a directory `<podDir>/volumes/<name>` filled the way the
// kubelet fills the real one (projected service-account tokens via TokenRequest, ConfigMap/Secret keys, downward
// API fields, emptyDir). A process cannot see it at its mountPath (`/var/run/secrets/...` cannot be bind-mounted
// per process without a mount namespace), so each container is told where its mounts are through env vars:
//   AMBIT_MOUNTS                     JSON {mountPath: directory} for every volumeMount of the container
//   AMBIT_VOLUME_<NAME>              directory of volume <name> (upper-cased, non-alphanumerics as _)
//   AMBIT_TOKEN_PATH_<NAME>          file of the (first) service-account token in projected volume <name>
//   AMBIT_SERVICEACCOUNT_DIR         directory mounted at /var/run/secrets/kubernetes.io/serviceaccount, if any
// Programs that read a well-known path (the Ambit agents) take the path from these.
//
// hostPath volumes: all nodes of the box share one filesystem, but on a real cluster a DaemonSet pod on node-1 and
// one on node-2 that mount /etc/cni/net.d see two different directories. So paths that are node-local on a real
// node (HostPathMapping.nodeLocalPaths: CNI conf and bin dirs, Ambit's run and state dirs) are mapped under the
// node's own root directory (`<nodeRoot><path>`); paths that are host-global (/proc, /var/run/netns, /sys/fs/cgroup)
// stay the host's own. The hostPath `type` is checked (and DirectoryOrCreate/FileOrCreate created) as the kubelet does.
import { closeSync, mkdirSync, openSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';

export const SERVICEACCOUNT_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface VolumeApi {
  /** A token for the pod's service account (TokenRequest bound to the pod). */
  requestToken(req: { namespace: string; serviceAccount: string; audiences: string[]; expirationSeconds: number; podName: string; podUid: string }): Promise<{ token: string; expiresAt: Date }>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Secret data, base64-decoded. */
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

/** Where a node's node-local hostPaths live (absent: every hostPath is the host's own path). */
export interface HostPathMapping {
  /** The node's root directory: node-local path P is `<nodeRoot>P`. */
  nodeRoot: string;
  /** Absolute paths (and everything under them) that belong to the node rather than the host. */
  nodeLocalPaths: readonly string[];
}

/** Paths a real node has to itself that DaemonSets mount (CNI installers, the Ambit agent). */
export const DEFAULT_NODE_LOCAL_PATHS: readonly string[] = Object.freeze(['/etc/cni/net.d', '/opt/cni/bin', '/var/run/ambit', '/var/lib/ambit']);

const within = (path: string, root: string): boolean => {
  const r = root.replace(/\/+$/, '');
  return path === r || path.startsWith(`${r}/`);
};

/** The directory or file backing a hostPath on this node: under the node root when node-local, else the host path. */
export function hostPathOnNode(path: string, mapping: HostPathMapping | undefined): string {
  if (!path.startsWith('/')) throw new Error(`hostPath.path ${JSON.stringify(path)} must be absolute`);
  const normalized = posix.normalize(path);
  if (!mapping || !mapping.nodeLocalPaths.some((p) => within(normalized, p))) return normalized;
  return join(mapping.nodeRoot, normalized);
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Resolves a hostPath volume on this node and applies its `type` as the kubelet does: DirectoryOrCreate creates the
 * directory (0755, parents too), FileOrCreate an empty file (0644; its directory must exist, as in Kubernetes), and
 * the other types must already be what they name. Returns the path the volume stands for.
 */
export function prepareHostPath(volume: string, source: { path: string; type?: string }, mapping: HostPathMapping | undefined): string {
  const path = hostPathOnNode(source.path, mapping);
  const type = source.type ?? '';
  const where = `hostPath volume "${volume}" (${source.path}${path !== source.path ? ` -> ${path}` : ''})`;
  const st = statOrUndefined(path);
  const mustBe = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${where}: hostPath type check failed: ${source.path} is not ${what}`);
  };
  switch (type) {
    case '':
      break;
    case 'DirectoryOrCreate':
      if (st) mustBe(st.isDirectory(), 'a directory');
      else mkdirSync(path, { recursive: true, mode: 0o755 });
      break;
    case 'Directory':
      mustBe(st?.isDirectory() === true, 'a directory');
      break;
    case 'FileOrCreate':
      if (st) mustBe(st.isFile(), 'a file');
      else {
        mustBe(statOrUndefined(dirname(path))?.isDirectory() === true, `creatable: its directory ${dirname(source.path)} does not exist`);
        closeSync(openSync(path, 'a', 0o644));
      }
      break;
    case 'File':
      mustBe(st?.isFile() === true, 'a file');
      break;
    case 'Socket':
      mustBe(st?.isSocket() === true, 'a socket');
      break;
    case 'CharDevice':
      mustBe(st?.isCharacterDevice() === true, 'a character device');
      break;
    case 'BlockDevice':
      mustBe(st?.isBlockDevice() === true, 'a block device');
      break;
    default:
      throw new Error(`${where}: unknown hostPath type ${JSON.stringify(type)}`);
  }
  return path;
}

export function envName(volume: string): string {
  return volume.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

function writeFile(dir: string, rel: string, data: string, mode = 0o644): string {
  if (rel.split('/').includes('..') || rel.startsWith('/')) throw new Error(`volume item path ${JSON.stringify(rel)} must be relative without ..`);
  const p = join(dir, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data, { mode });
  return p;
}

function fieldValue(pod: V1Pod, path: string): string {
  const sub = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (sub) return (sub[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[sub[2]!] ?? '';
  const fmt = (m: Record<string, string> | undefined) => Object.entries(m ?? {}).sort().map(([k, v]) => `${k}="${v}"`).join('\n');
  switch (path) {
    case 'metadata.name': return pod.metadata?.name ?? '';
    case 'metadata.namespace': return pod.metadata?.namespace ?? '';
    case 'metadata.uid': return pod.metadata?.uid ?? '';
    case 'metadata.labels': return fmt(pod.metadata?.labels);
    case 'metadata.annotations': return fmt(pod.metadata?.annotations);
    default: throw new Error(`unsupported downwardAPI fieldPath ${path}`);
  }
}

async function keyed(dir: string, data: Record<string, string> | undefined, items: { key: string; path: string }[] | undefined, what: string, optional: boolean | undefined): Promise<void> {
  if (!data) {
    if (optional) return;
    throw new Error(`${what} not found`);
  }
  if (items && items.length > 0) {
    for (const it of items) {
      const v = data[it.key];
      if (v === undefined) {
        if (optional) continue;
        throw new Error(`${what} has no key ${it.key}`);
      }
      writeFile(dir, it.path, v);
    }
  } else {
    for (const [k, v] of Object.entries(data)) writeFile(dir, k, v);
  }
}

/** Tokens written, so the kubelet can refresh them before they expire (at 80% of their lifetime, as kubelet). */
export interface WrittenToken {
  file: string;
  refreshAt: number;
  request: Parameters<VolumeApi['requestToken']>[0];
}

/**
 * Fills every volume of the pod; returns a function giving a container's mount env, and the tokens written.
 * `hostPaths` maps node-local hostPaths under the node's root (absent: hostPaths are the host's own paths).
 */
export async function prepareVolumes(pod: V1Pod, podDir: string, api: VolumeApi, hostPaths?: HostPathMapping): Promise<{ envFor: (c: V1Container) => Record<string, string>; tokens: WrittenToken[] }> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const dirs = new Map<string, string>();
  const tokenFiles = new Map<string, string>();
  const tokens: WrittenToken[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    if (v.hostPath) {
      dirs.set(v.name, prepareHostPath(v.name, v.hostPath, hostPaths));
      continue;
    }
    const dir = join(podDir, 'volumes', v.name);
    mkdirSync(dir, { recursive: true });
    dirs.set(v.name, dir);
    if (v.projected) {
      for (const s of v.projected.sources ?? []) {
        if (s.serviceAccountToken) {
          const request = {
            namespace,
            serviceAccount: pod.spec?.serviceAccountName ?? 'default',
            audiences: s.serviceAccountToken.audience ? [s.serviceAccountToken.audience] : [],
            expirationSeconds: s.serviceAccountToken.expirationSeconds ?? 3600,
            podName: pod.metadata?.name ?? '',
            podUid: pod.metadata?.uid ?? '',
          };
          const t = await api.requestToken(request);
          const file = writeFile(dir, s.serviceAccountToken.path, t.token, 0o600);
          if (!tokenFiles.has(v.name)) tokenFiles.set(v.name, file);
          const lifetime = t.expiresAt.getTime() - Date.now();
          tokens.push({ file, refreshAt: Date.now() + lifetime * 0.8, request });
        } else if (s.configMap) {
          await keyed(dir, await api.configMap(namespace, s.configMap.name ?? ''), s.configMap.items, `configmap "${s.configMap.name}"`, s.configMap.optional);
        } else if (s.secret) {
          await keyed(dir, await api.secret(namespace, s.secret.name ?? ''), s.secret.items, `secret "${s.secret.name}"`, s.secret.optional);
        } else if (s.downwardAPI) {
          for (const it of s.downwardAPI.items ?? []) if (it.fieldRef) writeFile(dir, it.path, fieldValue(pod, it.fieldRef.fieldPath));
        }
      }
    } else if (v.configMap) {
      await keyed(dir, await api.configMap(namespace, v.configMap.name ?? ''), v.configMap.items, `configmap "${v.configMap.name}"`, v.configMap.optional);
    } else if (v.secret) {
      await keyed(dir, await api.secret(namespace, v.secret.secretName ?? ''), v.secret.items, `secret "${v.secret.secretName}"`, v.secret.optional);
    } else if (v.downwardAPI) {
      for (const it of v.downwardAPI.items ?? []) if (it.fieldRef) writeFile(dir, it.path, fieldValue(pod, it.fieldRef.fieldPath));
    }
    // emptyDir: the directory itself; others: an empty directory. (hostPath was handled above.)
  }
  const envFor = (c: V1Container): Record<string, string> => {
    const env: Record<string, string> = {};
    const mounts: Record<string, string> = {};
    for (const m of c.volumeMounts ?? []) {
      const dir = dirs.get(m.name);
      if (!dir) continue;
      const path = m.subPath ? join(dir, m.subPath) : dir;
      mounts[m.mountPath] = path;
      env[`AMBIT_VOLUME_${envName(m.name)}`] = dir;
      const token = tokenFiles.get(m.name);
      if (token) env[`AMBIT_TOKEN_PATH_${envName(m.name)}`] = token;
      if (m.mountPath.replace(/\/$/, '') === SERVICEACCOUNT_MOUNT) env.AMBIT_SERVICEACCOUNT_DIR = path;
    }
    if (Object.keys(mounts).length > 0) env.AMBIT_MOUNTS = JSON.stringify(mounts);
    return env;
  };
  return { envFor, tokens };
}

/** Rewrites tokens that reached their refresh time; returns how many were refreshed. */
export async function refreshTokens(tokens: WrittenToken[], api: VolumeApi, now = Date.now()): Promise<number> {
  let n = 0;
  for (const t of tokens) {
    if (now < t.refreshAt) continue;
    const fresh = await api.requestToken(t.request);
    writeFileSync(t.file, fresh.token, { mode: 0o600 });
    t.refreshAt = now + (fresh.expiresAt.getTime() - now) * 0.8;
    n++;
  }
  return n;
}
