// X.509 with ECDSA P-256 through @peculiar/x509 over Node's WebCrypto (node-forge signs only RSA; Istio's keys
// are ECDSA P-256). Generation is async (WebCrypto); inspection and verification use Node's synchronous
// crypto.X509Certificate so that TLS callbacks can call them.
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata polyfill.
import 'reflect-metadata';
import { webcrypto, X509Certificate as NodeX509, createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CertificateError } from '@ambit/api';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export const EC_P256 = Object.freeze({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' });
export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface KeyPair {
  keys: CryptoKeyPair;
  /** PKCS#8 PEM of the private key, as Node's tls module takes it. */
  keyPem: string;
}

export async function generateKeyPair(): Promise<KeyPair> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  return { keys, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as unknown as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function importPrivateKeyPem(pem: string): Promise<CryptoKeyPair> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new CertificateError('private key PEM holds no key');
  const privateKey = (await webcrypto.subtle.importKey('pkcs8', der, EC_P256, true, ['sign'])) as unknown as CryptoKey;
  const spki = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  const publicKey = (await webcrypto.subtle.importKey('spki', spki, EC_P256, true, ['verify'])) as unknown as CryptoKey;
  return { privateKey, publicKey };
}

/** A positive random 128-bit serial number, hex. */
export function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f;
  if (b[0] === 0) b[0] = 1;
  return Buffer.from(b).toString('hex');
}

/** Splits a PEM bundle into its certificates, in order. */
export function splitPemBundle(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => c + '\n') ?? [];
}

/** The URI SANs of a certificate (PEM or Node's parsed form). */
export function uriSans(cert: string | NodeX509): string[] {
  const c = typeof cert === 'string' ? new NodeX509(cert) : cert;
  return parseUriSans(c.subjectAltName ?? '');
}

/**
 * Node renders SANs as `URI:spiffe://..., DNS:x`; values containing commas or quotes are JSON-quoted.
 * This is the string `tls.getPeerCertificate().subjectaltname` carries too.
 */
export function parseUriSans(subjectAltName: string): string[] {
  const out: string[] = [];
  const re = /URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const m of subjectAltName.matchAll(re)) {
    const v = m[1]!;
    out.push(v.startsWith('"') ? (JSON.parse(v) as string) : v.trim());
  }
  return out;
}

export { x509, NodeX509 };
