import type { SecureContextOptions } from 'node:tls';

/** TLS 1.3 only, AES-GCM suites in ztunnel's order; ChaCha20 not offered (spec §1.2). */
export const HBONE_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';
export const HBONE_ALPN = 'h2';

/** A workload's TLS material: private key, chain leaf first, and the mesh roots it trusts. */
export interface Credentials {
  identity: string;
  keyPem: string;
  certChainPem: string[];
  rootsPem: string[];
}

export function secureContextOptions(c: Credentials): SecureContextOptions {
  return {
    key: c.keyPem,
    cert: c.certChainPem.join(''),
    ca: c.rootsPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: HBONE_CIPHERS,
  };
}

/** HTTP/2 sizes from ztunnel's defaults (spec §1.3). */
export const H2_DEFAULTS = Object.freeze({
  streamWindow: 4 * 1024 * 1024,
  connectionWindow: 16 * 1024 * 1024,
  maxFrameSize: 1024 * 1024,
  clientMaxHeaderList: 16 * 1024,
  serverMaxHeaderList: 64 * 1024,
  serverMaxConcurrentStreams: 200,
  clientMaxStreamsPerConnection: 100,
  pingIntervalMs: 10_000,
  pingTimeoutMs: 20_000,
  poolIdleTimeoutMs: 5 * 60_000,
  connectTimeoutMs: 10_000,
});
