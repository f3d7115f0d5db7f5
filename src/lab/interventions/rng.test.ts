// Expected values come from an independent Python implementation (arbitrary-precision integers masked
// to 32 bits), not from this module.
import { describe, expect, it } from 'vitest';
import { deriveSeed, fmix32, Rng } from './rng';

describe('fmix32', () => {
  it('matches murmur3 fmix32', () => {
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(1364076727);
    expect(fmix32(0xdeadbeef)).toBe(233162409);
  });
});

describe('Rng', () => {
  it('produces the reference splitmix32 stream', () => {
    const r0 = new Rng(0);
    expect([r0.nextUint32(), r0.nextUint32(), r0.nextUint32()]).toEqual([2462723854, 1020716019, 454327756]);
    const r42 = new Rng(42);
    expect([r42.nextUint32(), r42.nextUint32(), r42.nextUint32()]).toEqual([
      939911724, 3948730756, 321366731,
    ]);
  });

  it('reduces negative seeds to uint32', () => {
    const r = new Rng(-1);
    expect([r.nextUint32(), r.nextUint32()]).toEqual([920564995, 4230986166]);
  });

  it('nextFloat is uint32 / 2^32', () => {
    const r = new Rng(42);
    expect(r.nextFloat()).toBe(0.21884025167673826);
    expect(r.nextFloat()).toBe(0.9193855235353112);
  });

  it('int(n) matches the reference and stays in range', () => {
    const r = new Rng(7);
    expect(Array.from({ length: 8 }, () => r.int(10))).toEqual([1, 2, 7, 6, 9, 1, 0, 3]);
    const big = new Rng(5);
    // 3186062026, 3537421946, 3743747824 and 4069062821 are ≥ the rejection limit and skipped
    expect(Array.from({ length: 6 }, () => big.int(3_000_000_000))).toEqual([
      1478832577, 387527240, 2273751472, 559472614, 2702894136, 2758942134,
    ]);
    expect(new Rng(1).int(1)).toBe(0);
    expect(() => r.int(0)).toThrow(RangeError);
    expect(() => r.int(2.5)).toThrow(RangeError);
  });

  it('shuffle is Fisher–Yates from the end', () => {
    expect(new Rng(7).shuffle([0, 1, 2, 3, 4, 5, 6, 7])).toEqual([4, 6, 0, 5, 7, 3, 2, 1]);
  });

  it('sample draws k distinct values in draw order', () => {
    expect(new Rng(7).sample(4, 10)).toEqual([1, 3, 5, 7]);
    expect(new Rng(123).sample(10, 1000)).toEqual([201, 884, 841, 986, 570, 359, 299, 839, 788, 846]);
    const all = new Rng(9).sample(20, 20);
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(new Rng(9).sample(0, 5)).toEqual([]);
    expect(() => new Rng(9).sample(6, 5)).toThrow(RangeError);
  });

  it('refuses non-integer seeds', () => {
    expect(() => new Rng(0.5)).toThrow(RangeError);
  });
});

describe('deriveSeed', () => {
  it('matches the reference and separates streams', () => {
    expect(deriveSeed(1, 0)).toBe(1863002342);
    expect(deriveSeed(1, 1)).toBe(3530840802);
    expect(deriveSeed(0xffffffff, 5)).toBe(177035548);
  });
});
