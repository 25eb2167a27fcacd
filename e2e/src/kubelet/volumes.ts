// Volumes without a mount namespace. Each volume becomes a directory `<podDir>/volumes/<name>` filled the way the
// kubelet fills the real one (projected service-account tokens via TokenRequest, ConfigMap/Secret keys, downward
// API fields, emptyDir). A process cannot see it at its mountPath (`/var/run/secrets/...` cannot be bind-mounted
// per process without a mount namespace), so each container is told where its mounts are through env vars:
//   AMBIT_MOUNTS                     JSON {mountPath: directory} for every volumeMount of the container
//   AMBIT_VOLUME_<NAME>              directory of volume <name> (upper-cased, non-alphanumerics as _)
//   AMBIT_TOKEN_PATH_<NAME>          file of the (first) service-account token in projected volume <name>
//   AMBIT_SERVICEACCOUNT_DIR         directory mounted at /var/run/secrets/kubernetes.io/serviceaccount, if any
// Programs that read a well-known path (the Ambit agents) take the path from these.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';

export const SERVICEACCOUNT_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface VolumeApi {
  /** A token for the pod's service account (TokenRequest bound to the pod). */
  requestToken(req: { namespace: string; serviceAccount: string; audiences: string[]; expirationSeconds: number; podName: string; podUid: string }): Promise<{ token: string; expiresAt: Date }>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Secret data, base64-decoded. */
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
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

/** Fills every volume of the pod; returns a function giving a container's mount env, and the tokens written. */
export async function prepareVolumes(pod: V1Pod, podDir: string, api: VolumeApi): Promise<{ envFor: (c: V1Container) => Record<string, string>; tokens: WrittenToken[] }> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const dirs = new Map<string, string>();
  const tokenFiles = new Map<string, string>();
  const tokens: WrittenToken[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    const dir = join(podDir, 'volumes', v.name);
    mkdirSync(dir, { recursive: true });
    dirs.set(v.name, volumeDir(v, dir));
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
    // emptyDir: the directory itself; hostPath: the host path (volumeDir); others: an empty directory.
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

function volumeDir(v: V1Volume, dir: string): string {
  return v.hostPath?.path ?? dir;
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
