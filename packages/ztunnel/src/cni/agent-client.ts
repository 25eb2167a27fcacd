import { request } from 'node:http';
import { PODS_PATH, type AddPodResponse, type DeletePodResponse, type ErrorResponse, type PodSpec, type PodStatus } from '../inpod/enrollment-contract.js';

/**
 * The plugin's side of the enrollment API: one HTTP request per call over the agent's unix socket, bounded by a
 * deadline. Only node:http, so the plugin stays fast to start.
 */
export interface AgentClient {
  readonly socketPath: string;
  addPod(pod: PodSpec): Promise<AddPodResponse>;
  deletePod(uid: string): Promise<DeletePodResponse>;
  /** Undefined when the agent does not know the pod (404). */
  getPod(uid: string): Promise<PodStatus | undefined>;
}

export type AgentCallFailure = 'unreachable' | 'timeout' | 'refused' | 'protocol';

/** Why a call to the agent failed, worded for the CNI error the runtime shows in `kubectl describe pod`. */
export class AgentCallError extends Error {
  constructor(
    readonly kind: AgentCallFailure,
    message: string,
    readonly detail: { status?: number; errno?: string; agentCode?: string } = {},
  ) { super(message); }
}

export interface AgentClientOptions {
  socketPath: string;
  timeoutMs: number;
}

interface RawResponse { status: number; body: unknown }

export function createAgentClient(options: AgentClientOptions): AgentClient {
  const { socketPath, timeoutMs } = options;
  const where = `agent at ${socketPath}`;

  function call(method: string, path: string, payload?: unknown): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const body = payload === undefined ? undefined : JSON.stringify(payload);
      const headers: Record<string, string | number> = { accept: 'application/json' };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      let settled = false;
      const finish = (fn: () => void) => { if (!settled) { settled = true; clearTimeout(timer); fn(); } };
      const req = request({ socketPath, method, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish(() => reject(new AgentCallError('protocol', `${where} broke off its answer: ${err.message}`))));
        res.on('end', () => finish(() => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            reject(new AgentCallError('protocol', `${where} answered ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`, { status: res.statusCode }));
            return;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        }));
      });
      // One deadline for connect, request and answer: the runtime's own CNI timeout must not fire first.
      const timer = setTimeout(() => {
        finish(() => reject(new AgentCallError('timeout', `${where} did not answer within ${timeoutMs / 1000}s; is the node agent overloaded or stuck?`)));
        req.destroy();
      }, timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => finish(() => {
        const errno = err.code ?? 'error';
        const hint = errno === 'EACCES' || errno === 'EPERM'
          ? 'the CNI plugin must run as root'
          : 'is the ambit node agent running on this node?';
        reject(new AgentCallError('unreachable', `${where} unreachable (${errno}): ${hint}`, { errno }));
      }));
      req.end(body);
    });
  }

  function refusal(r: RawResponse): AgentCallError {
    const e = (r.body ?? {}) as Partial<ErrorResponse>;
    const reason = typeof e.error === 'string' ? e.error : `HTTP ${r.status}`;
    const detail: { status: number; agentCode?: string } = { status: r.status };
    if (typeof e.code === 'string') detail.agentCode = e.code;
    return new AgentCallError('refused', `${where} answered ${r.status}: ${reason}`, detail);
  }

  return {
    socketPath,
    async addPod(pod) {
      const r = await call('POST', PODS_PATH, pod);
      if (r.status !== 200) throw refusal(r);
      const b = r.body as Partial<{ captured: unknown; reason: unknown }> | undefined;
      if (b?.captured === true) return { captured: true };
      if (b?.captured === false) return { captured: false, reason: typeof b.reason === 'string' ? b.reason : 'not given' };
      throw new AgentCallError('protocol', `${where} answered 200 without a capture outcome: ${JSON.stringify(r.body)}`);
    },
    async deletePod(uid) {
      const r = await call('DELETE', `${PODS_PATH}/${encodeURIComponent(uid)}`);
      if (r.status !== 200) throw refusal(r);
      return r.body as DeletePodResponse;
    },
    async getPod(uid) {
      const r = await call('GET', `${PODS_PATH}/${encodeURIComponent(uid)}`);
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw refusal(r);
      const b = r.body as Partial<PodStatus> | undefined;
      if (typeof b?.captured !== 'boolean' || (b.outcome !== 'captured' && b.outcome !== 'declined')) {
        throw new AgentCallError('protocol', `${where} answered 200 without a pod status: ${JSON.stringify(r.body)}`);
      }
      return b as PodStatus;
    },
  };
}
