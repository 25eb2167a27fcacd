import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { CertificateError, IdentityMismatchError } from '@ambit/api';
import { CertificateAuthority, CertificateRotator, verifyChain, type CertifiedKey } from '@ambit/pki';
import type { Credentials } from '@ambit/hbone';

/** Where workload certificates come from: the controller's CA over gRPC, or a local CA file until then. */
export interface CaClient {
  /** Issues a certificate for `identity` (a SPIFFE URI). */
  fetchCertificate(identity: string): Promise<CertifiedKey>;
  describe(): string;
}

/** A CA whose root and key are files on disk (tests, the embedded demo, and single-node setups). */
export async function createLocalCaClient(options: { certPath: string; keyPath: string; trustDomain: string; ttlSeconds: number }): Promise<CaClient> {
  let ca: CertificateAuthority;
  try {
    ca = await CertificateAuthority.load({
      certPem: await readFile(options.certPath, 'utf8'), keyPem: await readFile(options.keyPath, 'utf8'), trustDomain: options.trustDomain,
    });
  } catch (err) {
    throw new CertificateError(`cannot load the local CA from ${options.certPath} and ${options.keyPath}: ${(err as Error).message}`, { cause: err });
  }
  return {
    fetchCertificate: (identity) => ca.issueWorkloadCertificate(identity, { ttlSeconds: options.ttlSeconds }),
    describe: () => `local CA ${options.certPath}`,
  };
}

export interface CertificateInfo {
  identity: string;
  state: 'available' | 'initializing' | 'unavailable';
  notBefore?: string;
  notAfter?: string;
  certChainPem: string[];
  rootsPem: string[];
  lastError?: string;
}

/**
 * One certificate per workload identity that has a pod on this node, kept fresh by a rotator (half-life renewal,
 * backoff). The data path asks `credentialsFor(identity)`; the first caller triggers the fetch and concurrent
 * callers share it. When the CA is down, the last good certificate stays in use.
 */
export class SecretManager {
  private readonly entries = new Map<string, { rotator: CertificateRotator; first: Promise<CertifiedKey>; lastError?: string; users: number }>();

  constructor(private readonly ca: CaClient, private readonly logger: Logger) {}

  /** Starts (or joins) the rotation of `identity`; resolves with TLS credentials once a certificate is held. */
  async credentialsFor(identity: string): Promise<Credentials> {
    const entry = this.entry(identity);
    const cert = entry.rotator.current ?? (await entry.first);
    return { identity, keyPem: cert.keyPem, certChainPem: cert.certChainPem, rootsPem: cert.rootsPem };
  }

  /** The current credentials, if any, without waiting (e.g. for a server's setSecureContext on rotation). */
  currentCredentials(identity: string): Credentials | undefined {
    const c = this.entries.get(identity)?.rotator.current;
    return c ? { identity, keyPem: c.keyPem, certChainPem: c.certChainPem, rootsPem: c.rootsPem } : undefined;
  }

  /** Registers a user of an identity (a pod); the rotation stops when the last user is gone. */
  retain(identity: string): void {
    this.entry(identity).users++;
  }

  release(identity: string): void {
    const e = this.entries.get(identity);
    if (!e) return;
    if (--e.users <= 0) {
      e.rotator.stop();
      this.entries.delete(identity);
    }
  }

  /** Called with each new certificate of an identity (rotation), so servers can swap their context. */
  onRotate: (identity: string, credentials: Credentials) => void = () => {};

  list(): CertificateInfo[] {
    return [...this.entries.entries()].map(([identity, e]) => {
      const c = e.rotator.current;
      return {
        identity,
        state: c ? 'available' : e.lastError ? 'unavailable' : 'initializing',
        ...(c ? { notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() } : {}),
        certChainPem: c?.certChainPem ?? [],
        rootsPem: c?.rootsPem ?? [],
        ...(e.lastError ? { lastError: e.lastError } : {}),
      };
    });
  }

  stop(): void {
    for (const e of this.entries.values()) e.rotator.stop();
    this.entries.clear();
  }

  private entry(identity: string) {
    let e = this.entries.get(identity);
    if (e) return e;
    const log = this.logger.child({ identity });
    const rotator: CertificateRotator = new CertificateRotator({
      fetch: async () => {
        const cert = await this.ca.fetchCertificate(identity);
        // ztunnel checks that the CA issued the identity it asked for.
        const v = verifyChain(cert.certChainPem, cert.rootsPem);
        if (v.identity !== identity) throw new IdentityMismatchError(`CA ${this.ca.describe()} issued ${v.identity ?? 'no identity'} for ${identity}`);
        return cert;
      },
      onUpdate: (cert) => {
        const entry = this.entries.get(identity);
        if (entry) delete entry.lastError;
        log.info({ notAfter: cert.notAfter.toISOString() }, 'workload certificate issued');
        this.onRotate(identity, { identity, keyPem: cert.keyPem, certChainPem: cert.certChainPem, rootsPem: cert.rootsPem });
      },
      onError: (err, retryInMs) => {
        const entry = this.entries.get(identity);
        if (entry) entry.lastError = (err as Error).message;
        log.warn({ err: (err as Error).message, retryInMs, ca: this.ca.describe() }, 'workload certificate fetch failed');
      },
    });
    const first = rotator.start();
    // The first fetch may fail; credentialsFor callers then wait for the retry rather than failing forever,
    // but a caller that must not wait (pod capture) bounds it with a timeout of its own.
    first.catch(() => {});
    e = { rotator, first, users: 0 };
    this.entries.set(identity, e);
    return e;
  }
}
