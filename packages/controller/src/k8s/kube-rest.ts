// A small JSON client for the Kubernetes REST API on top of @kubernetes/client-node's KubeConfig (which supplies
// TLS material and credentials, re-reading a projected token file as it rotates). One code path for every verb
// the controller uses (list, streaming watch, create, merge/apply patches, TokenReview) so that errors carry the
// same shape everywhere: HTTP status, the apiserver's Status reason and message.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { createInterface } from 'node:readline';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from '@ambit/api';
import type { KubernetesConnection } from '../settings/settings.js';

export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    /** The Status object's `reason` (NotFound, AlreadyExists, Conflict, Expired, ...). */
    readonly reason: string | undefined,
    readonly apiMessage: string,
  ) {
    super(`${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${apiMessage}`);
    this.name = 'KubeApiError';
  }
}

export interface RequestOptionsLite {
  body?: unknown;
  /** Default application/json. */
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

export interface KubeRest {
  readonly server: string;
  request<T = Record<string, unknown>>(method: string, path: string, options?: RequestOptionsLite): Promise<T>;
  /** GET that resolves undefined on 404. */
  find<T = Record<string, unknown>>(path: string): Promise<T | undefined>;
  /**
   * Opens a watch and calls `onEvent` for each event until the server ends the stream (resolves) or the request
   * fails (rejects with KubeApiError or a network error). Aborting `signal` resolves.
   */
  watch(path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void>;
  /** Closes pooled connections. */
  close(): void;
}

/** A KubeConfig for a kubeconfig file or for the pod's in-cluster credentials (mount-aware, see @ambit/api mounts). */
export function loadKubeConfig(connection: KubernetesConnection): KubeConfig {
  const kc = new KubeConfig();
  if (connection.kind === 'kubeconfig') {
    kc.loadFromFile(connection.path);
  } else {
    const c = connection.connection;
    kc.loadFromClusterAndUser(
      { name: 'in-cluster', server: c.server, caFile: c.caFile, skipTLSVerify: false },
      { name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: c.tokenFile } } },
    );
  }
  if (!kc.getCurrentCluster()) throw new Error('the kubeconfig has no current cluster');
  return kc;
}

export function createKubeRest(kc: KubeConfig): KubeRest {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const server = cluster.server.replace(/\/+$/, '');
  const secure = server.startsWith('https:');
  let agent: Agent | undefined;

  async function options(method: string, headers: Record<string, string>, timeoutMs: number): Promise<RequestOptions> {
    // Re-applied per request: credentials may come from a token file that rotates.
    const o: RequestOptions = { headers: { ...headers } };
    await kc.applyToHTTPSOptions(o);
    const { ca, cert, key, servername, rejectUnauthorized } = o;
    agent ??= secure ? new Agent({ keepAlive: true, maxSockets: 32, ca, cert, key, servername, ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }) }) : undefined;
    return { method, headers: o.headers, timeout: timeoutMs, ...(secure ? { agent } : {}), ...(o.auth ? { auth: o.auth } : {}) };
  }

  function url(path: string, query?: RequestOptionsLite['query']): string {
    const u = new URL(server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  function send(target: string, opts: RequestOptions, payload: string | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(target, opts, resolve);
      req.on('timeout', () => req.destroy(new Error(`${opts.method} ${target} timed out after ${opts.timeout} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async function readBody(res: IncomingMessage): Promise<string> {
    res.setEncoding('utf8');
    let text = '';
    for await (const chunk of res) text += chunk as string;
    return text;
  }

  function apiError(method: string, path: string, status: number, text: string): KubeApiError {
    let parsed: { reason?: string; message?: string } | undefined;
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    return new KubeApiError(method, path, status, parsed?.reason, parsed?.message ?? text.slice(0, 300));
  }

  const rest: KubeRest = {
    server,
    async request<T>(method: string, path: string, o: RequestOptionsLite = {}): Promise<T> {
      const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (payload !== undefined) {
        headers['Content-Type'] = o.contentType ?? 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(payload));
      }
      const res = await send(url(path, o.query), await options(method, headers, o.timeoutMs ?? 30_000), payload);
      const text = await readBody(res);
      const status = res.statusCode ?? 0;
      if (status >= 400) throw apiError(method, path, status, text);
      return (text ? JSON.parse(text) : {}) as T;
    },
    async find<T>(path: string): Promise<T | undefined> {
      try {
        return await rest.request<T>('GET', path);
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    async watch(path, query, onEvent, signal) {
      if (signal.aborted) return;
      const timeoutSeconds = Number(query.timeoutSeconds ?? 300);
      // Inactivity guard: the server sends bookmarks and closes at timeoutSeconds; silence beyond that is a dead peer.
      const opts = await options('GET', { Accept: 'application/json' }, (timeoutSeconds + 30) * 1000);
      const target = url(path, { ...query, watch: 'true', timeoutSeconds });
      let res: IncomingMessage;
      try {
        res = await new Promise<IncomingMessage>((resolve, reject) => {
          const req = (secure ? httpsRequest : httpRequest)(target, { ...opts, signal }, resolve);
          req.on('timeout', () => req.destroy(new Error(`watch ${path} silent for ${timeoutSeconds + 30} s`)));
          req.on('error', reject);
          req.end();
        });
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      const status = res.statusCode ?? 0;
      if (status >= 400) throw apiError('WATCH', path, status, await readBody(res));
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      try {
        for await (const line of lines) {
          if (!line.trim()) continue;
          onEvent(JSON.parse(line) as WatchEvent);
        }
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      } finally {
        lines.close();
        res.destroy();
      }
    },
    close() {
      agent?.destroy();
      agent = undefined;
    },
  };
  return rest;
}
