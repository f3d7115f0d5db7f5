// Seeded integer PRNG for every random choice the lab makes (perturbation trials, bootstrap resamples):
// splitmix32 — a Weyl sequence through murmur3's 32-bit finaliser — built only from Math.imul, `>>>`
// and `^`, so the same seed gives the same stream bit for bit in every JS engine.
// It must never touch Math.random or the clock, and is not for cryptography.

const GOLDEN = 0x9e3779b9;
const TWO_POW_32 = 4294967296;

/** murmur3's fmix32: a bijective 32-bit avalanche. */
export function fmix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A child seed for an independent stream (e.g. trial t of a perturbation with seed s), so that
 * trial t's draws do not depend on how many numbers trial t−1 used.
 */
export function deriveSeed(seed: number, stream: number): number {
  return fmix32((seed >>> 0) ^ fmix32((stream + GOLDEN) >>> 0));
}

export class Rng {
  private state: number;

  /** `seed` is reduced to an unsigned 32-bit integer; non-integers are refused. */
  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.state = seed >>> 0;
  }

  nextUint32(): number {
    this.state = (this.state + GOLDEN) >>> 0;
    return fmix32(this.state);
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  nextFloat(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n), without modulo bias (rejection sampling); 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32)
      throw new RangeError(`int(n) needs 1 ≤ n ≤ 2^32, got ${n}`);
    // NOTE: limit is the largest multiple of n that fits in 2^32; draws at or above it are rejected.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher–Yates in place (from the end), returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /**
   * k distinct integers from [0, n), in draw order (partial Fisher–Yates over a virtual 0..n−1, so
   * memory is O(k), not O(n)).
   */
  sample(k: number, n: number): number[] {
    if (!Number.isInteger(n) || n < 0)
      throw new RangeError(`sample: n must be a non-negative integer, got ${n}`);
    if (!Number.isInteger(k) || k < 0 || k > n)
      throw new RangeError(`sample: need 0 ≤ k ≤ n, got k=${k}, n=${n}`);
    const swapped = new Map<number, number>();
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const atJ = swapped.get(j) ?? j;
      const atI = swapped.get(i) ?? i;
      swapped.set(j, atI);
      out.push(atJ);
    }
    return out;
  }
}
