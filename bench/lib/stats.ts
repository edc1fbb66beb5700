/** Small statistics over samples: medians, percentiles, spread, and rounding for reports. */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: how far apart the rounds were. */
  spread: number;
  samples: number[];
}

/** Linear-interpolated percentile (p in 0..100) of unsorted samples. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((x, y) => x + y, 0) / values.length;
}

export function summarize(values: readonly number[], digits = 3): Summary {
  const m = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return {
    n: values.length,
    median: round(m, digits),
    min: round(min, digits),
    max: round(max, digits),
    spread: values.length > 1 && m !== 0 ? round((max - min) / m, 3) : 0,
    samples: values.map((v) => round(v, digits)),
  };
}

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** p50 of each round, to show drift between rounds. */
  roundP50: number[];
}

export function latencySummary(rounds: readonly number[][]): LatencySummary {
  const all = rounds.flat();
  return {
    n: all.length,
    p50: round(percentile(all, 50), 4),
    p90: round(percentile(all, 90), 4),
    p99: round(percentile(all, 99), 4),
    max: round(Math.max(...all), 4),
    mean: round(mean(all), 4),
    roundP50: rounds.map((r) => round(percentile(r, 50), 4)),
  };
}

export function round(v: number, digits = 3): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Significant-figure formatting for tables: 1234 -> "1234", 12.345 -> "12.3", 0.01234 -> "0.0123". */
export function fmt(v: number | null | undefined, sig = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10 ** sig) return String(Math.round(v));
  return String(Number(v.toPrecision(sig)));
}
