// Activation patching plans (docs/science.md "K/V patching", "Residual patching"):
// a patch spec + the prompt's segments + model dims → which
// (site, position) pairs are patched, and the dense `PatchSet` masks/values the engine consumes, filled
// from source (base-model) activations and placed in the right batch rows.
// Pure array code: this module must never run a model, import ORT, or guess a position it cannot
// justify (it throws instead).

import type { PatchSet, Tensor } from '../../engine/types';
import type { LayerSelection, PatchComponent, PositionSelection } from '../spec/experiment';
import type { SegmentRanges } from './perturb';

/** Structurally the experiment spec's `patch`. */
export interface PatchSpec {
  component: PatchComponent;
  layers: LayerSelection;
  positions: PositionSelection;
  /** which model the values come from (e.g. 'base'); resolved by the caller */
  source?: string;
  /**
   * K/V only: patch just these KV heads (GQA: KV-head indices, 0..kvHeads−1); the other heads keep the
   * target model's own K/V from its unpatched run on the same prompt (`BuildPatchArgs.own`). Default all.
   */
  heads?: number[];
}

export interface ModelDims {
  numLayers: number;
  hidden: number;
  kvHeads: number;
  headDim: number;
}

/**
 * Sites for a component, sorted and de-duplicated. K/V sites are layers 0..numLayers−1; residual sites
 * are 0..numLayers (site l = the stream entering layer l, site numLayers = after the last layer).
 */
export function resolveLayers(spec: LayerSelection, component: PatchComponent, numLayers: number): number[] {
  if (!Number.isInteger(numLayers) || numLayers < 1)
    throw new RangeError(`numLayers must be ≥ 1, got ${numLayers}`);
  const max = component === 'resid' ? numLayers : numLayers - 1;
  let list: number[];
  if (spec === 'all') list = Array.from({ length: max + 1 }, (_, i) => i);
  else if (Array.isArray(spec)) list = spec;
  else {
    if (!Number.isInteger(spec.from) || !Number.isInteger(spec.to) || spec.from > spec.to) {
      throw new RangeError(
        `layer range {from: ${spec.from}, to: ${spec.to}} is not an ascending integer range`,
      );
    }
    list = Array.from({ length: spec.to - spec.from + 1 }, (_, i) => spec.from + i);
  }
  for (const l of list) {
    if (!Number.isInteger(l) || l < 0 || l > max) {
      throw new RangeError(`${component} site ${l} is outside 0..${max}`);
    }
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

export interface PositionResolution {
  /** absolute token positions, ascending */
  positions: number[];
  /** how many were asked for (for 'query-control': the prefix length) */
  requested: number;
  /** false when fewer positions than requested could be given (a query shorter than the prefix) */
  matched: boolean;
}

const range = (s: number, e: number) => Array.from({ length: e - s }, (_, i) => s + i);

/**
 * Positions for a spec. 'query-control' is the paper's control: as many positions as the prefix has,
 * taken from the start of the query; when the query is shorter, all of it, with `matched: false`.
 * Explicit positions are checked against `seqLen` when given.
 */
export function resolvePositions(
  spec: PositionSelection,
  segments: SegmentRanges,
  seqLen?: number,
): PositionResolution {
  const total = seqLen ?? segments.postfix[1];
  if (typeof spec === 'object') {
    for (const p of spec.explicit) {
      if (!Number.isInteger(p) || p < 0 || p >= total)
        throw new RangeError(`position ${p} is outside 0..${total - 1}`);
    }
    const positions = [...new Set(spec.explicit)].sort((a, b) => a - b);
    return { positions, requested: positions.length, matched: true };
  }
  if (spec === 'query-control') {
    const requested = segments.prefix[1] - segments.prefix[0];
    const [qs, qe] = segments.query;
    const positions = range(qs, Math.min(qe, qs + requested));
    return { positions, requested, matched: positions.length === requested };
  }
  if (!segments[spec]) throw new Error(`unknown position spec ${String(spec)}`);
  const [s, e] = segments[spec];
  return { positions: range(s, e), requested: e - s, matched: true };
}

/**
 * Map target positions to the source prompt's positions at the same offset within the same segment.
 * Use it when the source activations come from a different prompt — the paper takes base K/V from the
 * prompt with an EMPTY query (§4.2), so base postfix positions sit earlier than the target's.
 * Prefix and postfix must have the same length in both (as the paper's remapping requires); query
 * positions need a source query at least as long.
 *
 * NOTE: prefix activations depend only on prefix tokens (causal attention, same position ids), so base
 * prefix K/V or residuals from the empty-query prompt EQUAL those from the same prompt whenever the
 * prefix tokens are identical — the empty-query source is then just a cache shared by every question.
 * Not so for the postfix: its activations attend to the query, so an empty-query source differs.
 */
export function alignPositions(
  positions: readonly number[],
  target: SegmentRanges,
  source: SegmentRanges,
): number[] {
  return positions.map((p) => {
    for (const seg of ['prefix', 'query', 'postfix'] as const) {
      const [s, e] = target[seg];
      if (p < s || p >= e) continue;
      const off = p - s;
      const [ss, se] = source[seg];
      if (seg !== 'query' && se - ss !== e - s) {
        throw new Error(`${seg} has ${e - s} tokens in the target but ${se - ss} in the source`);
      }
      if (off >= se - ss)
        throw new Error(`query position ${p} has no counterpart in a ${se - ss}-token source query`);
      return ss + off;
    }
    throw new RangeError(`position ${p} is outside the target prompt`);
  });
}

export interface PatchSites {
  component: PatchComponent;
  sites: number[];
  positions: PositionResolution;
}

/** Which (site, position) pairs a spec patches: every site × every position. */
export function patchSites(
  spec: PatchSpec,
  segments: SegmentRanges,
  dims: ModelDims,
  seqLen?: number,
): PatchSites {
  return {
    component: spec.component,
    sites: resolveLayers(spec.layers, spec.component, dims.numLayers),
    positions: resolvePositions(spec.positions, segments, seqLen),
  };
}

/** Base-model taps: resid per site [1, T, hidden]; k / v per layer [1, T, kvHeads·headDim] (or [1, T, kvHeads, headDim]). */
export interface SourceActivations {
  resid?: Map<number, Tensor>;
  k?: Map<number, Tensor>;
  v?: Map<number, Tensor>;
}

export interface BatchLayout {
  batchSize: number;
  seqLen: number;
}

const widthOf = (component: PatchComponent, dims: ModelDims) =>
  component === 'resid' ? dims.hidden : dims.kvHeads * dims.headDim;

/** A view of one position's vector in a [Bsrc, Tsrc, …] (or [Tsrc, width]) tensor, source row 0. */
function sourceVector(
  t: Tensor | undefined,
  what: string,
  width: number,
  position: number,
  row = 0,
): Float32Array {
  if (!t) throw new Error(`source activations lack ${what}`);
  const [b, tLen] = t.shape.length === 2 ? [1, t.shape[0]] : [t.shape[0], t.shape[1]];
  if (b * tLen * width !== t.data.length) {
    throw new RangeError(`${what} has shape [${t.shape.join(', ')}], expected [B, T, ${width}]`);
  }
  if (position < 0 || position >= tLen)
    throw new RangeError(`${what}: source position ${position} ∉ 0..${tLen - 1}`);
  if (row < 0 || row >= b) throw new RangeError(`${what}: source row ${row} ∉ 0..${b - 1}`);
  const o = (row * tLen + position) * width;
  return t.data.subarray(o, o + width);
}

export interface PatchCell {
  component: PatchComponent;
  site: number;
  /** target position */
  position: number;
  /** target batch row */
  row: number;
  /** where to read the source; default `position` */
  sourcePosition?: number;
}

/** Set one (site, position, row) of `patches` from the source, allocating the site's arrays on first use. */
export function setPatchCell(
  patches: PatchSet,
  cell: PatchCell,
  source: SourceActivations,
  dims: ModelDims,
  batch: BatchLayout,
): void {
  const { batchSize: B, seqLen: T } = batch;
  const { component, site, position, row } = cell;
  const src = cell.sourcePosition ?? position;
  if (!Number.isInteger(row) || row < 0 || row >= B) throw new RangeError(`row ${row} ∉ 0..${B - 1}`);
  if (!Number.isInteger(position) || position < 0 || position >= T) {
    throw new RangeError(`position ${position} ∉ 0..${T - 1}`);
  }
  const maxSite = component === 'resid' ? dims.numLayers : dims.numLayers - 1;
  if (!Number.isInteger(site) || site < 0 || site > maxSite)
    throw new RangeError(`${component} site ${site} ∉ 0..${maxSite}`);
  const w = widthOf(component, dims);
  const at = row * T + position;
  if (component === 'resid') {
    patches.resid ??= new Map();
    let e = patches.resid.get(site);
    if (!e) {
      e = { mask: new Float32Array(B * T), value: new Float32Array(B * T * w) };
      patches.resid.set(site, e);
    }
    e.value.set(sourceVector(source.resid?.get(site), `resid.${site}`, w, src), at * w);
    e.mask[at] = 1;
  } else {
    patches.kv ??= new Map();
    let e = patches.kv.get(site);
    if (!e) {
      e = { mask: new Float32Array(B * T), k: new Float32Array(B * T * w), v: new Float32Array(B * T * w) };
      patches.kv.set(site, e);
    }
    e.k.set(sourceVector(source.k?.get(site), `k.${site}`, w, src), at * w);
    e.v.set(sourceVector(source.v?.get(site), `v.${site}`, w, src), at * w);
    e.mask[at] = 1;
  }
}

/**
 * One (layer, position, row) K/V cell that takes only `heads` from `source` and the other heads from
 * `own` (the target model's own k/v taps on the same prompt, read at `position`).
 *
 * NOTE: the graph blends whole K/V rows (`x·(1−m) + p·m`, m per position), so a per-head patch writes
 * the full row: the chosen heads' channels from the source, the rest from the target's own unpatched
 * run. At a single patched layer that is exact — the K/V a layer computes at the prefix depend only on
 * earlier layers, which the patch leaves alone — so the other heads are unchanged; with several layers
 * the other heads are held at the unpatched run's values. Every head chosen = the all-heads patch,
 * value for value (patch.test.ts, lab.test.ts).
 */
export function setHeadPatchCell(
  patches: PatchSet,
  cell: Omit<PatchCell, 'component'> & { heads: readonly number[] },
  source: SourceActivations,
  own: SourceActivations,
  dims: ModelDims,
  batch: BatchLayout,
): void {
  for (const h of cell.heads) {
    if (!Number.isInteger(h) || h < 0 || h >= dims.kvHeads)
      throw new RangeError(`KV head ${h} ∉ 0..${dims.kvHeads - 1}`);
  }
  setPatchCell(patches, { ...cell, component: 'kv', sourcePosition: cell.position }, own, dims, batch);
  const e = patches.kv!.get(cell.site)!;
  const w = dims.kvHeads * dims.headDim;
  const src = cell.sourcePosition ?? cell.position;
  const k = sourceVector(source.k?.get(cell.site), `k.${cell.site}`, w, src);
  const v = sourceVector(source.v?.get(cell.site), `v.${cell.site}`, w, src);
  const at = (cell.row * batch.seqLen + cell.position) * w;
  for (const h of cell.heads) {
    const o = h * dims.headDim;
    e.k.set(k.subarray(o, o + dims.headDim), at + o);
    e.v.set(v.subarray(o, o + dims.headDim), at + o);
  }
}

export interface BuildPatchArgs {
  spec: PatchSpec;
  segments: SegmentRanges;
  dims: ModelDims;
  batch: BatchLayout;
  source: SourceActivations;
  /** batch rows that get the patch; default every row (the source is broadcast into each) */
  rows?: number[];
  /** source position per resolved target position (e.g. from `alignPositions`); default the same */
  sourcePositions?: (positions: number[]) => number[];
  /** add to this set instead of a new one (same batch layout) */
  into?: PatchSet;
  /** the target model's own K/V taps on the same prompt: needed when `spec.heads` picks heads */
  own?: SourceActivations;
}

export interface BuiltPatch extends PatchSites {
  patches: PatchSet;
}

/** The dense PatchSet for one spec, broadcast into `rows`. */
export function buildPatchSet(args: BuildPatchArgs): BuiltPatch {
  const { spec, segments, dims, batch, source } = args;
  const sites = patchSites(spec, segments, dims, batch.seqLen);
  const rows = args.rows ?? range(0, batch.batchSize);
  const pos = sites.positions.positions;
  const srcPos = args.sourcePositions ? args.sourcePositions(pos) : pos;
  if (srcPos.length !== pos.length)
    throw new Error(`sourcePositions gave ${srcPos.length} positions for ${pos.length}`);
  const patches = args.into ?? {};
  const heads = spec.heads;
  if (heads && spec.component !== 'kv') throw new Error('heads apply to K/V patches only');
  if (heads && !args.own) throw new Error("a per-head patch needs the target model's own K/V");
  for (const site of sites.sites) {
    for (const row of rows) {
      pos.forEach((position, i) =>
        heads
          ? setHeadPatchCell(
              patches,
              { site, position, row, sourcePosition: srcPos[i], heads },
              source,
              args.own!,
              dims,
              batch,
            )
          : setPatchCell(
              patches,
              { component: spec.component, site, position, row, sourcePosition: srcPos[i] },
              source,
              dims,
              batch,
            ),
      );
    }
  }
  return { ...sites, patches };
}
