// Expected values: textbook formulas by hand, and for the bootstrap an independent Python
// implementation of the same algorithm over the same splitmix32 stream.
import { describe, expect, it } from 'vitest';
import { bootstrapProportion, mean, quantileSorted, wilsonInterval, Z95, zFor } from './stats';

describe('mean and quantileSorted', () => {
  it('computes type-7 quantiles', () => {
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(() => mean([])).toThrow(RangeError);
    expect(quantileSorted([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantileSorted([1, 2, 3, 4], 1)).toBe(4);
    expect(quantileSorted([5], 0.3)).toBe(5);
    expect(quantileSorted([0, 10], 0.975)).toBe(9.75);
    expect(() => quantileSorted([1], 1.5)).toThrow(RangeError);
  });
});

describe('wilsonInterval', () => {
  it('matches the textbook interval for 3/10', () => {
    const [lo, hi] = wilsonInterval(3, 10)!;
    expect(lo).toBeCloseTo(0.10779126740630099, 12);
    expect(hi).toBeCloseTo(0.6032218525388546, 12);
  });

  it('handles the edges', () => {
    expect(wilsonInterval(0, 10)![0]).toBe(0);
    expect(wilsonInterval(0, 10)![1]).toBeCloseTo(0.2775327998628892, 12);
    expect(wilsonInterval(10, 10)![0]).toBeCloseTo(0.7224672001371107, 12);
    expect(wilsonInterval(10, 10)![1]).toBeCloseTo(1, 12);
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(() => wilsonInterval(4, 3)).toThrow(RangeError);
  });

  it('zFor knows the usual confidences', () => {
    expect(zFor(0.95)).toBe(Z95);
    expect(zFor(0.9)).toBeCloseTo(1.6449, 4);
    expect(() => zFor(0.8)).toThrow(RangeError);
  });
});

describe('bootstrapProportion', () => {
  const out = [true, false, false, true, false, false, false, true, false, false];

  it('matches the reference implementation', () => {
    expect(bootstrapProportion(out, { seed: 42 })).toEqual([0, 0.6]);
    const [lo, hi] = bootstrapProportion(out, { seed: 42, resamples: 200, confidence: 0.9 })!;
    expect(lo).toBeCloseTo(0.1, 12);
    expect(hi).toBeCloseTo(0.5049999999999983, 12);
  });

  it('is deterministic, degenerate for constant outcomes, null for none', () => {
    expect(bootstrapProportion(out, { seed: 7 })).toEqual(bootstrapProportion(out, { seed: 7 }));
    expect(bootstrapProportion([true, true, true], { seed: 1 })).toEqual([1, 1]);
    expect(bootstrapProportion([false, false], { seed: 1 })).toEqual([0, 0]);
    expect(bootstrapProportion([])).toBeNull();
    expect(() => bootstrapProportion(out, { resamples: 0 })).toThrow(RangeError);
  });
});
