import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { AmbitError } from '@ambit/api';
import type { CaptureOutcome, PodSpec } from './enrollment-contract.js';

/**
 * What the enrollment API calls to capture and release pods. The agent implements it with real capture (in-pod
 * redirection rules plus listeners in the pod's netns); tests use a recording fake.
 * - `capture` is called on every CNI ADD and on start-up re-enrollment, so it must tolerate a pod whose rules are
 *   already installed (a restarted agent re-captures pods it captured before). Throwing fails the CNI ADD.
 * - `release` is called on every CNI DEL, also for pods that were declined or never seen: it must be idempotent.
 */
export interface PodCapturer {
  capture(pod: PodSpec): Promise<CaptureOutcome>;
  release(uid: string): Promise<void>;
  isCaptured(uid: string): boolean;
}

/** A request the enrollment API refuses or could not carry out; `status` is the HTTP status it answers with. */
export class EnrollmentError extends AmbitError {
  readonly status: number;
  readonly field: string | undefined;
  constructor(message: string, options: { status: number; field?: string; cause?: unknown }) {
    super('AMB_ERR_ENROLLMENT', message, { cause: options.cause });
    this.status = options.status;
    this.field = options.field;
  }
}

// Kubernetes names: namespaces are DNS labels (63), pod names DNS subdomains (253); UIDs are 36-char UUIDs but we
// accept a sandbox id (64 hex) as a fallback uid, so allow up to 128.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const UID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function invalid(field: string, what: string): never {
  throw new EnrollmentError(`invalid pod: ${field} ${what}`, { status: 400, field });
}

function requireString(o: Record<string, unknown>, field: string): string {
  const v = o[field];
  if (v === undefined || v === null) invalid(field, 'is required');
  if (typeof v !== 'string') invalid(field, `must be a string, got ${typeof v}`);
  if (v.length === 0) invalid(field, 'must not be empty');
  return v;
}

function optionalString(o: Record<string, unknown>, field: string): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') invalid(field, `must be a string, got ${typeof v}`);
  return v.length === 0 ? undefined : v;
}

function optionalStringMap(o: Record<string, unknown>, field: string): Record<string, string> | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) invalid(field, 'must be an object of string values');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string') invalid(`${field}[${JSON.stringify(k)}]`, `must be a string, got ${typeof val}`);
    out[k] = val;
  }
  return out;
}

/**
 * Checks an untrusted add request (the HTTP body, or an entry of a snapshot file) and returns a clean PodSpec with
 * unknown keys dropped. Throws EnrollmentError (status 400) naming the field at fault.
 */
export function validatePodSpec(input: unknown): PodSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new EnrollmentError('invalid pod: the request body must be a JSON object', { status: 400 });
  }
  const o = input as Record<string, unknown>;
  const uid = requireString(o, 'uid');
  if (!UID.test(uid)) invalid('uid', `${JSON.stringify(uid)} is not a pod UID`);
  const name = requireString(o, 'name');
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) invalid('name', `${JSON.stringify(name)} is not a Kubernetes pod name`);
  const namespace = requireString(o, 'namespace');
  if (namespace.length > 63 || !DNS_SUBDOMAIN.test(namespace) || namespace.includes('.')) {
    invalid('namespace', `${JSON.stringify(namespace)} is not a Kubernetes namespace name`);
  }
  const netns = requireString(o, 'netns');
  // The agent opens this path as root: refuse anything that is not a plain absolute path.
  if (!isAbsolute(netns) || netns.split('/').includes('..') || netns.includes('\0')) {
    invalid('netns', `${JSON.stringify(netns)} must be an absolute path such as /var/run/netns/<name> or /proc/<pid>/ns/net`);
  }
  const spec: PodSpec = { uid, name, namespace, netns };
  const serviceAccount = optionalString(o, 'serviceAccount');
  if (serviceAccount !== undefined) spec.serviceAccount = serviceAccount;
  const containerId = optionalString(o, 'containerId');
  if (containerId !== undefined) spec.containerId = containerId;
  if (o.ips !== undefined && o.ips !== null) {
    if (!Array.isArray(o.ips)) invalid('ips', 'must be an array of IP addresses');
    spec.ips = o.ips.map((ip: unknown, i: number) => {
      if (typeof ip !== 'string' || isIP(ip) === 0) invalid(`ips[${i}]`, `${JSON.stringify(ip)} is not an IP address`);
      return ip;
    });
  }
  const labels = optionalStringMap(o, 'labels');
  if (labels !== undefined) spec.labels = labels;
  const annotations = optionalStringMap(o, 'annotations');
  if (annotations !== undefined) spec.annotations = annotations;
  return spec;
}

export function describePod(pod: Pick<PodSpec, 'namespace' | 'name' | 'uid'>): string {
  return `${pod.namespace}/${pod.name} (uid ${pod.uid})`;
}
