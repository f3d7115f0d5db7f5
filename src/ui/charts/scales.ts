// Pure layout and colour-scale helpers shared by the d3 charts (heatmap, bars, layer lines), kept apart
// from rendering so they can be unit-tested in Node. Must never touch the DOM.
import * as d3 from 'd3';

export interface Margins {
  top: number;
  right: number;
  bottom: number;
  left: number;
}

export interface HeatmapLayout {
  width: number;
  height: number;
  margin: Margins;
  cellW: number;
  cellH: number;
}

/** Width of the per-row "mean" column right of the grid, px. */
export const MEAN_COLUMN = 38;
/** The colour legend under the token labels: its bar's length and the height of the whole block, px. */
export const LEGEND_WIDTH = 200;
export const LEGEND_BLOCK = 64;
/** Height of the token-label band under the grid, px. */
export const LABEL_BAND = 78;

/**
 * Cell sizes for a layers × positions grid inside `width` pixels: cells at least 8 px wide (the SVG
 * grows wider and scrolls past that), at most 36 px; rows 10–22 px tall (18–28 px up to 8 layers). The
 * row-mean column sits right of the grid; the legend under the token labels, starting at the grid's
 * left edge, so it stays in view on a narrow screen even when the grid scrolls.
 */
export function heatmapLayout(nLayers: number, nPositions: number, width: number): HeatmapLayout {
  const margin: Margins = { top: 12, right: MEAN_COLUMN + 8, bottom: LABEL_BAND + LEGEND_BLOCK, left: 44 };
  const avail = Math.max(0, width - margin.left - margin.right);
  const cellW = nPositions > 0 ? Math.max(8, Math.min(36, Math.floor(avail / nPositions))) : 0;
  // NOTE: few layers (a tiny demo) get squarer, taller rows so the map stays readable.
  const cellH =
    nLayers <= 8 ? Math.max(18, Math.min(28, cellW)) : Math.max(10, Math.min(22, Math.round(cellW * 0.8)));
  return {
    // NOTE: at least as wide as the legend and its end labels, however few positions there are
    width: Math.max(margin.left + margin.right + cellW * nPositions, margin.left + LEGEND_WIDTH + 40),
    height: margin.top + margin.bottom + cellH * nLayers,
    margin,
    cellW,
    cellH,
  };
}

/** Finite extent of values, or null when none is finite. */
export function finiteExtent(values: readonly number[]): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

export type CellColour = (v: number) => string;

/**
 * The heatmap's fixed colour domain in restoration units: 0 = the finetuned model's first answer token
 * (white), 1 = fully back to Base's (dark blue), −1 = as far again on the other side (dark orange).
 * NOTE: never fitted to the data: a map whose cells reach 0.1 must look faint, not dramatic.
 */
export const RESTORATION_DOMAIN: readonly [number, number] = [-1, 1];
/** Colour of a NaN (not computed) cell. */
export const NAN_COLOUR = '#e6e8ec';

/**
 * Diverging orange ← white → blue over `RESTORATION_DOMAIN`, the same for every map; values beyond the
 * domain take its end colours. NaN is light grey.
 */
export function restorationColour(): { colour: CellColour; domain: [number, number] } {
  const [lo, hi] = RESTORATION_DOMAIN;
  const s = d3
    .scaleDiverging((t: number) => d3.interpolatePuOr(1 - t))
    .domain([lo, 0, hi])
    .clamp(true);
  return { colour: (v) => (Number.isFinite(v) ? s(v) : NAN_COLOUR), domain: [lo, hi] };
}

/** Where a value sits along a legend of `length` px drawn left (domain start) to right, clamped. */
export function legendOffset(v: number, domain: readonly [number, number], length: number): number {
  const t = (v - domain[0]) / (domain[1] - domain[0]);
  return Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * length;
}

/** Per-layer summaries of a row-major layers × positions grid: mean and max of the finite cells. */
export function rowSummaries(
  values: readonly number[],
  nLayers: number,
  nPositions: number,
): { mean: number[]; max: number[] } {
  const mean: number[] = [];
  const max: number[] = [];
  for (let l = 0; l < nLayers; l++) {
    let s = 0;
    let n = 0;
    let m = -Infinity;
    for (let p = 0; p < nPositions; p++) {
      const v = values[l * nPositions + p];
      if (!Number.isFinite(v)) continue;
      s += v;
      n++;
      if (v > m) m = v;
    }
    mean.push(n ? s / n : Number.NaN);
    max.push(n ? m : Number.NaN);
  }
  return { mean, max };
}
