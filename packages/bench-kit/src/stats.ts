// Order statistics for the benchmarks. Latency samples are simply sorted (no HDR histogram): at most a few
// hundred thousand per run.
export interface LatencySummary {
  count: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarizeUs(samplesUs: number[]): LatencySummary {
  const s = Float64Array.from(samplesUs).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    count: s.length,
    meanUs: s.length ? sum / s.length : NaN,
    p50Us: percentile(s, 50),
    p90Us: percentile(s, 90),
    p99Us: percentile(s, 99),
    p999Us: percentile(s, 99.9),
    maxUs: s.length ? s[s.length - 1]! : NaN,
  };
}

export function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Spread { median: number; min: number; max: number; runs: number[] }

export function spread(values: number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  return { median: median(finite), min: finite.length ? Math.min(...finite) : NaN, max: finite.length ? Math.max(...finite) : NaN, runs: values };
}
