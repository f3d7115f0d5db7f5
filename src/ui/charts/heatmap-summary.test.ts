import { describe, expect, it } from 'vitest';
import { heatmapRows, summarizeHeatmap } from './heatmap-summary';

const grid = (rows: number[][]) => ({
  layers: rows.map((_, i) => i),
  positions: rows[0].map((_, i) => 10 + i),
  positionLabels: rows[0].map((_, i) => `t${i}`),
  values: rows.flat(),
});

describe('summarizeHeatmap', () => {
  it('names the layer with the highest mean, its runner-up and the strongest cell', () => {
    const s = summarizeHeatmap(
      grid([
        [0.01, 0.02, 0.0],
        [0.3, 0.1, NaN],
        [0.05, 0.4, -0.2],
      ]),
    );
    expect(s.ranked.map((r) => r.layer)).toEqual([1, 2, 0]);
    expect(s.ranked[0].mean).toBeCloseTo(0.2, 12); // NaN left out of the mean
    expect(s.cell).toEqual({ layer: 2, position: 11, label: 't1', value: 0.4 });
    expect(s.standsOut).toBe(true); // 0.2 ≥ 1.5 × 0.0833
    expect(s.negative).toBe(true);
    expect(s.scaleTop).toBeCloseTo(0.4, 12);
  });

  it('does not single out a layer when the means are close or all tiny', () => {
    expect(summarizeHeatmap(grid([[0.027], [0.021]])).standsOut).toBe(false);
    expect(summarizeHeatmap(grid([[0.009], [0.001]])).standsOut).toBe(false);
    expect(summarizeHeatmap(grid([[0.03], [-0.01]])).standsOut).toBe(true);
    const none = summarizeHeatmap(grid([[NaN, NaN]]));
    expect(none).toMatchObject({ ranked: [], cell: null, standsOut: false, negative: false });
  });
});

describe('heatmapRows', () => {
  it('K/V rows are layers; residual rows enter each layer and the last is “out”', () => {
    expect(heatmapRows('kv', [0, 1, 2, 3], 4)).toEqual({
      labels: ['0', '1', '2', '3'],
      title: 'layer (its K/V)',
    });
    expect(heatmapRows('resid', [0, 1, 2, 3, 4], 4)).toEqual({
      labels: ['0', '1', '2', '3', 'out'],
      title: 'residual into layer',
    });
  });
});
