import { X509Certificate as NodeX509 } from 'node:crypto';
import { CertificateError, DEFAULT_TRUST_DOMAIN, formatSpiffeId, parseSpiffeId, type SpiffeId } from '@ambit/api';
import {
  EC_P256, OID_CLIENT_AUTH, OID_SERVER_AUTH, generateKeyPair, importPrivateKeyPem, randomSerial, x509,
} from './x509.js';

export const ROOT_VALIDITY_SECONDS = 10 * 365 * 24 * 3600;
export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
/** istiod's MAX_WORKLOAD_CERT_TTL. */
export const MAX_WORKLOAD_TTL_SECONDS = 90 * 24 * 3600;

/** A private key with its certificate chain (leaf first) and the roots that verify it. */
export interface CertifiedKey {
  identity: string;
  keyPem: string;
  /** Leaf first, then intermediates; the root is not repeated here. */
  certChainPem: string[];
  rootsPem: string[];
  notBefore: Date;
  notAfter: Date;
}

export interface CreateCaOptions {
  trustDomain?: string;
  /** Organization of the root's subject; Istio uses the trust domain. */
  organization?: string;
  validitySeconds?: number;
  now?: Date;
}

export interface IssueOptions {
  ttlSeconds?: number;
  /** Defaults to now; tests use a past date to mint expired certificates. */
  notBefore?: Date;
}

/**
 * The mesh CA: a self-signed ECDSA P-256 root that signs workload certificates whose only name is a
 * SPIFFE URI SAN (empty subject, like Istio's).
 */
export class CertificateAuthority {
  private constructor(
    readonly trustDomain: string,
    readonly rootCertPem: string,
    readonly keyPem: string,
    private readonly keys: CryptoKeyPair,
    private readonly root: x509.X509Certificate,
  ) {}

  static async create(options: CreateCaOptions = {}): Promise<CertificateAuthority> {
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const { keys, keyPem } = await generateKeyPair();
    const notBefore = new Date((options.now ?? new Date()).getTime() - 60_000);
    const notAfter = new Date(notBefore.getTime() + (options.validitySeconds ?? ROOT_VALIDITY_SECONDS) * 1000);
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: [{ O: [options.organization ?? trustDomain] }],
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new CertificateAuthority(trustDomain, root.toString('pem') + '\n', keyPem, keys, root);
  }

  /** Loads a root and its key (e.g. from the controller's Secret). */
  static async load(options: { certPem: string; keyPem: string; trustDomain?: string }): Promise<CertificateAuthority> {
    const root = new x509.X509Certificate(options.certPem);
    const keys = await importPrivateKeyPem(options.keyPem);
    const node = new NodeX509(options.certPem);
    if (!node.ca) throw new CertificateError('CA certificate has basicConstraints cA=false; it cannot sign workload certificates');
    if (!node.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(options.keyPem)))) {
      throw new CertificateError('CA private key does not match the CA certificate');
    }
    return new CertificateAuthority(options.trustDomain ?? DEFAULT_TRUST_DOMAIN, root.toString('pem') + '\n', options.keyPem, keys, root);
  }

  /**
   * Signs a PKCS#10 CSR. The certificate's only name is a URI SAN: `identity` when given (the CA server passes the
   * identity it authorized, e.g. an impersonated one), else the CSR's own URI SAN, which must be a SPIFFE id of this
   * trust domain. Returns the chain leaf first, root last, as Istio's CreateCertificate does.
   */
  async signCsr(csrPem: string, options: IssueOptions & { identity?: string } = {}): Promise<string[]> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (err) {
      throw new CertificateError('CSR is not a PEM PKCS#10 request', { cause: err });
    }
    if (!(await csr.verify())) throw new CertificateError('CSR signature does not verify');
    const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
      throw new CertificateError(`CSR key is ${alg.name}${alg.namedCurve ? ' ' + alg.namedCurve : ''}; only ECDSA P-256 is accepted`);
    }
    let identity = options.identity;
    if (!identity) {
      const raw = csr.getExtension("2.5.29.17");
      const san = raw ? new x509.SubjectAlternativeNameExtension(raw.rawData) : null;
      const uris = san?.names.items.filter((n: x509.GeneralName) => n.type === 'url').map((n: x509.GeneralName) => n.value) ?? [];
      if (uris.length !== 1) throw new CertificateError(`CSR must carry exactly one URI SAN, found ${uris.length}`);
      identity = uris[0]!;
    }
    const id = parseSpiffeId(identity);
    if (!id) throw new CertificateError(`identity "${identity}" is not spiffe://<trust-domain>/ns/<ns>/sa/<sa>`);
    if (id.trustDomain !== this.trustDomain) {
      throw new CertificateError(`identity "${identity}" is not in this CA's trust domain "${this.trustDomain}"`);
    }
    const leaf = await this.issue(identity, await csr.publicKey.export(), options);
    return [leaf, this.rootCertPem];
  }

  /** Generates a key and a certificate for an identity in one step (tests, local CA mode). */
  async issueWorkloadCertificate(identity: string | SpiffeId, options: IssueOptions = {}): Promise<CertifiedKey> {
    const uri = typeof identity === 'string' ? identity : formatSpiffeId(identity);
    const { keys, keyPem } = await generateKeyPair();
    const leafPem = await this.issue(uri, keys.publicKey, options);
    const leaf = new NodeX509(leafPem);
    return {
      identity: uri,
      keyPem,
      certChainPem: [leafPem],
      rootsPem: [this.rootCertPem],
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    };
  }

  private async issue(uri: string, publicKey: CryptoKey, options: IssueOptions): Promise<string> {
    const ttl = options.ttlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    if (!(ttl > 0) || ttl > MAX_WORKLOAD_TTL_SECONDS) {
      throw new CertificateError(`requested validity ${ttl}s is outside (0, ${MAX_WORKLOAD_TTL_SECONDS}]s`);
    }
    const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
    const notAfter = new Date(notBefore.getTime() + ttl * 1000);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: [],
      issuer: this.root.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([OID_SERVER_AUTH, OID_CLIENT_AUTH]),
        // With an empty subject, RFC 5280 requires the SAN extension to be critical.
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
      ],
    });
    return cert.toString('pem') + '\n';
  }
}
