import { describe, expect, it } from 'vitest';
import type { SegmentRanges } from '../interventions/perturb';
import { attentionMass, prefixColumn, regionOf } from './attention';

const SEG: SegmentRanges = { prefix: [0, 2], query: [2, 4], postfix: [4, 5] };

describe('attentionMass', () => {
  // B 1, heads 2, T 7 (5 prompt + 2 answer), S 7
  const T = 7;
  const probs = new Float32Array(2 * T * T);
  const set = (h: number, t: number, row: number[]) => probs.set(row, (h * T + t) * T);
  set(0, 4, [0.5, 0.1, 0.1, 0.1, 0.2, 0, 0]);
  set(0, 5, [0.25, 0.25, 0, 0, 0, 0.5, 0]);
  set(1, 4, [0, 0, 1, 0, 0, 0, 0]);
  set(1, 5, [0, 0, 0, 0, 0.5, 0.25, 0.25]);
  const t = { shape: [1, 2, T, T], data: probs };

  it('averages each region over the query positions, per head', () => {
    const m = Array.from(attentionMass(t, [4, 5], SEG));
    expect(m.slice(0, 4).map((x) => +x.toFixed(6))).toEqual([0.55, 0.1, 0.1, 0.25]);
    expect(m.slice(4, 8).map((x) => +x.toFixed(6))).toEqual([0, 0.5, 0.25, 0.25]);
    expect(prefixColumn(m, 1, 2).map((x) => +x.toFixed(6))).toEqual([0.55, 0]);
  });

  it('refuses a row that does not sum to 1 and a position outside the call', () => {
    expect(() => attentionMass(t, [3], SEG)).toThrow(/sums to 0/);
    expect(() => attentionMass(t, [7], SEG)).toThrow(/query position 7/);
  });

  it('regions: prompt segments, then the answer', () => {
    expect([0, 2, 4, 5, 9].map((j) => regionOf(j, SEG))).toEqual([
      'prefix',
      'query',
      'postfix',
      'answer',
      'answer',
    ]);
  });
});
