export { CertificateAuthority, DEFAULT_WORKLOAD_TTL_SECONDS, MAX_WORKLOAD_TTL_SECONDS, ROOT_VALIDITY_SECONDS } from './ca.js';
export type { CertifiedKey, CreateCaOptions, IssueOptions } from './ca.js';
export { createCsr } from './csr.js';
export { verifyChain } from './verify.js';
export type { VerifiedChain } from './verify.js';
export { CertificateRotator, renewalTime, systemClock } from './rotation.js';
export type { Clock, RotatorOptions } from './rotation.js';
export { generateKeyPair, parseUriSans, splitPemBundle, uriSans } from './x509.js';
export { createTlsCa, generateServiceAccountKeyPair, issueTlsCertificate, type CreateTlsCaOptions, type ServiceAccountKeyPair, type TlsCertificateOptions, type TlsKeyPair, type TlsUsage } from './tls-certificates.js';
