// Polling with a deadline: the only way e2e code waits (no bare sleeps). A wait that times out says what it was
// waiting for and the last error the condition threw, so a failing test explains itself.

export interface WaitOptions {
  /** Give up after this long. */
  timeoutMs?: number;
  /** Time between two checks. */
  intervalMs?: number;
  /** What we are waiting for, e.g. "echo server in amb-t1a2b-n1p2 listening on 8080". */
  message?: string;
}

export class WaitTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WaitTimeoutError';
  }
}

function describeCause(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Calls `condition` until it returns a truthy value (which is returned) or the deadline passes (throws
 * WaitTimeoutError). A condition that throws counts as "not yet"; its last error is reported on timeout.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 5000, intervalMs = 50, message = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const why = lastError === undefined ? '' : ` (last error: ${describeCause(lastError)})`;
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${message}${why}`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, left)));
  }
}

// A shared buffer only used as something to Atomics.wait() on: the one way to pause synchronously in Node.
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Synchronous variant of waitFor for code that cannot await: the process 'exit' and signal handlers that tear
 * a topology down. Returns false on timeout instead of throwing, because teardown must go on regardless.
 */
export function pollSync(condition: () => boolean, options: { timeoutMs: number; intervalMs?: number }): boolean {
  const { timeoutMs, intervalMs = 20 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (condition()) return true;
    } catch {
      // treated as "not yet", like waitFor
    }
    const left = deadline - Date.now();
    if (left <= 0) return false;
    Atomics.wait(sleeper, 0, 0, Math.min(intervalMs, left));
  }
}
