// Pure helpers of the attention and per-head views: the heatmap data they hand to the shared heatmap
// renderer (charts/heatmap.ts), per-layer region means, the strongest head, and the CSV exports. Never
// computes a model quantity: every number comes from the worker's AttentionResult / SweepResult.
import type { AttentionResult, SweepResult } from '../lab/spec/results';
import type { HeatmapData } from './charts/heatmap';
import { rowSummaries } from './charts/scales';
import { csvRow } from './export-results';

/** The finetuned − base prefix-mass grid as heatmap data: rows layers, columns query heads. */
export function prefixDiffHeatmap(r: AttentionResult): HeatmapData {
  const heads = Array.from({ length: r.heads }, (_, h) => h);
  return {
    layers: r.layers,
    positions: heads,
    positionLabels: heads.map((h) => `h${h}`),
    values: r.prefixDiff,
    metric: 'Δ prefix mass (finetuned − base)',
    rowMeans: rowSummaries(r.prefixDiff, r.layers.length, r.heads).mean,
  };
}

/** A per-head sweep as heatmap data: rows layers, columns KV heads. */
export function headSweepHeatmap(s: SweepResult): HeatmapData {
  return {
    layers: s.layers,
    positions: s.positions,
    positionLabels: s.positionLabels,
    values: s.values,
    metric: s.metric,
    rowMeans: rowSummaries(s.values, s.layers.length, s.positions.length).mean,
  };
}

/** Mean over heads of one condition's mass: [layers][regions]. */
export function regionMeans(r: AttentionResult, mass: readonly number[]): number[][] {
  const R = r.regions.length;
  return r.layers.map((_, li) =>
    r.regions.map((_, g) => {
      let s = 0;
      for (let h = 0; h < r.heads; h++) s += mass[(li * r.heads + h) * R + g];
      return s / r.heads;
    }),
  );
}

/** The (layer, head) with the largest |finetuned − base| prefix mass, with both masses. */
export function strongestPrefixHead(
  r: AttentionResult,
): { layer: number; head: number; diff: number; base: number; finetuned: number } | null {
  let best = -1;
  r.prefixDiff.forEach((d, i) => {
    if (Number.isFinite(d) && (best < 0 || Math.abs(d) > Math.abs(r.prefixDiff[best]))) best = i;
  });
  if (best < 0) return null;
  return {
    layer: r.layers[Math.floor(best / r.heads)],
    head: best % r.heads,
    diff: r.prefixDiff[best],
    base: r.basePrefixMass[best],
    finetuned: r.finetunedPrefixMass[best],
  };
}

/**
 * Every condition × layer × head × region, then the finetuned − base prefix rows
 * (condition 'finetuned-minus-base', region 'prefix').
 */
export function attentionToCsv(r: AttentionResult): string {
  const lines = [csvRow(['condition', 'layer', 'head', 'region', 'mass', 'answer_tokens'])];
  const R = r.regions.length;
  for (const c of r.conditions) {
    if (c.error) continue;
    r.layers.forEach((layer, li) => {
      for (let h = 0; h < r.heads; h++)
        r.regions.forEach((g, gi) =>
          lines.push(csvRow([c.id, layer, h, g, c.mass[(li * r.heads + h) * R + gi], r.answerTokens])),
        );
    });
  }
  r.layers.forEach((layer, li) => {
    for (let h = 0; h < r.heads; h++)
      lines.push(
        csvRow(['finetuned-minus-base', layer, h, 'prefix', r.prefixDiff[li * r.heads + h], r.answerTokens]),
      );
  });
  return lines.join('\n') + '\n';
}

/** layer, KV head, value, and the positions each cell patched. */
export function headSweepToCsv(s: SweepResult): string {
  const lines = [csvRow(['metric', 'layer', 'kv_head', 'value', 'patched_positions'])];
  const patched = (s.patchedPositions ?? []).join(' ');
  s.layers.forEach((layer, li) =>
    s.positions.forEach((h, hi) =>
      lines.push(csvRow([s.metric, layer, h, s.values[li * s.positions.length + hi], patched])),
    ),
  );
  return lines.join('\n') + '\n';
}
