// Typed access to the native addon (native/netns.c). The addon is loaded on first use, so that importing the
// package for its pure parts (rule generation) works on a machine where the addon was not built.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmbitError } from '@ambit/api';

/** The original destination of a REDIRECTed connection (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). */
export interface OriginalDst {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** Options for a socket made inside another network namespace. */
export interface NetnsSocketOptions {
  /** SO_MARK; the agent uses AGENT_SOCKET_MARK (0x539) so the pod's redirection rules skip its sockets. */
  mark?: number;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: accept TPROXYed connections, or bind a non-local source address. */
  transparent?: boolean;
}

export interface NetnsListenOptions extends NetnsSocketOptions {
  /** SO_REUSEPORT so a second agent process can bind the same port during an upgrade. Default true. */
  reusePort?: boolean;
  /** listen() backlog. Default 511, as Node. */
  backlog?: number;
}

/** 4 or 6, as Node's net.isIP returns, or the strings the addon takes. */
export type IpFamily = 4 | 6 | '4' | '6';

interface NativeAddon {
  getOriginalDst(fd: number): OriginalDst | null;
  setMark(fd: number, mark: number): void;
  getMark(fd: number): number;
  setTransparent(fd: number, on: boolean): void;
  setReusePort(fd: number, on: boolean): void;
  listenInNetns(nsPath: string, ip: string, port: number, options?: NetnsListenOptions): number;
  socketInNetns(nsPath: string, family: '4' | '6', options?: NetnsSocketOptions): number;
  bindFd(fd: number, ip: string, port: number): void;
}

/** The native addon is missing or failed to load. */
export class AddonLoadError extends AmbitError {
  constructor(message: string, options?: { cause?: unknown }) { super('AMB_ERR_NETNS_ADDON', message, options); }
}

/**
 * The package root holds build/Release/netns.node. This file runs from src/ (tsx) or dist/src/ (compiled), so
 * walk up to the directory whose package.json is ours rather than hard-coding the depth.
 */
function findAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'build', 'Release', 'netns.node');
    if (existsSync(candidate) || existsSync(join(dir, 'binding.gyp'))) return candidate;
    dir = resolve(dir, '..');
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'netns.node');
}

let native: NativeAddon | undefined;

/** Loads the addon once; throws AddonLoadError naming the path and the command that builds it. */
export function loadAddon(): NativeAddon {
  if (native) return native;
  const path = findAddonPath();
  if (!existsSync(path)) {
    throw new AddonLoadError(`netns addon not found at ${path}; build it with \`npm run build:addon -w @ambit/netns\` ` +
      '(needs a C compiler and the Node headers)');
  }
  try {
    native = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new AddonLoadError(`netns addon at ${path} failed to load: ${(cause as Error).message}`, { cause });
  }
  return native;
}

function toFamilyString(family: IpFamily): '4' | '6' {
  const f = String(family);
  if (f !== '4' && f !== '6') throw new TypeError(`family must be 4 or 6, got ${String(family)}`);
  return f;
}

/**
 * Original destination of a connection captured by a nat REDIRECT, or null when it was not NATed (no conntrack
 * entry). A conntracked connection that was not NATed returns its own local address.
 */
export function getOriginalDst(fd: number): OriginalDst | null {
  return loadAddon().getOriginalDst(fd);
}

/** Sets SO_MARK (needs CAP_NET_ADMIN). */
export function setMark(fd: number, mark: number): void {
  loadAddon().setMark(fd, mark);
}

export function getMark(fd: number): number {
  return loadAddon().getMark(fd);
}

/** Sets IP_TRANSPARENT or IPV6_TRANSPARENT by the socket's family (needs CAP_NET_ADMIN). */
export function setTransparent(fd: number, on = true): void {
  loadAddon().setTransparent(fd, on);
}

export function setReusePort(fd: number, on = true): void {
  loadAddon().setReusePort(fd, on);
}

/**
 * A listening, non-blocking TCP socket created inside the network namespace at nsPath (/proc/PID/ns/net or
 * /var/run/netns/NAME). The caller owns the fd: hand it to `server.listen({fd})` or close it.
 */
export function listenInNetns(nsPath: string, ip: string, port: number, options: NetnsListenOptions = {}): number {
  return loadAddon().listenInNetns(nsPath, ip, port, { ...options, reusePort: options.reusePort ?? true });
}

/** An unconnected, non-blocking TCP socket inside the netns at nsPath, for `new net.Socket({fd}).connect()`. */
export function socketInNetns(nsPath: string, family: IpFamily, options: NetnsSocketOptions = {}): number {
  return loadAddon().socketInNetns(nsPath, toFamilyString(family), options);
}

/** Binds fd to ip:port before connect; a non-local ip needs IP_TRANSPARENT on the socket (source preservation). */
export function bindFd(fd: number, ip: string, port = 0): void {
  loadAddon().bindFd(fd, ip, port);
}
