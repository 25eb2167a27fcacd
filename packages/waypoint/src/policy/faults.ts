/** VirtualService `http[].fault`, compiled. Percentages are 0..100. */
export interface FaultPolicy {
  readonly delay?: { readonly delayMs: number; readonly percent: number };
  readonly abort?: { readonly percent: number } & ({ readonly httpStatus: number } | { readonly grpcStatus: number; readonly grpcStatusName: string });
}

/** What to do to one request. `responseFlags`: `DI` (delay injected), `FI` (fault/abort injected), in that order. */
export interface FaultDecision {
  readonly delayMs?: number;
  /** Answer locally without calling the upstream: `httpStatus` with body `fault filter abort`, or HTTP 200 with
   * `grpc-status` (trailers-only) for `grpcStatus`. Never retried. */
  readonly abort?: { readonly httpStatus: number } | { readonly grpcStatus: number };
  readonly responseFlags: readonly ('DI' | 'FI')[];
}

/** Validates `fault` (`where` names object and field for errors). Throws PolicyConfigError. */
export function compileFault(fault: unknown, where: { readonly object: string; readonly field: string }): FaultPolicy {
  void fault; void where;
  throw new Error('compileFault: implementation lands in the next commit');
}

/** Draws the decision; `random` returns [0, 1). Delay and abort draw independently, delay first. */
export function decideFault(policy: FaultPolicy, random: () => number): FaultDecision {
  void policy; void random;
  throw new Error('decideFault: implementation lands in the next commit');
}
