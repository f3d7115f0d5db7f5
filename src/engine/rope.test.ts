import { describe, expect, it } from 'vitest';
import { inverseFrequencies, ropeTables, ropeTables64, rotateHalf } from './rope';
import type { RopeScaling } from './types';

const llama32 = {
  headDim: 64,
  ropeTheta: 500000,
  ropeScaling: {
    type: 'llama3',
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  } as RopeScaling,
};

describe('inverse frequencies', () => {
  it('default: theta^(-2i/d)', () => {
    const inv = inverseFrequencies({ headDim: 8, ropeTheta: 10000, ropeScaling: { type: 'default' } });
    expect([...inv]).toEqual([1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75]);
  });

  it('linear divides by the factor', () => {
    const inv = inverseFrequencies({
      headDim: 8,
      ropeTheta: 10000,
      ropeScaling: { type: 'linear', factor: 4 },
    });
    expect(inv[0]).toBe(0.25);
    expect(inv[2]).toBeCloseTo(0.01 / 4, 15);
  });

  it('llama3 (Llama-3.2 parameters) against hand-computed values', () => {
    const inv = inverseFrequencies(llama32);
    // wavelength 2π/f below 8192/4 = 2048: unchanged
    expect(inv[0]).toBe(1);
    expect(inv[14]).toBeCloseTo(0.0032114459947525913, 16);
    // wavelength above 8192/1: divided by factor 32
    expect(inv[18]).toBeCloseTo(0.000622772421914596 / 32, 17);
    expect(inv[31]).toBeCloseTo(3.0138581521391708e-6 / 32, 20);
    // in between: smooth = (8192/wavelen − 1)/(4 − 1); f' = (1 − smooth)·f/32 + smooth·f
    const f16 = 1 / Math.sqrt(500000);
    const smooth = (8192 / ((2 * Math.PI) / f16) - 1) / 3;
    expect(inv[16]).toBeCloseTo((1 - smooth) * (f16 / 32) + smooth * f16, 18);
    expect(inv[16]).toBeCloseTo(0.00042955679655936815, 16);
    expect(inv[15]).toBeCloseTo(0.001290547928209264, 16);
    expect(inv[17]).toBeCloseTo(9.70828780262767e-5, 17);
    for (let i = 1; i < inv.length; i++) expect(inv[i]).toBeLessThan(inv[i - 1]);
  });
});

describe('tables and rotation', () => {
  it('tables hold cos/sin(p·inv_freq) as [maxPos, headDim/2]', () => {
    const spec = { headDim: 6, ropeTheta: 100, ropeScaling: { type: 'default' } as RopeScaling };
    const t = ropeTables(spec, 5);
    expect(t.cos.length).toBe(15);
    expect(t.half).toBe(3);
    expect([...t.cos.subarray(0, 3)]).toEqual([1, 1, 1]);
    expect([...t.sin.subarray(0, 3)]).toEqual([0, 0, 0]);
    const inv = inverseFrequencies(spec);
    expect(t.cos[4 * 3 + 1]).toBe(Math.fround(Math.cos(4 * inv[1])));
    expect(t.sin[2 * 3 + 2]).toBe(Math.fround(Math.sin(2 * inv[2])));
  });

  it('rotate-half pairs element i with i + d/2, not neighbours', () => {
    const spec = { headDim: 4, ropeTheta: 10000, ropeScaling: { type: 'default' } as RopeScaling };
    const t = ropeTables64(spec, 3);
    const x = Float64Array.of(1, 0, 0, 0);
    rotateHalf(x, 0, 2, t);
    // inv_freq[0] = 1: pair (x0, x2) rotated by angle 2
    expect(x[0]).toBeCloseTo(Math.cos(2), 15);
    expect(x[2]).toBeCloseTo(Math.sin(2), 15);
    expect(x[1]).toBe(0);
    expect(x[3]).toBe(0);
  });

  it('scores depend only on the relative position', () => {
    const t = ropeTables64(llama32, 40);
    const q = Float64Array.from({ length: 64 }, (_, i) => Math.sin(i + 1));
    const k = Float64Array.from({ length: 64 }, (_, i) => Math.cos(3 * i));
    const score = (pq: number, pk: number): number => {
      const a = q.slice();
      const b = k.slice();
      rotateHalf(a, 0, pq, t);
      rotateHalf(b, 0, pk, t);
      return a.reduce((s, v, i) => s + v * b[i], 0);
    };
    expect(score(10, 3)).toBeCloseTo(score(37, 30), 10);
    const norm = (v: Float64Array): number => Math.hypot(...v);
    const r = q.slice();
    rotateHalf(r, 0, 33, t);
    expect(norm(r)).toBeCloseTo(norm(q), 12);
  });
});
