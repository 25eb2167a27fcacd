/** DestinationRule `trafficPolicy.outlierDetection`, compiled (Istio/Envoy defaults filled in). */
export interface OutlierSettings {
  /** 0 disables. Default 5. */
  readonly consecutive5xxErrors: number;
  /** 502/503/504 and local-origin failures; 0 disables (default). */
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  /** Envoy's max_ejection_time (not in Istio's API): 300 s. */
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  /** Below this % of healthy endpoints, ejections are ignored (panic). Default 0. */
  readonly minHealthPercent: number;
}

/** Validates `outlierDetection` (undefined: undefined, no detection). Throws PolicyConfigError naming the field. */
export function compileOutlierDetection(outlierDetection: unknown, where: { readonly object: string; readonly field: string }): OutlierSettings | undefined {
  void outlierDetection; void where;
  throw new Error('compileOutlierDetection: implementation lands in the next commit');
}

/** What one request to an endpoint ended with. */
export interface EndpointOutcome {
  readonly status?: number;
  /** Connect failure, reset, timeout (counted as a 5xx and a gateway error, as with split_external_local_origin_errors off). */
  readonly localOriginFailure?: boolean;
}

export interface OutlierDetector {
  readonly settings: OutlierSettings;
  /** Records an outcome; returns whether the endpoint got ejected by it. */
  record(endpoint: string, outcome: EndpointOutcome, now: number): { readonly ejected: boolean };
  isEjected(endpoint: string, now: number): boolean;
  /** The endpoints to balance over: the non-ejected ones, or all of them when fewer than minHealthPercent are healthy. */
  available<E extends string | { readonly address: string }>(endpoints: readonly E[], now: number): E[];
  /** Tells the detector the current endpoint set (for maxEjectionPercent); forgets removed endpoints. */
  setEndpoints(endpoints: readonly string[]): void;
}

export function createOutlierDetector(settings: OutlierSettings): OutlierDetector {
  void settings;
  throw new Error('createOutlierDetector: implementation lands in the next commit');
}
