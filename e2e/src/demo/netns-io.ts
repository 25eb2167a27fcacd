// Sockets inside the topology's namespaces, from the demo process (which stays in the root netns): a loopback relay
// that makes the controller's xDS/CA port (loopback-only in embedded mode) reachable on the loopback of each node
// and waypoint namespace, and HTTP GETs to the agents' and waypoint's admin ports.
import http from 'node:http';
import type net from 'node:net';
import { connectInNetns, createServerInNetns } from '@ambit/netns';

export interface LoopbackRelay {
  /** Connections relayed so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` inside `fromNetns` and relays each connection to the same `host:port` inside `toNetns`:
 * what a ClusterIP does for istiod in a cluster, for a controller that only listens on its own loopback.
 */
export async function relayLoopback(fromNetns: string, toNetns: string, port: number, host = '127.0.0.1'): Promise<LoopbackRelay> {
  let count = 0;
  const open = new Set<net.Socket>();
  const server = await createServerInNetns({
    netns: fromNetns,
    host,
    port,
    reusePort: false,
    onConnection(down) {
      count++;
      const up = connectInNetns({ netns: toNetns, host, port });
      open.add(down);
      open.add(up);
      const done = (): void => {
        down.destroy();
        up.destroy();
        open.delete(down);
        open.delete(up);
      };
      down.on('error', done).on('close', done);
      up.on('error', done).on('close', done);
      down.pipe(up);
      up.pipe(down);
    },
  });
  return {
    get connections() {
      return count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** GET http://host:port/path from inside a netns; resolves with status and body (bounded by timeoutMs). */
export async function httpGetInNetns(netns: string, host: string, port: number, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(
      { method: 'GET', host, port, path, timeout: timeoutMs, createConnection: () => connectInNetns({ netns, host, port }) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${host}:${port}${path} in ${netns} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
