/**
 * The pieces of the CNI specification (containernetworking/cni SPEC.md) every CNI plugin of ours needs: the
 * well-known error codes, the error a plugin reports, version comparison and CNI_ARGS parsing. Shared by the
 * Ambit chained plugin and the test cluster's primary plugin. This file imports nothing: plugins run once per pod
 * start and must start fast, so it is published as its own entry point (`@ambit/api/cni`).
 */

/** Well-known error codes (SPEC.md "Error"); plugins add their own from 100 up. */
export const CNI_STANDARD_ERRORS = Object.freeze({
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidNetworkConfig: 7,
  tryAgainLater: 11,
} as const);

/** A failure a plugin reports as the CNI error object on stdout, with a non-zero exit. */
export class CniError extends Error {
  constructor(readonly code: number, message: string, readonly details = '') {
    super(message);
    this.name = 'CniError';
  }
}

/** Compares dotted versions numerically: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Parses CNI_ARGS (`K1=v1;K2=v2`). Empty segments are ignored; a segment without `=` is an error. */
export function parseCniArgs(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_STANDARD_ERRORS.invalidEnvironment, `invalid CNI_ARGS: ${JSON.stringify(part)} is not KEY=VALUE`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
