import * as d3 from 'd3';
import { describe, expect, it } from 'vitest';
import {
  finiteExtent,
  heatmapLayout,
  LEGEND_WIDTH,
  legendOffset,
  NAN_COLOUR,
  RESTORATION_DOMAIN,
  restorationColour,
  rowSummaries,
} from './scales';

const lightness = (c: string) => d3.hsl(d3.color(c)!).l;

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
  it('colours restoration on one fixed, symmetric scale: 0 white, 1 dark, a cell at 0.1 faint beside 0.85', () => {
    const { colour, domain } = restorationColour();
    expect(domain).toEqual([-1, 1]);
    expect(RESTORATION_DOMAIN).toEqual([-1, 1]);
    // zero is the neutral middle: near white
    const mid = d3.color(colour(0))!.rgb();
    expect(Math.min(mid.r, mid.g, mid.b)).toBeGreaterThan(220);
    // a small cell stays close to white; the full-prefix patch's value is dark
    expect(lightness(colour(0.1))).toBeGreaterThan(0.88);
    expect(lightness(colour(0.85))).toBeLessThan(0.4);
    expect(lightness(colour(0.1)) - lightness(colour(0.85))).toBeGreaterThan(0.5);
    // symmetric: −v is about as far from white as v, on the other hue (orange: more red than blue)
    expect(Math.abs(lightness(colour(-0.5)) - lightness(colour(0.5)))).toBeLessThan(0.1);
    const neg = d3.color(colour(-0.5))!.rgb();
    const pos = d3.color(colour(0.5))!.rgb();
    expect(neg.r).toBeGreaterThan(neg.b);
    expect(pos.b).toBeGreaterThan(pos.r);
    // beyond the domain: the end colours, not a new scale
    expect(colour(3)).toBe(colour(1));
    expect(colour(-3)).toBe(colour(-1));
    expect(colour(Number.NaN)).toBe(NAN_COLOUR);
  });
  it('places a value on the legend, clamped to its ends', () => {
    expect(legendOffset(0, [-1, 1], LEGEND_WIDTH)).toBe(LEGEND_WIDTH / 2);
    expect(legendOffset(0.85, [-1, 1], 200)).toBeCloseTo(185, 9);
    expect(legendOffset(5, [-1, 1], 200)).toBe(200);
    expect(legendOffset(-5, [-1, 1], 200)).toBe(0);
    expect(legendOffset(Number.NaN, [-1, 1], 200)).toBe(0);
  });
  it('leaves room for the legend however few positions there are', () => {
    const l = heatmapLayout(4, 2, 320);
    expect(l.width).toBeGreaterThanOrEqual(l.margin.left + LEGEND_WIDTH);
  });
  it('summarises rows', () => {
    const { mean, max } = rowSummaries([1, 3, Number.NaN, Number.NaN], 2, 2);
    expect(mean[0]).toBe(2);
    expect(max[0]).toBe(3);
    expect(Number.isNaN(mean[1])).toBe(true);
  });
});
