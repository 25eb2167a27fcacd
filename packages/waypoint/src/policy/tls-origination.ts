// DestinationRule trafficPolicy.tls -> how the waypoint originates TLS upstream (Envoy UpstreamTlsContext as
// Istio builds it). SIMPLE/MUTUAL become node:tls options; ISTIO_MUTUAL and DISABLE need no extra TLS layer in
// ambient, because the hop to a mesh endpoint is already HBONE mTLS with the waypoint's identity.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import { ConfigError } from '@ambit/api';
import { DiagnosticSink } from './diagnostics.js';
import { isRecord, readStringList, warnUnknownFields } from './fields.js';

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
  if (tls === undefined || tls === null) return undefined;
  const sink = new DiagnosticSink(where.object);
  const f = where.field;
  if (!isRecord(tls)) { sink.error(f, 'must be an object'); sink.throwIfErrors(); }
  const t = tls as Record<string, any>;
  warnUnknownFields(t, ['mode', 'clientCertificate', 'privateKey', 'caCertificates', 'caCrl', 'credentialName', 'subjectAltNames', 'sni', 'insecureSkipVerify'], f, sink);
  const mode = t.mode ?? 'DISABLE';
  if (!['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'].includes(mode)) sink.error(`${f}.mode`, `must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL, got ${JSON.stringify(t.mode)}`);
  const str = (k: string): string | undefined => {
    if (t[k] === undefined || t[k] === '') return undefined;
    if (typeof t[k] !== 'string') { sink.error(`${f}.${k}`, 'must be a string'); return undefined; }
    return t[k];
  };
  const settings: TlsOriginationSettings = {
    mode,
    ...(str('clientCertificate') ? { clientCertificate: str('clientCertificate')! } : {}),
    ...(str('privateKey') ? { privateKey: str('privateKey')! } : {}),
    ...(str('caCertificates') ? { caCertificates: str('caCertificates')! } : {}),
    ...(str('caCrl') ? { caCrl: str('caCrl')! } : {}),
    ...(str('credentialName') ? { credentialName: str('credentialName')! } : {}),
    subjectAltNames: readStringList(t.subjectAltNames, `${f}.subjectAltNames`, sink),
    ...(str('sni') ? { sni: str('sni')! } : {}),
    insecureSkipVerify: t.insecureSkipVerify === true,
  };
  if (t.insecureSkipVerify !== undefined && typeof t.insecureSkipVerify !== 'boolean') sink.error(`${f}.insecureSkipVerify`, 'must be a boolean');
  if (mode === 'MUTUAL' && !settings.credentialName && !(settings.clientCertificate && settings.privateKey)) {
    sink.error(f, 'MUTUAL requires clientCertificate and privateKey, or credentialName');
  }
  if ((mode === 'ISTIO_MUTUAL' || mode === 'DISABLE') && (settings.clientCertificate || settings.privateKey || settings.caCertificates || settings.credentialName)) {
    sink.error(f, `${mode} must not set clientCertificate, privateKey, caCertificates or credentialName`);
  }
  if (settings.credentialName && (settings.clientCertificate || settings.privateKey || settings.caCertificates)) {
    sink.error(`${f}.credentialName`, 'credentialName cannot be combined with clientCertificate, privateKey or caCertificates');
  }
  sink.throwIfErrors();
  return Object.freeze(settings);
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

/**
 * The connection plan for `settings`. Server verification as Envoy: the chain against caCertificates (or the
 * credential's CA, else the system roots) unless insecureSkipVerify; the server certificate must carry one of
 * subjectAltNames when given (exact, DNS wildcards in the certificate honoured); without subjectAltNames the
 * host name is not checked (Envoy does not either). SNI: `sni`, else the request host (auto SNI), never an IP.
 * Throws ConfigError when a referenced file or credential cannot be read.
 */
export function planTlsOrigination(settings: TlsOriginationSettings | undefined, ctx: TlsOriginationContext = {}): TlsOriginationPlan {
  if (!settings || settings.mode === 'DISABLE') return { kind: 'plaintext' };
  if (settings.mode === 'ISTIO_MUTUAL') return { kind: 'hbone-mtls' };
  const read = (path: string, what: string) => {
    try { return (ctx.readFile ?? readFileSync)(path); } catch (e) {
      throw new ConfigError(`cannot read ${what} ${path} for TLS origination: ${(e as Error).message}; is the file mounted in the waypoint pod?`, { cause: e });
    }
  };
  const options: ConnectionOptions = { minVersion: 'TLSv1.2', rejectUnauthorized: !settings.insecureSkipVerify };
  if (settings.credentialName) {
    const cred = ctx.getCredential?.(settings.credentialName);
    if (!cred) throw new ConfigError(`credential ${JSON.stringify(settings.credentialName)} for TLS origination was not found; does the Secret exist in the DestinationRule's namespace?`);
    if (settings.mode === 'MUTUAL' && (!cred.cert || !cred.key)) throw new ConfigError(`credential ${JSON.stringify(settings.credentialName)} has no certificate/key for MUTUAL TLS`);
    if (settings.mode === 'MUTUAL') { options.cert = cred.cert!; options.key = cred.key!; }
    if (cred.ca) options.ca = cred.ca;
    if (cred.crl) options.crl = cred.crl;
  } else {
    if (settings.mode === 'MUTUAL') {
      options.cert = read(settings.clientCertificate!, 'clientCertificate');
      options.key = read(settings.privateKey!, 'privateKey');
    }
    if (settings.caCertificates) options.ca = read(settings.caCertificates, 'caCertificates');
    if (settings.caCrl) options.crl = read(settings.caCrl, 'caCrl');
  }
  const host = ctx.host ? stripPort(ctx.host) : undefined;
  const servername = settings.sni ?? host;
  if (servername && isIP(servername) === 0) options.servername = servername;
  const sans = settings.subjectAltNames;
  options.checkServerIdentity = (_hostname: string, cert: PeerCertificate) => {
    if (settings.insecureSkipVerify || sans.length === 0) return undefined;
    const presented = parseSubjectAltNames(cert.subjectaltname);
    if (sans.some((want) => presented.some((p) => sanMatches(p, want)))) return undefined;
    const err = new Error(`upstream certificate SANs [${presented.map((p) => p.value).join(', ')}] match none of subjectAltNames [${sans.join(', ')}]`) as Error & { code: string };
    err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
    return err;
  };
  return { kind: 'tls', options };
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const i = host.lastIndexOf(':');
  return i > 0 && host.indexOf(':') === i ? host.slice(0, i) : host;
}

/** `DNS:a.example.com, URI:spiffe://..., IP Address:10.0.0.1` -> entries. */
function parseSubjectAltNames(text: string | undefined): { type: string; value: string }[] {
  if (!text) return [];
  return text.split(/,\s*/).map((e) => {
    const i = e.indexOf(':');
    return { type: e.slice(0, i), value: e.slice(i + 1).replace(/^"|"$/g, '') };
  });
}

function sanMatches(p: { type: string; value: string }, want: string): boolean {
  if (p.value === want) return true;
  if (p.type === 'DNS' && p.value.startsWith('*.')) {
    const dot = want.indexOf('.');
    return dot > 0 && want.slice(dot).toLowerCase() === p.value.slice(1).toLowerCase();
  }
  return p.type === 'DNS' && p.value.toLowerCase() === want.toLowerCase();
}
