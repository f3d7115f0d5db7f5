// Which layer a patching heatmap points to, in words: the layer whose cells restore most on average,
// the runner-up, the strongest single cell, and whether any layer stands out at all. Also the row labels
// (a residual map's rows are the stream entering each layer, and its last row is after the last layer).
// Pure: no DOM, no model; it only summarises the values it is given and never invents a cell.
import type { PatchComponent } from '../../lab/spec/experiment';
import { cellColour, rowSummaries } from './scales';

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
  /** the colour legend's top value (the renderer's scale): what the darkest positive colour means */
  scaleTop: number;
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
  return { ranked, cell, standsOut, negative, scaleTop: cellColour(d.values).domain[1] };
}

/**
 * Row labels and the axis title. K/V rows are layers. Residual rows are sites: row l is the stream
 * entering layer l (row 0: the token embeddings), the last row the output of the last layer ("out").
 */
export function heatmapRows(
  component: PatchComponent,
  layers: readonly number[],
  numLayers: number,
): { labels: string[]; title: string } {
  if (component === 'kv') return { labels: layers.map(String), title: 'layer (its K/V)' };
  return {
    labels: layers.map((l) => (l >= numLayers ? 'out' : String(l))),
    title: 'residual into layer',
  };
}
