// Small statistics for reporting organism results: mean, type-7 quantile, Wilson score interval and a
// seeded percentile bootstrap for proportions.
// Every random draw goes through rng.ts with an explicit seed: this module must never use Math.random.

import { Rng } from '../interventions/rng';

/** z for a two-sided 95 % interval (Φ⁻¹(0.975)). */
export const Z95 = 1.959963984540054;

export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) throw new RangeError('mean of nothing');
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Quantile p ∈ [0, 1] of ascending-sorted values, linear interpolation (R type 7, numpy's default). */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantile of nothing');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile p must be in [0, 1], got ${p}`);
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** z for a two-sided interval of the given confidence; exact for 0.9, 0.95, 0.99, else refused. */
export function zFor(confidence: number): number {
  const table: Record<string, number> = {
    '0.9': 1.6448536269514722,
    '0.95': Z95,
    '0.99': 2.5758293035489004,
  };
  const z = table[String(confidence)];
  if (z === undefined) throw new RangeError(`confidence must be 0.9, 0.95 or 0.99, got ${confidence}`);
  return z;
}

/** Wilson score interval for successes / n; null when n = 0. */
export function wilsonInterval(successes: number, n: number, z = Z95): [number, number] | null {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(successes) || successes < 0 || successes > n) {
    throw new RangeError(`wilson: need integers 0 ≤ successes ≤ n, got ${successes}/${n}`);
  }
  if (n === 0) return null;
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export interface BootstrapOptions {
  seed?: number;
  /** default 1000 */
  resamples?: number;
  /** default 0.95 */
  confidence?: number;
}

/**
 * Percentile bootstrap interval of a proportion: `resamples` times draw n outcomes with replacement
 * (index = rng.int(n)), take the share of successes, and report the (1±confidence)/2 type-7 quantiles.
 * null when n = 0.
 */
export function bootstrapProportion(
  outcomes: readonly boolean[],
  options: BootstrapOptions = {},
): [number, number] | null {
  const { seed = 0, resamples = 1000, confidence = 0.95 } = options;
  if (!Number.isInteger(resamples) || resamples < 1)
    throw new RangeError(`resamples must be ≥ 1, got ${resamples}`);
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  const n = outcomes.length;
  if (n === 0) return null;
  const rng = new Rng(seed);
  const rates = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let hits = 0;
    for (let i = 0; i < n; i++) if (outcomes[rng.int(n)]) hits++;
    rates[r] = hits / n;
  }
  rates.sort();
  const a = (1 - confidence) / 2;
  return [quantileSorted(rates, a), quantileSorted(rates, 1 - a)];
}
