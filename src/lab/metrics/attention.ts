// Attention mass: how much of an answer position's attention lands on the prompt's prefix, query and
// postfix and on the answer tokens before it, per head, from the engine's attention-probability taps
// (`attn.{l}`, [B, heads, T, S], 0 where masked). Pure array code, fp64 accumulation: it never runs a
// model; lab.ts feeds it the taps.

import type { Tensor } from '../../engine/types';
import type { SegmentRanges } from '../interventions/perturb';
import { ATTENTION_REGIONS, type AttentionRegion } from '../spec/results';

/** Which region key slot j belongs to: a prompt segment, or 'answer' at and after the prompt's end. */
export function regionOf(j: number, segments: SegmentRanges): AttentionRegion {
  for (const seg of ['prefix', 'query', 'postfix'] as const) {
    const [s, e] = segments[seg];
    if (j >= s && j < e) return seg;
  }
  if (j >= segments.postfix[1]) return 'answer';
  throw new RangeError(`key slot ${j} is in no segment`);
}

/**
 * Mean over `queryRows` (positions in the tapped call) of the probability mass on each region, per
 * head: [heads × regions] (ATTENTION_REGIONS order) from one layer's probabilities `probs`
 * [B, heads, T, S] at batch row `row`. `keyOffset` is the absolute slot of key 0 (the cache length
 * before the call, 0 for a full forward). Throws when a query row's probabilities do not sum to 1
 * within `tol` (a masked or broken row would silently shift the mass).
 */
export function attentionMass(
  probs: Tensor,
  queryRows: readonly number[],
  segments: SegmentRanges,
  opts: { row?: number; keyOffset?: number; tol?: number } = {},
): Float64Array {
  const [B, nH, T, S] = probs.shape;
  const row = opts.row ?? 0;
  const keyOffset = opts.keyOffset ?? 0;
  const tol = opts.tol ?? 1e-3;
  if (probs.shape.length !== 4 || B * nH * T * S !== probs.data.length)
    throw new RangeError(`attention probabilities have shape [${probs.shape}], expected [B, heads, T, S]`);
  if (row < 0 || row >= B) throw new RangeError(`row ${row} ∉ 0..${B - 1}`);
  if (queryRows.length === 0) throw new RangeError('attention mass needs at least one query position');
  const R = ATTENTION_REGIONS.length;
  const regionIdx = new Int32Array(S);
  for (let j = 0; j < S; j++) regionIdx[j] = ATTENTION_REGIONS.indexOf(regionOf(keyOffset + j, segments));
  const out = new Float64Array(nH * R);
  for (let h = 0; h < nH; h++) {
    for (const t of queryRows) {
      if (!Number.isInteger(t) || t < 0 || t >= T) throw new RangeError(`query position ${t} ∉ 0..${T - 1}`);
      const o = ((row * nH + h) * T + t) * S;
      let sum = 0;
      for (let j = 0; j < S; j++) {
        const p = probs.data[o + j];
        out[h * R + regionIdx[j]] += p;
        sum += p;
      }
      if (Math.abs(sum - 1) > tol)
        throw new RangeError(`head ${h}, query ${t}: attention sums to ${sum}, not 1`);
    }
    for (let r = 0; r < R; r++) out[h * R + r] /= queryRows.length;
  }
  return out;
}

/** The prefix column of a [layers × heads × regions] mass array: [layers × heads]. */
export function prefixColumn(mass: ArrayLike<number>, layers: number, heads: number): number[] {
  const R = ATTENTION_REGIONS.length;
  const p = ATTENTION_REGIONS.indexOf('prefix');
  return Array.from({ length: layers * heads }, (_, i) => mass[i * R + p]);
}
