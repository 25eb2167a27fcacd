// Ordinary TLS certificates (subject CN/O, DNS and IP SANs, server/client EKU) for components that authenticate
// by name rather than by SPIFFE identity: a Kubernetes control plane reads the user from the client certificate's
// CN and the groups from its O values, and clients verify the apiserver by DNS name or IP. The mesh CA in ca.ts
// only issues URI-SAN workload certificates, so it cannot serve here; it can still act as the issuer.
//
// Keys are ECDSA P-256 (PKCS#8 PEM), like the rest of the package; Go's crypto/tls and Kubernetes' keyutil read
// PKCS#8. Service-account signing keys are made with node:crypto because kube-apiserver wants a plain PEM key
// file and RSA is the algorithm every token verifier accepts.
import { generateKeyPairSync } from 'node:crypto';
import { isIP as isIpAddress } from 'node:net';
import { CertificateError } from '@ambit/api';
import type { CertificateAuthority } from './ca.js';
import { EC_P256, OID_CLIENT_AUTH, OID_SERVER_AUTH, generateKeyPair, importPrivateKeyPem, randomSerial, x509 } from './x509.js';

/** A certificate and its private key, both PEM. */
export interface TlsKeyPair {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export type TlsUsage = 'server' | 'client';

export interface TlsCertificateOptions {
  commonName: string;
  /** Subject O values; Kubernetes reads them as the client's groups (e.g. `system:masters`). */
  organizations?: readonly string[];
  dnsNames?: readonly string[];
  /** IPv4 or IPv6 literals. */
  ipAddresses?: readonly string[];
  /** Extended key usages: `server` (serverAuth) and/or `client` (clientAuth). At least one. */
  usages: readonly TlsUsage[];
  /** Valid until now + ttlSeconds (or notBefore + ttlSeconds when notBefore is given). */
  ttlSeconds: number;
  /** Defaults to one minute ago (tolerates clock skew between processes); tests pass a past date for expired certs. */
  notBefore?: Date;
}

export interface CreateTlsCaOptions {
  commonName: string;
  organizations?: readonly string[];
  /** Default ten years. */
  validitySeconds?: number;
}

const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;

function subjectName(commonName: string, organizations: readonly string[] = []): x509.JsonName {
  // One attribute per RDN: multi-valued RDNs are legal but some parsers keep only the first value.
  return [...organizations.map((o) => ({ O: [o] })), { CN: [commonName] }];
}

function validityWindow(ttlSeconds: number, notBefore?: Date): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new CertificateError(`certificate validity must be a positive number of seconds, got ${ttlSeconds}`);
  }
  if (notBefore) return { notBefore, notAfter: new Date(notBefore.getTime() + ttlSeconds * 1000) };
  // Backdated a minute so that a process whose clock is slightly behind ours does not see a not-yet-valid
  // certificate; the lifetime still counts from now, so a 60 s certificate is usable for 60 s.
  const now = Date.now();
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + ttlSeconds * 1000) };
}

/** A self-signed ECDSA P-256 CA with a subject of its own (e.g. CN=kubernetes-ca), for TLS certificates. */
export async function createTlsCa(options: CreateTlsCaOptions): Promise<TlsKeyPair> {
  if (!options.commonName) throw new CertificateError('a CA needs a common name');
  const { keys, keyPem } = await generateKeyPair();
  const { notBefore, notAfter } = validityWindow(options.validitySeconds ?? TEN_YEARS_SECONDS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subjectName(options.commonName, options.organizations),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem };
}

/**
 * Issues a TLS certificate with a fresh ECDSA P-256 key, signed by `ca` (the mesh CertificateAuthority or any
 * EC P-256 CA given as PEM). The leaf carries the subject, SANs and EKUs asked for, and nothing else.
 */
export async function issueTlsCertificate(
  ca: CertificateAuthority | TlsKeyPair,
  options: TlsCertificateOptions,
): Promise<TlsKeyPair> {
  if (!options.commonName) throw new CertificateError('a TLS certificate needs a common name');
  if (options.usages.length === 0) throw new CertificateError('a TLS certificate needs at least one usage (server or client)');
  for (const u of options.usages) {
    if (u !== 'server' && u !== 'client') throw new CertificateError(`unknown certificate usage "${String(u)}"; use server or client`);
  }
  for (const ip of options.ipAddresses ?? []) {
    if (isIpAddress(ip) === 0) throw new CertificateError(`"${ip}" is not an IP address`);
  }
  for (const name of options.dnsNames ?? []) {
    if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(name)) {
      throw new CertificateError(`"${name}" is not a DNS name`);
    }
  }
  const { notBefore, notAfter } = validityWindow(options.ttlSeconds, options.notBefore);

  const caCertPem = 'rootCertPem' in ca ? ca.rootCertPem : ca.certPem;
  let caCert: x509.X509Certificate;
  try {
    caCert = new x509.X509Certificate(caCertPem);
  } catch (err) {
    throw new CertificateError('CA certificate is not a PEM X.509 certificate', { cause: err });
  }
  const caKeys = await importPrivateKeyPem(ca.keyPem);
  if (notAfter > caCert.notAfter) {
    throw new CertificateError(`requested validity ends ${notAfter.toISOString()}, after the CA's (${caCert.notAfter.toISOString()})`);
  }

  const sans: x509.JsonGeneralName[] = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const eku = options.usages.map((u) => (u === 'server' ? OID_SERVER_AUTH : OID_CLIENT_AUTH));
  const { keys, keyPem } = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: subjectName(options.commonName, options.organizations),
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // ECDSA keys sign; they never encipher, so digitalSignature is the one usage that applies.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(eku),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem };
}

export interface ServiceAccountKeyPair {
  /** SPKI PEM, for kube-apiserver --service-account-key-file (token verification). */
  publicKeyPem: string;
  /** PKCS#8 PEM, for --service-account-signing-key-file and the controller-manager's token controller. */
  privateKeyPem: string;
}

/** A key pair for signing service-account tokens: RSA 2048 (RS256, the default) or ECDSA P-256 (ES256). */
export function generateServiceAccountKeyPair(options: { algorithm?: 'rsa' | 'ec' } = {}): ServiceAccountKeyPair {
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const;
  const { publicKey, privateKey } =
    (options.algorithm ?? 'rsa') === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding, privateKeyEncoding })
      : generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding, privateKeyEncoding });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}
