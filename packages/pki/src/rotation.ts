import type { CertifiedKey } from './ca.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface RotatorOptions {
  /** Fetches a fresh certificate (a CSR to the CA, or a local CA). */
  fetch: () => Promise<CertifiedKey>;
  /** Called with every new certificate, the first one included. */
  onUpdate: (cert: CertifiedKey) => void;
  /** Called on each failed fetch, with the delay before the next try. */
  onError?: (err: unknown, retryInMs: number) => void;
  /** First retry delay after a failure; doubles up to maxBackoffMs (ztunnel: 150 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  clock?: Clock;
  /** Random source for jitter, [0,1). */
  random?: () => number;
}

/** When a certificate should be renewed: at half-life, not_before + (not_after - not_before)/2, as ztunnel does. */
export function renewalTime(cert: Pick<CertifiedKey, 'notBefore' | 'notAfter'>): number {
  const from = cert.notBefore.getTime();
  return from + (cert.notAfter.getTime() - from) / 2;
}

/**
 * Keeps one identity's certificate fresh: fetches at start, renews at half-life, retries failures with exponential
 * backoff and jitter. The current certificate stays in force while renewal fails (the data path never waits on
 * the CA); `current` is undefined only until the first fetch succeeds.
 */
export class CertificateRotator {
  current: CertifiedKey | undefined;
  private timer: unknown;
  private stopped = false;
  private failures = 0;
  private readonly clock: Clock;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private firstWaiters: Array<{ resolve: (c: CertifiedKey) => void; reject: (e: unknown) => void }> = [];

  constructor(private readonly options: RotatorOptions) {
    this.clock = options.clock ?? systemClock;
    this.initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 150_000;
    this.random = options.random ?? Math.random;
  }

  /** Starts fetching; resolves with the first certificate. */
  start(): Promise<CertifiedKey> {
    const first = new Promise<CertifiedKey>((resolve, reject) => this.firstWaiters.push({ resolve, reject }));
    void this.refresh();
    return first;
  }

  /** Fetches now (e.g. on demand), whatever the schedule. */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    this.clock.clearTimeout(this.timer);
    try {
      const cert = await this.options.fetch();
      if (this.stopped) return;
      this.failures = 0;
      this.current = cert;
      this.options.onUpdate(cert);
      for (const w of this.firstWaiters.splice(0)) w.resolve(cert);
      this.schedule(Math.max(0, renewalTime(cert) - this.clock.now()));
    } catch (err) {
      if (this.stopped) return;
      const base = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** this.failures);
      this.failures++;
      // Up to 20% jitter so that many identities failing together do not retry in lockstep.
      const delay = Math.round(base * (1 - 0.2 * this.random()));
      this.options.onError?.(err, delay);
      this.schedule(delay);
    }
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    for (const w of this.firstWaiters.splice(0)) w.reject(new Error('certificate rotator stopped'));
  }

  private schedule(ms: number): void {
    this.timer = this.clock.setTimeout(() => void this.refresh(), ms);
  }
}
