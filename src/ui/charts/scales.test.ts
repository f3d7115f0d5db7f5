import * as d3 from 'd3';
import { describe, expect, it } from 'vitest';
import { cellColour, finiteExtent, heatmapLayout, rowSummaries } from './scales';

describe('chart scales', () => {
  it('sizes heatmap cells within bounds', () => {
    const l = heatmapLayout(4, 10, 600);
    expect(l.cellW).toBe(36);
    expect(l.height).toBe(l.margin.top + l.margin.bottom + 4 * l.cellH);
    const tight = heatmapLayout(30, 200, 600);
    expect(tight.cellW).toBe(8);
    expect(tight.width).toBeGreaterThan(600);
  });
  it('ignores NaN in extents', () => {
    expect(finiteExtent([Number.NaN, 2, -1, Infinity])).toEqual([-1, 2]);
    expect(finiteExtent([Number.NaN])).toBeNull();
  });
  it('uses a sequential scale for non-negative values and a diverging one otherwise', () => {
    const seq = cellColour([0, 0.5, 1]);
    expect(seq.diverging).toBe(false);
    expect(seq.colour(0)).toBe(seq.colour(0)); // stable
    expect(seq.colour(Number.NaN)).toBe('#e6e8ec');
    const div = cellColour([-2, 1]);
    expect(div.diverging).toBe(true);
    expect(div.domain).toEqual([-2, 2]);
    // zero is the neutral middle: near white
    const mid = d3.color(div.colour(0))!.rgb();
    expect(Math.min(mid.r, mid.g, mid.b)).toBeGreaterThan(200);
  });
  it('summarises rows', () => {
    const { mean, max } = rowSummaries([1, 3, Number.NaN, Number.NaN], 2, 2);
    expect(mean[0]).toBe(2);
    expect(max[0]).toBe(3);
    expect(Number.isNaN(mean[1])).toBe(true);
  });
});
