import type { ConnectionOptions } from 'node:tls';

/** DestinationRule `trafficPolicy.tls`, validated. */
export interface TlsOriginationSettings {
  readonly mode: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly caCrl?: string;
  readonly credentialName?: string;
  readonly subjectAltNames: readonly string[];
  readonly sni?: string;
  readonly insecureSkipVerify: boolean;
}

/** Validates `tls` (undefined: undefined). Throws PolicyConfigError naming the field. */
export function compileTlsOrigination(tls: unknown, where: { readonly object: string; readonly field: string }): TlsOriginationSettings | undefined {
  void tls; void where;
  throw new Error('compileTlsOrigination: implementation lands in the next commit');
}

/** Key material of a `credentialName` Secret (tls.crt/tls.key/ca.crt or cert/key/cacert), PEM. */
export interface TlsCredential {
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly ca?: string | Buffer;
  readonly crl?: string | Buffer;
}

export interface TlsOriginationContext {
  /** The request's host (auto SNI when `sni` is unset, as Istio's ENABLE_AUTO_SNI). */
  readonly host?: string;
  /** Reads file paths (clientCertificate, privateKey, caCertificates, caCrl). Default fs.readFileSync. */
  readonly readFile?: (path: string) => Buffer | string;
  /** Looks up `credentialName` (in the DestinationRule's namespace). */
  readonly getCredential?: (name: string) => TlsCredential | undefined;
}

/**
 * What the upstream connection does:
 * - `plaintext`: DISABLE (or no tls block). Inside the HBONE tunnel the bytes are still protected by HBONE mTLS.
 * - `hbone-mtls`: ISTIO_MUTUAL. In ambient the waypoint always reaches mesh endpoints over HBONE with its own
 *   workload certificate, which is what ISTIO_MUTUAL asks for; no extra TLS layer is added.
 * - `tls`: SIMPLE/MUTUAL; pass `options` to tls.connect (over the tunnel stream or a direct socket).
 */
export type TlsOriginationPlan =
  | { readonly kind: 'plaintext' }
  | { readonly kind: 'hbone-mtls' }
  | { readonly kind: 'tls'; readonly options: ConnectionOptions };

/** Throws ConfigError when a referenced file or credential cannot be read. */
export function planTlsOrigination(settings: TlsOriginationSettings | undefined, ctx?: TlsOriginationContext): TlsOriginationPlan {
  void settings; void ctx;
  throw new Error('planTlsOrigination: implementation lands in the next commit');
}
