// istiod's monitoring port (15014): /metrics (Prometheus), /ready, and /debug/syncz (what every connected xDS
// client has, has ACKed and has rejected).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { XdsServer } from '../xds/xds-server.js';
import type { Readiness } from './readiness.js';

export interface MonitoringServerOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: Readiness;
  xds: Pick<XdsServer, 'connections' | 'nacks'>;
  /** Extra sections of /debug/syncz (informers, leader, queue). */
  debug?: () => Record<string, unknown>;
  logger: Logger;
}

export interface MonitoringServer {
  port: number;
  close(): Promise<void>;
}

/** /debug/syncz body: one entry per connected client with per-type ACK state, plus recent NACKs. */
export function syncz(xds: Pick<XdsServer, 'connections' | 'nacks'>): Record<string, unknown> {
  return {
    clients: xds.connections().map((c) => ({
      id: c.id,
      proxy: c.nodeId,
      caller: c.caller,
      peer: c.peer,
      connectedAt: c.connectedAt.toISOString(),
      types: Object.fromEntries(Object.entries(c.types).map(([typeUrl, t]) => [typeUrl, {
        wildcard: t.wildcard,
        subscriptions: t.subscriptions,
        acked: Object.keys(t.acked).length,
        pendingNonces: t.pendingNonces,
        synced: t.pendingNonces.length === 0 && !t.lastNack,
        ...(t.lastNack ? { lastNack: { nonce: t.lastNack.nonce, error: t.lastNack.error, at: t.lastNack.at.toISOString(), rejected: t.lastNack.rejected } } : {}),
      }])),
    })),
    nacks: xds.nacks().map((n) => ({ ...n, at: n.at.toISOString() })),
  };
}

export async function startMonitoringServer(options: MonitoringServerOptions): Promise<MonitoringServer> {
  const logger = options.logger.child({ component: 'monitoring' });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, JSON.stringify({ error: 'only GET' }));
    switch (url.pathname) {
      case '/metrics':
      case '/stats/prometheus':
        options.registry.metrics().then((text) => send(200, text, options.registry.contentType), (err: Error) => send(500, err.message, 'text/plain'));
        return;
      case '/ready':
        if (options.readiness.ready()) return send(200, 'ready\n', 'text/plain');
        return send(503, `not ready: waiting for ${options.readiness.pending().join(', ')}\n`, 'text/plain');
      case '/debug/syncz':
        return send(200, JSON.stringify({ ...syncz(options.xds), ...(options.debug?.() ?? {}) }, null, 2));
      default:
        return send(404, JSON.stringify({ error: `no such endpoint ${url.pathname}`, endpoints: ['/metrics', '/ready', '/debug/syncz'] }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${options.host}:${options.port} for monitoring: ${err.message}`, { cause: err })));
    server.listen(options.port, options.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, 'monitoring listening (/metrics, /ready, /debug/syncz)');
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
