// The kubelet's own small Kubernetes REST client: JSON requests and a list+watch pod informer over node:https.
// Why not @kubernetes/client-node: its 2.0.1 release pulls undici 8, which throws at load time on Node 20 (no
// zlib zstd), so a kubelet built on it could not even be imported in our Node 20 test runs. Objects are still
// typed with client-node's model *types* (type-only imports, erased at compile time).
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export interface KubeConnection {
  /** https://host:port */
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
}

/** What startKubelet accepts as credentials: kubeconfig YAML, or anything with client-node's exportConfig(). */
export type KubeconfigSource = string | { exportConfig(): string };

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: { name: string; cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string } }[];
  users?: { name: string; user: { 'client-certificate-data'?: string; 'client-key-data'?: string; 'client-certificate'?: string; 'client-key'?: string; token?: string; tokenFile?: string } }[];
}

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

/** The current context's server and credentials (inline data or files; client certificate or bearer token). */
export function connectionFromKubeconfig(source: KubeconfigSource): KubeConnection {
  const text = typeof source === 'string' ? source : source.exportConfig();
  const kc = parseYaml(text) as KubeconfigFile;
  const ctxName = kc['current-context'] ?? kc.contexts?.[0]?.name;
  const ctx = kc.contexts?.find((c) => c.name === ctxName)?.context;
  const cluster = kc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster ?? kc.clusters?.[0]?.cluster;
  const user = kc.users?.find((u) => u.name === ctx?.user)?.user ?? kc.users?.[0]?.user;
  if (!cluster?.server) throw new Error('kubeconfig has no cluster server for its current context');
  const conn: KubeConnection = { server: cluster.server.replace(/\/$/, '') };
  if (cluster['certificate-authority-data']) conn.ca = b64(cluster['certificate-authority-data']);
  else if (cluster['certificate-authority']) conn.ca = readFileSync(cluster['certificate-authority'], 'utf8');
  if (user?.['client-certificate-data']) conn.cert = b64(user['client-certificate-data']);
  else if (user?.['client-certificate']) conn.cert = readFileSync(user['client-certificate'], 'utf8');
  if (user?.['client-key-data']) conn.key = b64(user['client-key-data']);
  else if (user?.['client-key']) conn.key = readFileSync(user['client-key'], 'utf8');
  if (user?.token) conn.token = user.token;
  else if (user?.tokenFile) conn.token = readFileSync(user.tokenFile, 'utf8').trim();
  return conn;
}

/** An API error with the HTTP status and the Status object's reason/message. */
export class KubeletApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly code: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(`${method} ${path}: HTTP ${code}${reason ? ` ${reason}` : ''}: ${message}`);
    this.name = 'KubeletApiError';
  }
}

export function isApiStatus(err: unknown, code: number): boolean {
  return err instanceof KubeletApiError && err.code === code;
}

export interface KubeApi {
  readonly server: string;
  request<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T>;
  /** A watch stream: calls `onEvent` per line until the server ends it, the signal aborts, or an error. */
  watch(path: string, onEvent: (ev: { type: string; object: Record<string, unknown> }) => void, signal: AbortSignal): Promise<void>;
  close(): void;
}

export const MERGE_PATCH = 'application/merge-patch+json';

export function createKubeApi(conn: KubeConnection, options: { timeoutMs?: number } = {}): KubeApi {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: conn.ca, cert: conn.cert, key: conn.key });
  const timeoutMs = options.timeoutMs ?? 15_000;
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    Accept: 'application/json',
    'User-Agent': 'ambit-kubelet/0.1',
    ...(conn.token ? { Authorization: `Bearer ${conn.token}` } : {}),
    ...extra,
  });
  return {
    server: conn.server,
    request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      return new Promise<T>((resolve, reject) => {
        const req = https.request(
          `${conn.server}${path}`,
          { method, agent, timeout: timeoutMs, headers: headers(payload !== undefined ? { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(payload)) } : {}) },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: unknown;
              try {
                parsed = text ? JSON.parse(text) : {};
              } catch {
                parsed = undefined;
              }
              const status = res.statusCode ?? 0;
              if (status >= 400) {
                const s = parsed as { reason?: string; message?: string } | undefined;
                reject(new KubeletApiError(method, path, status, s?.reason, s?.message ?? text.slice(0, 300)));
              } else resolve(parsed as T);
            });
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end(payload);
      });
    },
    watch(path, onEvent, signal) {
      return new Promise<void>((resolve, reject) => {
        const req = https.request(`${conn.server}${path}`, { method: 'GET', agent, headers: headers(), signal }, (res) => {
          if ((res.statusCode ?? 0) >= 400) {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString('utf8')));
            res.on('end', () => reject(new KubeletApiError('GET', path, res.statusCode ?? 0, undefined, text.slice(0, 300))));
            return;
          }
          let buf = '';
          res.on('data', (c: Buffer) => {
            buf += c.toString('utf8');
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line) onEvent(JSON.parse(line) as { type: string; object: Record<string, unknown> });
            }
          });
          res.on('end', () => resolve());
          res.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
        });
        req.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
        req.end();
      });
    },
    close: () => agent.destroy(),
  };
}

interface Meta {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface Informer<T> {
  get(name: string, namespace?: string): T | undefined;
  list(): T[];
  /** Resolves after the first list, so the cache is complete. */
  start(): Promise<void>;
  stop(): void;
}

/**
 * List+watch of one collection into a cache, calling `onChange` for every add/update/delete (including objects
 * that disappeared across a relist). Re-watches from the last resourceVersion; relists on 410 Gone.
 */
export function createInformer<T extends Meta>(api: KubeApi, collectionPath: string, query: Record<string, string>, onChange: (obj: T, type: 'ADDED' | 'MODIFIED' | 'DELETED') => void, onError: (err: unknown) => void): Informer<T> {
  const cache = new Map<string, T>();
  const key = (o: T) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  const abort = new AbortController();
  let rv = '';
  const qs = (extra: Record<string, string>) => '?' + new URLSearchParams({ ...query, ...extra }).toString();

  const relist = async () => {
    const list = await api.request<{ items: T[]; metadata: { resourceVersion: string } }>('GET', `${collectionPath}${qs({})}`);
    const seen = new Set<string>();
    for (const item of list.items) {
      const k = key(item);
      seen.add(k);
      const old = cache.get(k);
      cache.set(k, item);
      if (!old) onChange(item, 'ADDED');
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) onChange(item, 'MODIFIED');
    }
    for (const [k, old] of cache) {
      if (!seen.has(k)) {
        cache.delete(k);
        onChange(old, 'DELETED');
      }
    }
    rv = list.metadata.resourceVersion;
  };

  const loop = async () => {
    let failures = 0;
    while (!abort.signal.aborted) {
      let gone = false;
      try {
        await api.watch(`${collectionPath}${qs({ watch: '1', resourceVersion: rv, allowWatchBookmarks: 'true', timeoutSeconds: '300' })}`, (ev) => {
          if (ev.type === 'ERROR') {
            if ((ev.object as { code?: number }).code === 410) gone = true;
            return;
          }
          const obj = ev.object as T;
          if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (ev.type === 'BOOKMARK') return;
          const k = key(obj);
          if (ev.type === 'DELETED') cache.delete(k);
          else cache.set(k, obj);
          onChange(obj, ev.type as 'ADDED' | 'MODIFIED' | 'DELETED');
        }, abort.signal);
        failures = 0;
      } catch (err) {
        if (abort.signal.aborted) return;
        failures++;
        onError(err);
        if (isApiStatus(err, 410)) gone = true;
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** failures)).unref());
      }
      if (gone && !abort.signal.aborted) {
        try {
          await relist();
        } catch (err) {
          onError(err);
        }
      }
    }
  };

  return {
    get: (name, namespace) => cache.get(`${namespace ?? ''}/${name}`),
    list: () => [...cache.values()],
    async start() {
      await relist();
      void loop();
    },
    stop: () => abort.abort(),
  };
}
