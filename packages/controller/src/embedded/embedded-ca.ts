// Embedded mode's mesh root: from AMBIT_CA_CERT/AMBIT_CA_KEY, else from the state directory, else generated
// there (key file 0600) so restarts keep the same root and agents keep trusting it.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CertificateAuthority } from '@ambit/pki';
import type { EmbeddedSettings } from '../settings/settings.js';

export async function loadEmbeddedCa(settings: EmbeddedSettings, trustDomain: string, logger: Logger): Promise<CertificateAuthority> {
  const load = async (certPath: string, keyPath: string): Promise<CertificateAuthority> => {
    try {
      return await CertificateAuthority.load({ certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8'), trustDomain });
    } catch (err) {
      throw new Error(`cannot load the mesh root from ${certPath} and ${keyPath}: ${(err as Error).message}`, { cause: err });
    }
  };
  if (settings.caCertPath && settings.caKeyPath) return load(settings.caCertPath, settings.caKeyPath);
  const certPath = join(settings.stateDir, 'ca-cert.pem');
  const keyPath = join(settings.stateDir, 'ca-key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) return load(certPath, keyPath);
  const ca = await CertificateAuthority.create({ trustDomain });
  await mkdir(settings.stateDir, { recursive: true, mode: 0o700 });
  await writeFile(keyPath, ca.keyPem, { mode: 0o600 });
  await writeFile(certPath, ca.rootCertPem, { mode: 0o644 });
  // Agents need the root to verify the controller: the same file the cluster mounts as root-cert.pem.
  await writeFile(join(settings.stateDir, 'root-cert.pem'), ca.rootCertPem, { mode: 0o644 });
  logger.info({ stateDir: settings.stateDir }, 'generated a mesh root for embedded mode');
  return ca;
}
