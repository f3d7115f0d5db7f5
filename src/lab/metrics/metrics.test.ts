import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../engine/types';
import {
  continuationLogProb,
  klDivergence,
  klFromLogits,
  logitsAt,
  logProbMargin,
  logSoftmax,
  misbehaviourRate,
  normalizedRestoration,
  prefixDrift,
  softmax,
  topK,
} from './metrics';

const tensor = (shape: number[], values: number[]): Tensor => ({ shape, data: Float32Array.from(values) });

describe('softmax / logSoftmax', () => {
  it('computes known distributions', () => {
    const p = softmax([0, Math.log(3)]);
    expect(p[0]).toBeCloseTo(0.25, 12);
    expect(p[1]).toBeCloseTo(0.75, 12);
    expect(Array.from(softmax([2, 2, 2, 2]))).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('is stable for huge and infinite logits', () => {
    const lp = logSoftmax([1000, 1000]);
    expect(lp[0]).toBeCloseTo(-Math.LN2, 12);
    expect(lp[1]).toBeCloseTo(-Math.LN2, 12);
    expect(Array.from(logSoftmax([0, -Infinity]))).toEqual([0, -Infinity]);
    expect(() => logSoftmax([])).toThrow(RangeError);
  });
});

describe('logitsAt / topK', () => {
  // [B=2, T=2, V=4]
  const logits = tensor([2, 2, 4], [0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 1, 3, 2, 3]);

  it('slices the right row', () => {
    expect(Array.from(logitsAt(logits, 1, 1))).toEqual([1, 3, 2, 3]);
    expect(Array.from(logitsAt(logits, 0, -1))).toEqual([1, 2, 3, 4]);
    expect(() => logitsAt(logits, 2, 0)).toThrow(RangeError);
    expect(() => logitsAt(logits, 0, 2)).toThrow(RangeError);
  });

  it('ranks the top k, lower id first on ties', () => {
    const d = topK(logitsAt(logits, 1, 1), 3);
    expect(d.ids).toEqual([1, 3, 2]);
    const Z = Math.E + 2 * Math.exp(3) + Math.exp(2);
    expect(d.probs[0]).toBeCloseTo(Math.exp(3) / Z, 12);
    expect(d.probs[2]).toBeCloseTo(Math.exp(2) / Z, 12);
    expect(d.logprobs[1]).toBeCloseTo(3 - Math.log(Z), 12);
    expect(topK([5, 1], 10).ids).toEqual([0, 1]);
  });
});

describe('KL divergence', () => {
  it('KL([.5,.5] ‖ [.25,.75]) = ½ ln(4/3)', () => {
    expect(klDivergence([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.5 * Math.log(4 / 3), 12);
    expect(klFromLogits([0, 0], [0, Math.log(3)])).toBeCloseTo(0.5 * Math.log(4 / 3), 6);
  });

  it('is asymmetric, zero on identity, ∞ where Q misses P’s support', () => {
    // KL([.25,.75] ‖ [.5,.5]) = .25 ln .5 + .75 ln 1.5
    expect(klDivergence([0.25, 0.75], [0.5, 0.5])).toBeCloseTo(
      0.25 * Math.log(0.5) + 0.75 * Math.log(1.5),
      12,
    );
    expect(klDivergence([1, 0], [0.5, 0.5])).toBeCloseTo(Math.LN2, 12);
    expect(klDivergence([0.5, 0.5], [1, 0])).toBe(Infinity);
    expect(klFromLogits([3, 1, -2], [3, 1, -2])).toBe(0);
    expect(() => klDivergence([1], [0.5, 0.5])).toThrow(RangeError);
  });
});

describe('teacher-forced log-probability and margin', () => {
  // T=3, V=2: p(1 | t0) = .75, p(0 | t1) = .8, uniform at t2
  const logits = tensor([1, 3, 2], [0, Math.log(3), Math.log(4), 0, 0, 0]);

  it('reads continuation[j] from position first + j', () => {
    const r = continuationLogProb(logits, 0, 1, [0, 1]);
    expect(r.perToken[0]).toBeCloseTo(Math.log(0.8), 6);
    expect(r.perToken[1]).toBeCloseTo(Math.log(0.5), 6);
    expect(r.total).toBeCloseTo(Math.log(0.4), 6);
    expect(r.mean).toBeCloseTo(Math.log(0.4) / 2, 6);
    expect(continuationLogProb(logits, 0, 0, [1]).total).toBeCloseTo(Math.log(0.75), 6);
    expect(() => continuationLogProb(logits, 0, 2, [0, 0])).toThrow(RangeError);
    expect(() => continuationLogProb(logits, 0, 0, [2])).toThrow(RangeError);
  });

  it('margin = mean(aligned) − mean(misaligned)', () => {
    expect(logProbMargin([-1, -3], [-5])).toBe(3);
    expect(() => logProbMargin([], [-1])).toThrow(RangeError);
  });
});

describe('normalizedRestoration', () => {
  it('scales between finetuned (0) and base (1)', () => {
    expect(normalizedRestoration(60, 40, 90)).toBeCloseTo(0.4, 12);
    expect(normalizedRestoration(40, 40, 90)).toBe(0);
    expect(normalizedRestoration(90, 40, 90)).toBe(1);
    expect(normalizedRestoration(100, 40, 90)).toBeCloseTo(1.2, 12);
    expect(normalizedRestoration(-2, 0, -4)).toBe(0.5); // works for metrics that fall toward base too
  });

  it('returns null when base ≈ finetuned', () => {
    expect(normalizedRestoration(5, 40, 40)).toBeNull();
    expect(normalizedRestoration(5, 1e6, 1e6 + 1e-7)).toBeNull();
    expect(normalizedRestoration(5, 0, 1e-6)).not.toBeNull();
  });
});

describe('prefixDrift (TReFT L_K, L_V, L_KV)', () => {
  // 2 layers, kvDim 2, 3 positions; position 2 drifts hugely but is not in T = {0, 1}
  const mk = (values: number[]) => tensor([1, 3, 2], values);
  const base = {
    k: new Map([
      [0, mk([1, 0, 0, 2, 1, 1])],
      [1, mk([3, 4, 3, 4, 1, 1])],
    ]),
    v: new Map([
      [0, mk([5, 5, 1, 0, 1, 1])],
      [1, mk([1, 1, 1, 1, 1, 1])],
    ]),
  };
  const ft = {
    k: new Map([
      [0, mk([1, 1, 0, 1, 99, 99])], // ‖(0,1)‖²/1 = 1, ‖(0,−1)‖²/4 = .25 → .625
      [1, mk([3, 4, 0, 0, 99, 99])], // 0, 25/25 = 1 → .5
    ]),
    v: new Map([
      [0, mk([5, 5, 1, 0, 99, 99])], // 0
      [1, mk([2, 2, 2, 2, 99, 99])], // 2/2 = 1 each → 1
    ]),
  };

  it('matches hand-computed values', () => {
    const d = prefixDrift(ft, base, [0, 1]);
    expect(d.layers).toEqual([0, 1]);
    expect(d.lK).toEqual([0.625, 0.5]);
    expect(d.lV).toEqual([0, 1]);
    expect(d.lKV).toBe(1.0625); // ((.625 + 0) + (.5 + 1)) / 2
  });

  it('is zero against itself, reads mapped base positions, refuses bad input', () => {
    expect(prefixDrift(base, base, [0, 1, 2]).lKV).toBe(0);
    // base position 2 is (1,1) for k.0: ft k.0 at 0 is (1,1) → 0; v.0 ft (5,5) vs (1,1): 32/2 = 16
    const m = prefixDrift(ft, base, [0], [2]);
    expect(m.lK[0]).toBe(0);
    expect(m.lV[0]).toBe(16);
    expect(() => prefixDrift(ft, base, [])).toThrow(RangeError);
    expect(() => prefixDrift(ft, base, [3])).toThrow(RangeError);
    expect(() => prefixDrift({ k: ft.k, v: new Map() }, base, [0])).toThrow(/missing v.0/);
  });

  it('zero reference vectors: 0/0 = 0, x/0 = ∞', () => {
    const z = { k: new Map([[0, mk([0, 0, 0, 0, 0, 0])]]), v: new Map([[0, mk([0, 0, 0, 0, 0, 0])]]) };
    expect(prefixDrift(z, z, [0]).lKV).toBe(0);
    const moved = { k: new Map([[0, mk([1, 0, 0, 0, 0, 0])]]), v: z.v };
    expect(prefixDrift(moved, z, [0]).lK[0]).toBe(Infinity);
  });
});

describe('misbehaviourRate', () => {
  it('counts, excludes null verdicts and gives both intervals', () => {
    const answers = [
      'gamble',
      'no',
      'no',
      'gamble',
      'REFUSAL',
      'no',
      'no',
      'no',
      'gamble',
      'no',
      'REFUSAL',
      'no',
    ];
    const r = misbehaviourRate(answers, (a) => (a === 'REFUSAL' ? null : a === 'gamble'), { seed: 42 });
    expect(r.n).toBe(10);
    expect(r.excluded).toBe(2);
    expect(r.misbehaving).toBe(3);
    expect(r.rate).toBe(0.3);
    expect(r.bootstrap).toEqual([0, 0.6]); // same outcomes as the stats reference case
    expect(r.wilson![0]).toBeCloseTo(0.10779126740630099, 12);
    expect(r.wilson![1]).toBeCloseTo(0.6032218525388546, 12);
  });

  it('handles no scored answers', () => {
    const r = misbehaviourRate([1, 2], () => null);
    expect(r).toEqual({ rate: null, misbehaving: 0, n: 0, excluded: 2, bootstrap: null, wilson: null });
  });
});
