import { describe, expect, it } from 'vitest';
import { heatmapRows, readPerLayer, shareWords, summarizeHeatmap } from './heatmap-summary';

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
  });

  it('does not single out a layer when the means are close or all tiny', () => {
    expect(summarizeHeatmap(grid([[0.027], [0.021]])).standsOut).toBe(false);
    expect(summarizeHeatmap(grid([[0.009], [0.001]])).standsOut).toBe(false);
    expect(summarizeHeatmap(grid([[0.03], [-0.01]])).standsOut).toBe(true);
    const none = summarizeHeatmap(grid([[NaN, NaN]]));
    expect(none).toMatchObject({ ranked: [], cell: null, standsOut: false, negative: false });
  });
});

describe('readPerLayer', () => {
  it('ranks layers by their all-prefix-positions patch and reads the best against the full patch', () => {
    const r = readPerLayer({ layers: [0, 1, 2, 3], values: [0.1, 0.6, NaN, 0.3], allLayers: 0.8 });
    expect(r.ranked).toEqual([
      { layer: 1, value: 0.6 },
      { layer: 3, value: 0.3 },
      { layer: 0, value: 0.1 },
    ]);
    expect(r.full).toBe(0.8);
    expect(r.share).toBeCloseTo(0.75, 12);
    expect(r.clear).toBe(true); // 0.6 ≥ 1.25 × 0.3
    expect(shareWords(r.share!)).toBe('most');
  });
  it('says when the strongest layer is only narrowly ahead', () => {
    expect(readPerLayer({ layers: [0, 3], values: [0.52, 0.6], allLayers: 0.85 }).clear).toBe(false);
    expect(readPerLayer({ layers: [0, 3], values: [-0.1, 0.05], allLayers: 0.85 }).clear).toBe(true);
    expect(readPerLayer({ layers: [0, 3], values: [-0.1, -0.05], allLayers: 0.85 }).clear).toBe(false);
  });
  it('has no share when the full patch is unknown or restores nothing', () => {
    expect(readPerLayer({ layers: [0], values: [0.2], allLayers: NaN }).share).toBeNull();
    expect(readPerLayer({ layers: [0], values: [0.2], allLayers: -0.1 }).share).toBeNull();
    expect(readPerLayer({ layers: [0, 1], values: [NaN, NaN], allLayers: 0.5 })).toMatchObject({
      ranked: [],
      share: null,
    });
  });
  it('words a share: a cell at 0.1 beside a full patch of 0.85 is a small part', () => {
    expect(shareWords(0.1 / 0.85)).toBe('a small part');
    expect(shareWords(0.3)).toBe('part');
    expect(shareWords(0.9)).toBe('nearly all');
    expect(shareWords(-0.2)).toBe('none');
  });
});

describe('heatmapRows', () => {
  it('K/V rows are layers; residual rows enter each layer: 0 the embeddings, the last “out”', () => {
    expect(heatmapRows('kv', [0, 1, 2, 3], 4)).toEqual({
      labels: ['0', '1', '2', '3'],
      title: 'layer (its K/V)',
      names: ['layer 0', 'layer 1', 'layer 2', 'layer 3'],
    });
    const r = heatmapRows('resid', [0, 1, 2, 3, 4], 4);
    expect(r.labels).toEqual(['0', '1', '2', '3', 'out']);
    expect(r.title).toBe('residual into layer');
    expect(r.names[0]).toBe('the embeddings (residual into layer 0)');
    expect(r.names[2]).toBe('the residual into layer 2');
    expect(r.names[4]).toBe('the output of the last layer');
    expect(r.key).toBe('rows: 0 = embeddings … out = after layer 3');
  });
});
