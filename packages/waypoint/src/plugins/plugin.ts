// The waypoint's extension point (documented in the package README). A plugin sees each request after the target
// service is known and before routing, and each response before it is sent downstream. It may change headers or
// answer the request itself.
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { AmbitError } from '@ambit/api';
import type { HeaderMap } from '../proxy/headers.js';

export interface PluginRequest {
  readonly method: string;
  /** Path with query, as received. */
  readonly path: string;
  readonly authority: string;
  /** Lower-case names; changes are forwarded upstream. */
  readonly headers: HeaderMap;
  /** Destination service FQDN, undefined for workload-addressed traffic. */
  readonly service: string | undefined;
  /** Verified SPIFFE identity of the source (through HBONE mTLS). */
  readonly sourcePrincipal: string | undefined;
  readonly requestId: string;
}

export interface PluginResponse {
  readonly status: number;
  /** Lower-case names; changes are sent downstream. */
  readonly headers: HeaderMap;
  readonly request: PluginRequest;
}

/** A reply the plugin sends instead of routing the request. */
export interface LocalReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface WaypointPlugin {
  readonly name: string;
  /** Return a LocalReply to answer without routing; return nothing to continue. May be async. */
  onRequest?(req: PluginRequest): LocalReply | void | Promise<LocalReply | void>;
  onResponse?(res: PluginResponse): void | Promise<void>;
}

export class PluginError extends AmbitError {
  constructor(message: string, options?: { cause?: unknown }) { super('AMB_ERR_PLUGIN', message, options); }
}

function isPlugin(p: unknown): p is WaypointPlugin {
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  return typeof o.name === 'string' && (o.onRequest === undefined || typeof o.onRequest === 'function') && (o.onResponse === undefined || typeof o.onResponse === 'function');
}

/**
 * Loads a plugin module: its default export is a WaypointPlugin, or a factory `() => WaypointPlugin` (sync or async).
 * Relative paths are resolved from the working directory.
 */
export async function loadPlugin(path: string): Promise<WaypointPlugin> {
  const url = path.startsWith('file:') ? path : pathToFileURL(isAbsolute(path) ? path : resolve(path)).href;
  let mod: { default?: unknown };
  try {
    mod = await import(url) as { default?: unknown };
  } catch (err) {
    throw new PluginError(`cannot load waypoint plugin ${path}: ${(err as Error).message}`, { cause: err });
  }
  let candidate = mod.default;
  if (typeof candidate === 'function') candidate = await (candidate as () => unknown)();
  if (!isPlugin(candidate)) {
    throw new PluginError(`waypoint plugin ${path}: the default export must be a WaypointPlugin ({name, onRequest?, onResponse?}) or a function returning one`);
  }
  return candidate;
}
