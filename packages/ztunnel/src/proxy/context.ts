import type { Logger } from 'pino';
import type { HboneClient } from '@ambit/hbone';
import type { Config } from '../config/load.js';
import type { SecretManager } from '../identity/secret-manager.js';
import type { ProxyState } from '../state/store.js';
import type { ConnectionTelemetry } from '../telemetry/connection-result.js';
import type { ConnectionTracker } from './connections.js';

/** What every listener needs, built once by app.ts (ztunnel's ProxyInputs). */
export interface ProxyInputs {
  config: Readonly<Config>;
  state: ProxyState;
  secrets: SecretManager;
  telemetry: ConnectionTelemetry;
  connections: ConnectionTracker;
  logger: Logger;
}

/** A captured pod as the proxy sees it. */
export interface ProxyPod {
  uid: string;
  name: string;
  namespace: string;
  serviceAccount: string;
  /** SPIFFE identity the pod's connections present. */
  identity: string;
  netns: string;
  ips: string[];
}

/** Per-pod pieces shared by the pod's listeners. */
export interface PodContext {
  inputs: ProxyInputs;
  pod: ProxyPod;
  /** The pod's own HBONE pool (ztunnel keeps one pool per pod): sockets come from the pod's netns. */
  client: HboneClient;
  logger: Logger;
}

export const noop = (): void => {};

export function addressText(host: string | undefined, port: number | undefined): string {
  const h = (host ?? 'unknown').replace(/^::ffff:/, '');
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? 0}`;
}

export function plainIp(ip: string | undefined): string {
  return (ip ?? '').replace(/^::ffff:/, '');
}
