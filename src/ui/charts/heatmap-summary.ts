// Which layer a patching heatmap points to, in words: the layer whose cells restore most on average,
// the runner-up, the strongest single cell, and whether any layer stands out at all; the per-layer patch
// (every prefix position of one layer at once) read against the full-prefix patch; and the row labels
// (a residual map's rows are the stream entering each layer: row 0 the embeddings, the last row after the
// last layer).
// Pure: no DOM, no model; it only summarises the values it is given and never invents a cell.
import type { PatchComponent } from '../../lab/spec/experiment';
import { rowSummaries } from './scales';

export interface LayerPick {
  layer: number;
  /** mean over the row's finite cells */
  mean: number;
  /** the row's largest finite cell */
  max: number;
}

export interface HeatmapSummary {
  /** layers by mean restoration, highest first (rows without a finite cell left out) */
  ranked: LayerPick[];
  /** the strongest single cell */
  cell: { layer: number; position: number; label: string; value: number } | null;
  /**
   * true when the top layer's mean is clearly above the others (at least 0.01 and 1.5 × the runner-up's,
   * or the only row): otherwise the map does not single out a layer
   */
  standsOut: boolean;
  /** some cell is below 0: that patch moves the first answer token further from base */
  negative: boolean;
}

export interface SummaryInput {
  layers: readonly number[];
  positions: readonly number[];
  positionLabels: readonly string[];
  values: readonly number[];
}

/** Minimum top-layer mean for "stands out" (restoration units: 1 = fully back to base). */
export const STANDS_OUT_MIN = 0.01;
/** The top layer's mean must be this many times the runner-up's. */
export const STANDS_OUT_RATIO = 1.5;

export function summarizeHeatmap(d: SummaryInput): HeatmapSummary {
  const nL = d.layers.length;
  const nP = d.positions.length;
  const { mean, max } = rowSummaries(d.values, nL, nP);
  const ranked: LayerPick[] = d.layers
    .map((layer, i) => ({ layer, mean: mean[i], max: max[i] }))
    .filter((r) => Number.isFinite(r.mean))
    .sort((a, b) => b.mean - a.mean || a.layer - b.layer);
  let cell: HeatmapSummary['cell'] = null;
  for (let r = 0; r < nL; r++)
    for (let c = 0; c < nP; c++) {
      const v = d.values[r * nP + c];
      if (Number.isFinite(v) && (cell === null || v > cell.value))
        cell = {
          layer: d.layers[r],
          position: d.positions[c],
          label: d.positionLabels[c] ?? String(d.positions[c]),
          value: v,
        };
    }
  const [top, next] = ranked;
  const standsOut =
    !!top &&
    top.mean >= STANDS_OUT_MIN &&
    (!next || next.mean <= 0 || top.mean >= STANDS_OUT_RATIO * next.mean);
  const negative = d.values.some((v) => Number.isFinite(v) && v < 0);
  return { ranked, cell, standsOut, negative };
}

export interface PerLayerInput {
  layers: readonly number[];
  /** restoration with every prefix position of one layer patched, one per layer */
  values: readonly number[];
  /** restoration with every layer patched at those positions: the full-prefix patch */
  allLayers: number;
}

export interface PerLayerReading {
  /** layers by restoration, highest first (NaN left out) */
  ranked: { layer: number; value: number }[];
  /** the full-prefix patch, NaN when unknown */
  full: number;
  /** the strongest layer's share of the full-prefix patch (null when the full patch is ≤ 0 or unknown) */
  share: number | null;
  /** the strongest layer is clearly ahead: at least `CLEAR_RATIO` × the runner-up (or the only one) */
  clear: boolean;
}

/** The strongest layer's value must be this many times the runner-up's to be named without "narrowly". */
export const CLEAR_RATIO = 1.25;

/** The per-layer patch in words: the strongest layer, and how much of the full-prefix patch it gives. */
export function readPerLayer(d: PerLayerInput): PerLayerReading {
  const ranked = d.layers
    .map((layer, i) => ({ layer, value: d.values[i] }))
    .filter((x) => Number.isFinite(x.value))
    .sort((a, b) => b.value - a.value || a.layer - b.layer);
  const full = Number.isFinite(d.allLayers) ? d.allLayers : Number.NaN;
  const share = ranked.length && full > 0 ? ranked[0].value / full : null;
  const [top, next] = ranked;
  const clear = !!top && top.value > 0 && (!next || next.value <= 0 || top.value >= CLEAR_RATIO * next.value);
  return { ranked, full, share, clear };
}

/**
 * How strong a restoration looks next to the full-prefix patch, in words: what the fixed colour scale
 * shows (a cell at 0.1 beside a full patch of 0.85 is "a small part").
 */
export function shareWords(share: number): string {
  if (share >= 0.8) return 'nearly all';
  if (share >= 0.5) return 'most';
  if (share >= 0.2) return 'part';
  if (share > 0) return 'a small part';
  return 'none';
}

/**
 * Row labels, the axis title and plain names. K/V rows are layers. Residual rows are sites: row l is
 * the stream entering layer l (row 0: the token embeddings), the last row the output of the last layer
 * ("out").
 */
export function heatmapRows(
  component: PatchComponent,
  layers: readonly number[],
  numLayers: number,
): { labels: string[]; title: string; names: string[]; key?: string } {
  if (component === 'kv')
    return { labels: layers.map(String), title: 'layer (its K/V)', names: layers.map((l) => `layer ${l}`) };
  return {
    labels: layers.map((l) => (l >= numLayers ? 'out' : String(l))),
    title: 'residual into layer',
    names: layers.map((l) =>
      l >= numLayers
        ? 'the output of the last layer'
        : l === 0
          ? 'the embeddings (residual into layer 0)'
          : `the residual into layer ${l}`,
    ),
    key: `rows: 0 = embeddings … out = after layer ${numLayers - 1}`,
  };
}
