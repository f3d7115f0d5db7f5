// Token choice: PRNG determinism, greedy argmax, and temperature / top-k / top-p sampling semantics.

import { describe, expect, it } from 'vitest';
import { argmax, createRng, sampleToken } from './sampling';

describe('createRng', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 20 }, () => a.nextU32());
    const sb = Array.from({ length: 20 }, () => b.nextU32());
    const sc = Array.from({ length: 20 }, () => c.nextU32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    for (const v of sa) expect(Number.isInteger(v) && v >= 0 && v < 2 ** 32).toBe(true);
  });

  it('pins the first values of seed 0 (a change here changes every sampled experiment)', () => {
    const r = createRng(0);
    const first = [r.nextU32(), r.nextU32(), r.nextU32()];
    expect(first).toMatchInlineSnapshot(`
      [
        3809008728,
        1133695204,
        53579671,
      ]
    `);
  });

  it('nextFloat is uniform in [0, 1)', () => {
    const r = createRng(7);
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < 20000; i++) {
      const u = r.nextFloat();
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 10)]++;
    }
    for (const n of bins) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
});

describe('argmax', () => {
  it('picks the largest, the lowest index on ties, and ignores NaN', () => {
    expect(argmax([1, 3, 2])).toBe(1);
    expect(argmax([5, 5, 1])).toBe(0);
    expect(argmax([NaN, 1, NaN, 2])).toBe(3);
    expect(argmax([9, 1, 4, 7, 2], 2, 3)).toBe(1);
    expect(argmax([-Infinity, -Infinity])).toBe(0);
  });
});

describe('sampleToken', () => {
  const logits = Float32Array.from([2, 1, 0.5, 3, -1, 0]);

  it('is greedy without a temperature and consumes no randomness', () => {
    const r = createRng(1);
    expect(sampleToken(logits, undefined, r)).toBe(3);
    expect(sampleToken(logits, { temperature: 0 }, r)).toBe(3);
    expect(r.nextU32()).toBe(createRng(1).nextU32());
  });

  it('top-k 1 and a tiny top-p are greedy', () => {
    const r = createRng(2);
    for (let i = 0; i < 50; i++) {
      expect(sampleToken(logits, { temperature: 1.5, topK: 1 }, r)).toBe(3);
      expect(sampleToken(logits, { temperature: 1.5, topP: 1e-6 }, r)).toBe(3);
    }
  });

  it('the same seed gives the same tokens', () => {
    const draw = (seed: number): number[] => {
      const r = createRng(seed);
      return Array.from({ length: 40 }, () => sampleToken(logits, { temperature: 1 }, r));
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });

  it('samples the softmax at temperature 1', () => {
    const r = createRng(3);
    const n = 30000;
    const counts = new Array<number>(logits.length).fill(0);
    for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1 }, r)]++;
    const z = Array.from(logits).reduce((a, l) => a + Math.exp(l), 0);
    logits.forEach((l, i) => expect(Math.abs(counts[i] / n - Math.exp(l) / z)).toBeLessThan(0.01));
  });

  it('top-k keeps only the k most likely and top-p the smallest nucleus', () => {
    const r = createRng(4);
    const seenK = new Set<number>();
    const seenP = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      seenK.add(sampleToken(logits, { temperature: 2, topK: 2 }, r));
      // probabilities ≈ .61 (3), .22 (0), .08 (1): p = 0.7 needs tokens 3 and 0
      seenP.add(sampleToken(logits, { temperature: 1, topP: 0.7 }, r));
    }
    expect([...seenK].sort()).toEqual([0, 3]);
    expect([...seenP].sort()).toEqual([0, 3]);
  });

  it('reads one row of a batch through offset and length', () => {
    const batch = Float32Array.from([0, 9, 1, 8, 0, 2]);
    expect(sampleToken(batch, undefined, createRng(0), 3, 3)).toBe(0);
  });
});
