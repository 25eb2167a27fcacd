// Node net.Server / net.Socket built on sockets that live in another network namespace.
import { closeSync } from 'node:fs';
import net from 'node:net';
import { bindFd, getOriginalDst, listenInNetns, socketInNetns, type NetnsListenOptions, type NetnsSocketOptions,
  type OriginalDst } from './addon.js';

export interface ListenInNetnsOptions extends NetnsListenOptions {
  /** Netns path: /proc/PID/ns/net or /var/run/netns/NAME. */
  netns: string;
  port: number;
  /** Bind address; default the wildcard of `family` (0.0.0.0 or ::). */
  host?: string;
  /** Used only to pick the wildcard when host is not given. Default 4. */
  family?: 4 | 6;
}

export interface CreateServerInNetnsOptions extends ListenInNetnsOptions {
  /** Called for each accepted connection, as net.createServer's listener. */
  onConnection?: (socket: net.Socket) => void;
  /** Passed to net.createServer (e.g. pauseOnConnect, noDelay). */
  serverOptions?: net.ServerOpts;
}

export interface ConnectInNetnsOptions extends NetnsSocketOptions {
  netns: string;
  host: string;
  port: number;
  /** Source address to bind before connecting; a foreign address needs `transparent: true`. */
  localAddress?: string;
  localPort?: number;
}

/** The OS fd behind a connected or listening Node socket/server, for the fd-level functions of this package. */
export function getSocketFd(socket: net.Socket | net.Server): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new TypeError('socket has no OS fd (not connected, already closed, or not a TCP socket)');
  }
  return fd;
}

/** Original destination of an accepted connection that was REDIRECTed, or null if it was not NATed. */
export function getSocketOriginalDst(socket: net.Socket): OriginalDst | null {
  return getOriginalDst(getSocketFd(socket));
}

function bindHost(options: ListenInNetnsOptions): string {
  return options.host ?? (options.family === 6 ? '::' : '0.0.0.0');
}

/**
 * Makes `server` (a net.Server, or a tls / http / http2 server built on one) listen on a socket created in the
 * netns. Resolves when listening. The server owns the fd afterwards: server.close() closes it.
 */
export function listenServerInNetns(server: net.Server, options: ListenInNetnsOptions): Promise<void> {
  const { netns, port, mark, transparent, reusePort, backlog } = options;
  const fd = listenInNetns(netns, bindHost(options), port, { mark, transparent, reusePort, backlog });
  return new Promise((resolvePromise, reject) => {
    // Once listen() has the fd, Node's handle owns it and closes it on failure; closing it here as well could
    // close an unrelated fd that reused the number.
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolvePromise();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ fd });
  });
}

/** A net.Server listening inside the netns (see listenServerInNetns). */
export async function createServerInNetns(options: CreateServerInNetnsOptions): Promise<net.Server> {
  const { onConnection, serverOptions, ...listenOptions } = options;
  const server = net.createServer(serverOptions ?? {}, onConnection);
  await listenServerInNetns(server, listenOptions);
  return server;
}

/**
 * A net.Socket connecting from inside the netns (e.g. with the agent mark, or a spoofed source address). Returns
 * at once like net.connect; connection errors arrive as 'error' events. Destroying the socket closes the fd.
 */
export function connectInNetns(options: ConnectInNetnsOptions): net.Socket {
  const family = net.isIP(options.host);
  if (family === 0) throw new TypeError(`connectInNetns: host must be an IP literal, got ${options.host}`);
  const fd = socketInNetns(options.netns, family as 4 | 6, { mark: options.mark, transparent: options.transparent });
  try {
    if (options.localAddress !== undefined || options.localPort !== undefined) {
      bindFd(fd, options.localAddress ?? (family === 6 ? '::' : '0.0.0.0'), options.localPort ?? 0);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return new net.Socket({ fd }).connect(options.port, options.host);
}
