import { X509Certificate as NodeX509 } from 'node:crypto';
import { CertificateError, IdentityMismatchError } from '@ambit/api';
import { uriSans } from './x509.js';

export interface VerifiedChain {
  /** The leaf's URI SAN (its SPIFFE identity), when it has exactly one. */
  identity: string | undefined;
  notBefore: Date;
  notAfter: Date;
}

/**
 * Verifies a chain (leaf first) up to one of the roots: each signature, each validity window at `now`, and that
 * every issuer is a CA. Synchronous (Node's X509Certificate), so it can run inside TLS callbacks.
 */
export function verifyChain(chainPem: string[], rootsPem: string[], options: { now?: Date; expectedIdentity?: string } = {}): VerifiedChain {
  if (chainPem.length === 0) throw new CertificateError('certificate chain is empty');
  const now = options.now ?? new Date();
  const chain = chainPem.map((p, i) => parse(p, `chain[${i}]`));
  const roots = rootsPem.map((p, i) => parse(p, `roots[${i}]`));
  for (const [i, c] of chain.entries()) checkValidity(c, `chain[${i}]`, now);
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    if (roots.some((r) => r.fingerprint256 === cert.fingerprint256)) break; // the root itself was included
    const issuer = chain[i + 1] ?? roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (!issuer) {
      if (i === chain.length - 1) throw new CertificateError(`chain[${i}] (issuer "${cert.issuer.replace(/\n/g, ', ')}") is not signed by any trusted root`);
      continue;
    }
    if (!issuer.ca) throw new CertificateError(`issuer of chain[${i}] is not a CA`);
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw new CertificateError(`chain[${i}] signature does not verify against its issuer`);
    }
    checkValidity(issuer, `issuer of chain[${i}]`, now);
  }
  const sans = uriSans(chain[0]!);
  const identity = sans.length === 1 ? sans[0] : undefined;
  if (options.expectedIdentity !== undefined && identity !== options.expectedIdentity) {
    throw new IdentityMismatchError(`certificate identity is ${identity ?? 'missing'}, expected ${options.expectedIdentity}`);
  }
  return { identity, notBefore: new Date(chain[0]!.validFrom), notAfter: new Date(chain[0]!.validTo) };
}

function parse(pem: string, what: string): NodeX509 {
  try {
    return new NodeX509(pem);
  } catch (err) {
    throw new CertificateError(`${what} is not a PEM certificate`, { cause: err });
  }
}

function checkValidity(c: NodeX509, what: string, now: Date): void {
  const from = new Date(c.validFrom);
  const to = new Date(c.validTo);
  if (now < from) throw new CertificateError(`${what} is not valid before ${from.toISOString()}`);
  if (now > to) throw new CertificateError(`${what} expired at ${to.toISOString()}`);
}
