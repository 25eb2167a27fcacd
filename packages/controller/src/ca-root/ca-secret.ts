// The mesh root: Secret `istio-ca-secret` in the controller's namespace, as istiod keeps its self-signed root
// (type istio.io/ca-root, keys ca-cert.pem and ca-key.pem). Created if absent; when two replicas race, the
// loser's create gets 409 and it loads the winner's, so every replica signs with the same root.
import type { Logger } from 'pino';
import { CertificateAuthority } from '@ambit/pki';
import { KubeApiError, type KubeRest } from '../k8s/kube-rest.js';
import { collectionPath, objectPath, RESOURCES } from '../k8s/resources.js';

export const CA_SECRET_NAME = 'istio-ca-secret';
export const CA_SECRET_TYPE = 'istio.io/ca-root';
export const CA_CERT_KEY = 'ca-cert.pem';
export const CA_KEY_KEY = 'ca-key.pem';
export const ROOT_CERT_KEY = 'root-cert.pem';

export interface LoadCaOptions {
  rest: KubeRest;
  namespace: string;
  trustDomain: string;
  logger: Logger;
}

interface SecretObject {
  metadata?: { name?: string; resourceVersion?: string };
  type?: string;
  data?: Record<string, string>;
}

export async function loadOrCreateCaSecret(options: LoadCaOptions): Promise<{ ca: CertificateAuthority; created: boolean }> {
  const logger = options.logger.child({ component: 'ca-root' });
  const path = objectPath(RESOURCES.Secret, options.namespace, CA_SECRET_NAME);
  const existing = await options.rest.find<SecretObject>(path);
  if (existing) return { ca: await fromSecret(existing, options), created: false };

  const ca = await CertificateAuthority.create({ trustDomain: options.trustDomain });
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  try {
    await options.rest.request('POST', collectionPath(RESOURCES.Secret, options.namespace), {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: CA_SECRET_NAME, namespace: options.namespace, labels: { 'app.kubernetes.io/managed-by': 'ambit-controller' } },
        type: CA_SECRET_TYPE,
        // root-cert.pem as well: tools that read a plugged-in `cacerts` layout find the root under its usual key.
        data: { [CA_CERT_KEY]: b64(ca.rootCertPem), [CA_KEY_KEY]: b64(ca.keyPem), [ROOT_CERT_KEY]: b64(ca.rootCertPem) },
      },
    });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 409) {
      logger.info(`another replica created ${options.namespace}/${CA_SECRET_NAME} first; using its root`);
      const winner = await options.rest.request<SecretObject>('GET', path);
      return { ca: await fromSecret(winner, options), created: false };
    }
    throw new Error(`cannot create the CA Secret ${options.namespace}/${CA_SECRET_NAME}: ${(err as Error).message}`, { cause: err });
  }
  logger.info({ secret: `${options.namespace}/${CA_SECRET_NAME}` }, 'created a new self-signed mesh root (10 years)');
  return { ca, created: true };
}

async function fromSecret(secret: SecretObject, options: LoadCaOptions): Promise<CertificateAuthority> {
  const name = `Secret ${options.namespace}/${CA_SECRET_NAME}`;
  const get = (key: string): string => {
    const v = secret.data?.[key];
    if (!v) throw new Error(`${name}: data["${key}"] is missing or empty`);
    return Buffer.from(v, 'base64').toString('utf8');
  };
  try {
    return await CertificateAuthority.load({ certPem: get(CA_CERT_KEY), keyPem: get(CA_KEY_KEY), trustDomain: options.trustDomain });
  } catch (err) {
    throw new Error(`${name}: cannot load the mesh root: ${(err as Error).message}`, { cause: err });
  }
}
