import { formatSpiffeId, type SpiffeId } from '@ambit/api';
import { EC_P256, generateKeyPair, x509 } from './x509.js';

/**
 * A CSR as ztunnel sends it to CreateCertificate: ECDSA P-256 key, empty subject, one URI SAN.
 * Returns the CSR and the new private key (which never leaves the requester).
 */
export async function createCsr(identity: string | SpiffeId): Promise<{ csrPem: string; keyPem: string }> {
  const uri = typeof identity === 'string' ? identity : formatSpiffeId(identity);
  const { keys, keyPem } = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [],
    keys,
    signingAlgorithm: EC_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true)],
  });
  return { csrPem: csr.toString('pem') + '\n', keyPem };
}
