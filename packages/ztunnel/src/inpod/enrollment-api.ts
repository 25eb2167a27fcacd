import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, lstat, mkdir, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_CNI_SOCKET_PATH, PODS_PATH, type ErrorResponse, type PodSpec } from './enrollment-contract.js';
import type { PodEnrollment } from './pod-enrollment.js';
import { EnrollmentError, validatePodSpec } from './pod-spec.js';

export type {
  PodSpec, CaptureOutcome, AddPodResponse, DeletePodResponse, PodStatus, ListPodsResponse, ErrorResponse,
} from './enrollment-contract.js';
export { DEFAULT_CNI_SOCKET_PATH, DEFAULT_POD_SNAPSHOT_PATH, PODS_PATH } from './enrollment-contract.js';
export { EnrollmentError, validatePodSpec, type PodCapturer } from './pod-spec.js';

/**
 * The agent side of pod enrollment: HTTP/1.1 on a unix socket that only root on the node can reach (the socket's
 * directory is 0700), called by the chained CNI plugin. The contract is in enrollment-contract.ts.
 */
export interface EnrollmentServer {
  readonly socketPath: string;
  listen(): Promise<void>;
  /** Stops accepting, waits for requests in flight, and removes the socket file if it is still ours. */
  close(): Promise<void>;
}

export interface EnrollmentServerOptions {
  /** Default /var/run/ambit/cni.sock. */
  socketPath?: string;
  enrollment: PodEnrollment;
  logger: Logger;
  /** Largest accepted request body; a pod spec with labels and annotations is a few KiB. */
  maxBodyBytes?: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) { super(message); }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, `request body larger than ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function createEnrollmentServer(options: EnrollmentServerOptions): EnrollmentServer {
  const socketPath = options.socketPath ?? DEFAULT_CNI_SOCKET_PATH;
  const { enrollment } = options;
  const log = options.logger.child({ component: 'enrollment-api' });
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  let server: Server | undefined;
  let socketIno: bigint | undefined;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const path = url.pathname.replace(/\/+$/, '');
    if (path === PODS_PATH) {
      if (req.method === 'POST') {
        const text = await readBody(req, maxBodyBytes);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch (err) {
          throw new EnrollmentError(`invalid pod: the request body is not JSON (${(err as Error).message})`, { status: 400 });
        }
        const pod: PodSpec = validatePodSpec(body);
        send(res, 200, await enrollment.enroll(pod));
        return;
      }
      if (req.method === 'GET') {
        send(res, 200, { pods: enrollment.list() });
        return;
      }
      throw new HttpError(405, `${req.method ?? ''} ${PODS_PATH} is not allowed; use POST or GET`, { allow: 'GET, POST' });
    }
    if (path.startsWith(PODS_PATH + '/')) {
      let uid: string;
      try {
        uid = decodeURIComponent(path.slice(PODS_PATH.length + 1));
      } catch {
        throw new HttpError(400, 'the pod uid in the path is not valid percent-encoding');
      }
      if (uid === '' || uid.includes('/')) throw new HttpError(404, `no such resource: ${url.pathname}`);
      if (req.method === 'DELETE') {
        send(res, 200, { released: true, ...(await enrollment.release(uid)) });
        return;
      }
      if (req.method === 'GET') {
        const status = enrollment.status(uid);
        if (!status) {
          send(res, 404, { error: `pod ${uid} is not enrolled on this node` } satisfies ErrorResponse);
          return;
        }
        send(res, 200, status);
        return;
      }
      throw new HttpError(405, `${req.method ?? ''} ${PODS_PATH}/:uid is not allowed; use GET or DELETE`, { allow: 'GET, DELETE' });
    }
    throw new HttpError(404, `no such resource: ${url.pathname}; the enrollment API serves ${PODS_PATH}`);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) { res.destroy(); return; }
      if (err instanceof EnrollmentError) {
        const body: ErrorResponse = { error: err.message, code: err.code };
        if (err.field !== undefined) body.field = err.field;
        if (err.status === 400) log.warn({ method: req.method, url: req.url, field: err.field }, err.message);
        send(res, err.status, body);
      } else if (err instanceof HttpError) {
        send(res, err.status, { error: err.message } satisfies ErrorResponse, err.headers);
      } else {
        log.error({ err, method: req.method, url: req.url }, 'enrollment request failed');
        send(res, 500, { error: err instanceof Error ? err.message : String(err) } satisfies ErrorResponse);
      }
    });
  }

  return {
    socketPath,
    async listen() {
      const dir = dirname(socketPath);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const dirMode = (await lstat(dir)).mode & 0o777;
      if ((dirMode & 0o077) !== 0) {
        log.warn({ dir, mode: dirMode.toString(8) }, `socket directory ${dir} is reachable by non-root users; only root should be able to enroll pods`);
      }
      // A socket left by a previous agent (crash or upgrade) must be replaced, but anything else at that path is
      // someone else's file.
      let stale = false;
      try {
        const st = await lstat(socketPath);
        stale = true;
        if (!st.isSocket()) throw new EnrollmentError(`${socketPath} exists and is not a socket; refusing to replace it`, { status: 500 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      // Bind a private name, then rename it over the public one. rename() replaces a stale socket atomically, so
      // the plugin never sees a missing socket during an upgrade; and libuv unlinks the name a server was bound to
      // when it closes, so an old agent shutting down after us removes its private name, not our socket.
      const bindPath = `${socketPath}.${process.pid}.${Date.now().toString(36)}`;
      const s = createServer(handle);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(bindPath, () => { s.off('error', reject); resolve(); });
      });
      try {
        await chmod(bindPath, 0o600);
        await rename(bindPath, socketPath);
        socketIno = (await lstat(socketPath, { bigint: true })).ino;
      } catch (err) {
        s.close();
        throw err;
      }
      server = s;
      log.info({ socketPath, replacedStaleSocket: stale }, 'enrollment API listening');
    },
    async close() {
      const s = server;
      if (!s) return;
      server = undefined;
      s.closeIdleConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
      // Only remove the public name if it is still our socket: after an upgrade it belongs to the new agent.
      try {
        const st = await lstat(socketPath, { bigint: true });
        if (st.ino === socketIno) await unlink(socketPath);
      } catch { /* already gone */ }
    },
  };
}
