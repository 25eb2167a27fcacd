import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { AmbitError, ConfigError, PORTS } from '@ambit/api';
import { createLogLevels, LogLevelError, parseLogDirectives, type LogLevels } from '../telemetry/log-levels.js';
import { buildConfigDump, type ConfigDumpSources } from './config-dump.js';
import type { Readiness } from './readiness.js';

/**
 * The agent's three HTTP servers, on separate ports as in ztunnel (spec §7.3): admin (15000, localhost only:
 * config dump, log levels, shutdown), metrics (15020, for Prometheus) and readiness (15021, for the kubelet).
 * Separate ports let the pod expose metrics and readiness without exposing admin.
 */

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface AdminAddresses {
  readonly admin: string;
  readonly metrics: string;
  readonly readiness: string;
}

export const DEFAULT_ADMIN_ADDRESSES: AdminAddresses = Object.freeze({
  admin: `127.0.0.1:${PORTS.admin}`,
  metrics: `0.0.0.0:${PORTS.metrics}`,
  readiness: `0.0.0.0:${PORTS.readiness}`,
});

export interface AdminHandlerOptions extends ConfigDumpSources {
  /** The root logger; the admin's own lines go to its `admin` component. */
  readonly logger: Logger;
  /**
   * The process's log levels (telemetry/log-levels.ts), so `/logging` reaches every component's logger.
   * Without it only the root logger (and loggers made later from it) follow `/logging`.
   */
  readonly logLevels?: LogLevels;
  /** Called once after `POST /quitquitquit` has been answered. */
  readonly onQuit: () => void | Promise<void>;
}

export interface AdminServersOptions extends AdminHandlerOptions {
  readonly registry: Registry;
  readonly readiness: Readiness;
  /** `host:port` each (`[::1]:15000` for IPv6); port 0 picks a free port. Defaults: DEFAULT_ADMIN_ADDRESSES. */
  readonly addresses?: Partial<AdminAddresses>;
}

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

/** A server could not bind its address. */
export class AdminListenError extends AmbitError {
  constructor(message: string, options?: { cause?: unknown }) { super('AMB_ERR_ADMIN_LISTEN', message, options); }
}

export interface AdminServers {
  /** Starts all three; rejects (and closes any that started) if one cannot listen. */
  listen(): Promise<{ admin: BoundAddress; metrics: BoundAddress; readiness: BoundAddress }>;
  close(): Promise<void>;
}

const ENDPOINTS: ReadonlyArray<readonly [string, string]> = [
  ['/config_dump', 'dump the current configuration: workloads, services, policies, certificates, config'],
  ['/logging', 'GET: current log levels; POST ?level=<level> or ?level=<component>=<level>[,...]: change; POST ?reset=true: restore'],
  ['/quitquitquit', 'POST: shut down the agent'],
];

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The request's URL; undefined when it cannot be parsed (a throw here would escape the 'request' event). */
function urlOf(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://agent');
  } catch {
    return undefined;
  }
}

function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || /^127\./.test(a);
}

export function parseListenAddress(text: string): BoundAddress {
  const i = text.lastIndexOf(':');
  const port = Number(text.slice(i + 1));
  let host = i > 0 ? text.slice(0, i) : '';
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (i <= 0 || host === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`invalid listen address "${text}"; expected host:port, e.g. 127.0.0.1:${PORTS.admin} or [::1]:${PORTS.admin}`);
  }
  return { host, port };
}

/** The admin port's routes. Refuses non-loopback peers even when bound wider (e.g. to debug from a node). */
export function createAdminHandler(options: AdminHandlerOptions): RequestHandler {
  const levels = options.logLevels ?? createLogLevels({ root: options.logger });
  const log = levels.logger('admin');
  let quitting = false;

  const logging = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void => {
    const level = query.get('level');
    const reset = query.has('reset') && query.get('reset') !== 'false';
    const changes = level !== null || reset;
    if (req.method === 'GET' && !changes) return send(res, 200, `current log level is ${levels.describe()}\n`);
    if (req.method !== 'POST') return send(res, 405, 'use POST to change log levels\n');
    if (!changes) return send(res, 200, `current log level is ${levels.describe()}\n`);
    try {
      // Parse before touching anything, so a bad request never leaves a half-reset state.
      if (level !== null && level !== '') parseLogDirectives(level);
      if (reset) levels.reset();
      if (level !== null && level !== '') levels.apply(level);
    } catch (err) {
      if (err instanceof LogLevelError) return send(res, 400, `${err.message}\n`);
      throw err;
    }
    log.info({ levels: levels.describe() }, 'log levels changed');
    return send(res, 200, `current log level is ${levels.describe()}\n`);
  };

  const quit = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST') return send(res, 405, 'use POST to shut down\n');
    send(res, 200, 'shutdown now\n');
    if (quitting) return;
    quitting = true;
    log.info('shutdown requested through /quitquitquit');
    // After the answer is written: shutdown closes this server too.
    res.once('finish', () => {
      Promise.resolve()
        .then(() => options.onQuit())
        .catch((err: unknown) => log.error({ err }, 'shutdown from /quitquitquit failed'));
    });
  };

  return (req, res) => {
    if (!isLoopback(req.socket.remoteAddress)) {
      return send(res, 403, 'the admin endpoint only answers requests from localhost\n');
    }
    const url = urlOf(req);
    if (!url) return send(res, 400, 'bad request target\n');
    try {
      switch (url.pathname) {
        case '/':
          return send(res, 200, ENDPOINTS.map(([p, d]) => `${p}\t${d}`).join('\n') + '\n');
        case '/config_dump':
          if (req.method !== 'GET') return send(res, 405, 'use GET\n');
          return send(res, 200, JSON.stringify(buildConfigDump(options), null, 2) + '\n', 'application/json');
        case '/logging':
          return logging(req, res, url.searchParams);
        case '/quitquitquit':
          return quit(req, res);
        default:
          return send(res, 404, `no such endpoint ${url.pathname}; GET / lists them\n`);
      }
    } catch (err) {
      log.error({ err, path: url.pathname }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    }
  };
}

/** `/metrics` and `/stats/prometheus` (the path Istio's scrape annotations use): the registry's exposition. */
export function createMetricsHandler(registry: Registry, logger?: Logger): RequestHandler {
  return (req, res) => {
    const path = urlOf(req)?.pathname;
    if (path !== '/metrics' && path !== '/stats/prometheus') return send(res, 404, 'not found; scrape /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'use GET\n');
    registry.metrics().then(
      (body) => send(res, 200, body, registry.contentType),
      (err: unknown) => {
        logger?.error({ err }, 'collecting metrics failed');
        send(res, 500, 'collecting metrics failed\n');
      },
    );
  };
}

/** `/healthz/ready`: 200 `ready`, or 503 naming the pending tasks. */
export function createReadinessHandler(readiness: Readiness): RequestHandler {
  return (req, res) => {
    const path = urlOf(req)?.pathname;
    if (path !== '/healthz/ready') return send(res, 404, 'not found; probe /healthz/ready\n');
    const pending = readiness.pending();
    if (pending.length === 0) return send(res, 200, 'ready\n');
    return send(res, 503, `not ready, pending: ${pending.join(', ')}\n`);
  };
}

function listen(server: Server, name: string, at: BoundAddress): Promise<BoundAddress> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const hint = err.code === 'EADDRINUSE' ? '; is another agent (or ztunnel) running on this node?' : '';
      reject(new AdminListenError(`${name} server cannot listen on ${at.host}:${at.port}: ${err.message}${hint}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Scrapers and probes keep connections alive; they must not hold shutdown open.
    server.closeAllConnections();
  });
}

export function createAdminServers(options: AdminServersOptions): AdminServers {
  const addresses = { ...DEFAULT_ADMIN_ADDRESSES, ...options.addresses };
  const logLevels = options.logLevels ?? createLogLevels({ root: options.logger });
  const log = logLevels.logger('admin');
  const servers = {
    admin: createServer(createAdminHandler({ ...options, logLevels })),
    metrics: createServer(createMetricsHandler(options.registry, log)),
    readiness: createServer(createReadinessHandler(options.readiness)),
  };
  const close = async (): Promise<void> => {
    await Promise.all(Object.values(servers).map(closeServer));
  };
  return {
    async listen() {
      // Parse all three first: a bad address must fail before anything is bound.
      const at = {
        admin: parseListenAddress(addresses.admin),
        metrics: parseListenAddress(addresses.metrics),
        readiness: parseListenAddress(addresses.readiness),
      };
      // allSettled, not all: when one fails, the others must have finished binding before they are closed.
      const [admin, metrics, readiness] = await Promise.allSettled([
        listen(servers.admin, 'admin', at.admin),
        listen(servers.metrics, 'metrics', at.metrics),
        listen(servers.readiness, 'readiness', at.readiness),
      ]);
      if (admin.status === 'fulfilled' && metrics.status === 'fulfilled' && readiness.status === 'fulfilled') {
        const bound = { admin: admin.value, metrics: metrics.value, readiness: readiness.value };
        log.info(bound, 'admin, metrics and readiness servers listening');
        return bound;
      }
      await close();
      const failed = [admin, metrics, readiness].find((r): r is PromiseRejectedResult => r.status === 'rejected');
      throw failed!.reason;
    },
    close,
  };
}
