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

/**
 * Cell sizes for a layers × positions grid inside `width` pixels: cells at least 8 px wide (the SVG
 * grows wider and scrolls past that), at most 36 px; rows 10–22 px tall (18–28 px up to 8 layers).
 */
/** Width of the per-row "mean" column between the grid and the legend, px. */
export const MEAN_COLUMN = 38;

export function heatmapLayout(nLayers: number, nPositions: number, width: number): HeatmapLayout {
  // NOTE: the right margin holds the row-mean column and the legend.
  const margin: Margins = { top: 12, right: 76 + MEAN_COLUMN, bottom: 78, left: 44 };
  const avail = Math.max(0, width - margin.left - margin.right);
  const cellW = nPositions > 0 ? Math.max(8, Math.min(36, Math.floor(avail / nPositions))) : 0;
  // NOTE: few layers (a tiny demo) get squarer, taller rows so the map stays readable.
  const cellH =
    nLayers <= 8 ? Math.max(18, Math.min(28, cellW)) : Math.max(10, Math.min(22, Math.round(cellW * 0.8)));
  return {
    width: margin.left + margin.right + cellW * nPositions,
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
 * The heatmap's colour: sequential (white → blue) when every value is ≥ 0, diverging around 0
 * (orange ← white → blue) when some are negative, so "no effect" is always white. NaN is light grey.
 */
export function cellColour(values: readonly number[]): {
  colour: CellColour;
  domain: [number, number];
  diverging: boolean;
} {
  const ext = finiteExtent(values) ?? [0, 1];
  const nan = '#e6e8ec';
  if (ext[0] >= 0) {
    const hi = ext[1] > 0 ? ext[1] : 1;
    const s = d3.scaleSequential(d3.interpolateBlues).domain([0, hi]);
    return { colour: (v) => (Number.isFinite(v) ? s(v) : nan), domain: [0, hi], diverging: false };
  }
  const m = Math.max(Math.abs(ext[0]), Math.abs(ext[1])) || 1;
  const s = d3.scaleDiverging((t: number) => d3.interpolatePuOr(1 - t)).domain([-m, 0, m]);
  return { colour: (v) => (Number.isFinite(v) ? s(v) : nan), domain: [-m, m], diverging: true };
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
