// The layer × position patching grid (TransformerLens' get_act_patch_resid_pre, here also for K/V):
// plan it as batches of cells — one batch row per cell, each patching a single (site, position) — run
// the batches through a caller-supplied callback, and collect a [layers × positions] result with
// progress and cancellation.
// This module must never know about the engine: it calls `runBatch` and never touches ORT or a model.

import { CancelledError } from '../../common/abort';
import type { PatchSet } from '../../engine/types';
import type { PatchComponent } from '../spec/experiment';
import { setPatchCell, type ModelDims, type SourceActivations } from './patch';

export interface SweepCell {
  /** flat index into the result grid: layerIndex · positions.length + positionIndex */
  index: number;
  layerIndex: number;
  positionIndex: number;
  /** residual site or K/V layer */
  site: number;
  position: number;
}

export interface SweepPlan {
  component: PatchComponent;
  metric: string;
  layers: number[];
  positions: number[];
  maxBatchSize: number;
  order: SweepOrder;
  /**
   * cells cut into chunks of at most maxBatchSize: layer-major ('layer'), or position-major with every
   * chunk holding one position only ('position': the cells of a chunk share the unpatched prefix before it)
   */
  batches: SweepCell[][];
}

/** How planSweep orders and cuts the cells (see SweepPlan.batches). */
export type SweepOrder = 'layer' | 'position';

export interface SweepPlanArgs {
  component: PatchComponent;
  /** residual sites (0..numLayers) or K/V layers; e.g. from patch.resolveLayers */
  layers: readonly number[];
  /** e.g. every prefix position */
  positions: readonly number[];
  maxBatchSize: number;
  /** a name for the values, e.g. 'logit diff' or 'normalized restoration' */
  metric?: string;
  /** default 'layer' */
  order?: SweepOrder;
}

const isIndexList = (xs: readonly number[]) => xs.every((x) => Number.isInteger(x) && x >= 0);

export function planSweep(args: SweepPlanArgs): SweepPlan {
  const { component, layers, positions, maxBatchSize } = args;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  }
  if (layers.length === 0 || positions.length === 0)
    throw new RangeError('a sweep needs layers and positions');
  if (!isIndexList(layers) || !isIndexList(positions))
    throw new RangeError('layers and positions must be indices');
  if (new Set(layers).size !== layers.length || new Set(positions).size !== positions.length) {
    throw new RangeError('layers and positions must not repeat');
  }
  const cells: SweepCell[] = [];
  layers.forEach((site, li) =>
    positions.forEach((position, pi) =>
      cells.push({ index: li * positions.length + pi, layerIndex: li, positionIndex: pi, site, position }),
    ),
  );
  const order = args.order ?? 'layer';
  const groups =
    order === 'layer'
      ? [cells]
      : positions.map((_, pi) => layers.map((_, li) => cells[li * positions.length + pi]));
  const batches: SweepCell[][] = [];
  for (const g of groups)
    for (let i = 0; i < g.length; i += maxBatchSize) batches.push(g.slice(i, i + maxBatchSize));
  return {
    component,
    metric: args.metric ?? 'metric',
    layers: [...layers],
    positions: [...positions],
    maxBatchSize,
    order,
    batches,
  };
}

/**
 * The sweep's working grid: typed arrays filled batch by batch (lab.ts turns it into the plain-data
 * `SweepResult` of lab/spec/results.ts that the worker sends and the UI draws).
 */
export interface SweepGrid {
  component: PatchComponent;
  metric: string;
  layers: number[];
  positions: number[];
  /** [layers × positions], row-major by layer; NaN where not done (or where the metric was null) */
  values: Float64Array;
  /** 1 where the cell has been computed */
  done: Uint8Array;
}

export interface SweepProgress {
  /** cells computed so far (resumed ones included) */
  done: number;
  total: number;
  /** the result so far (live: later batches keep filling it) */
  result: SweepGrid;
}

export interface RunSweepOptions {
  onProgress?: (p: SweepProgress) => void;
  signal?: AbortSignal;
  /** skip the cells already done in this earlier (e.g. cancelled) result of the same plan */
  resume?: SweepGrid;
}

/** Rejection of a cancelled sweep; `partial` keeps every completed cell (resume with it). */
export class SweepAbortError extends CancelledError {
  readonly partial: SweepGrid;
  constructor(partial: SweepGrid) {
    super('sweep cancelled');
    this.partial = partial;
  }
}

/** Metric per cell, in the order given; null = the metric is undefined for that cell. */
export type RunBatch = (cells: SweepCell[], signal?: AbortSignal) => Promise<readonly (number | null)[]>;

function emptyResult(plan: SweepPlan): SweepGrid {
  const n = plan.layers.length * plan.positions.length;
  return {
    component: plan.component,
    metric: plan.metric,
    layers: [...plan.layers],
    positions: [...plan.positions],
    values: new Float64Array(n).fill(NaN),
    done: new Uint8Array(n),
  };
}

/**
 * Run the planned batches one after another through `runBatch`. Aborting rejects promptly with a
 * `SweepAbortError` (name 'AbortError') holding the cells completed before the abort; a batch still in
 * flight is dropped. `runBatch` receives the signal too, to stop its own work.
 */
export async function runSweep(
  plan: SweepPlan,
  runBatch: RunBatch,
  options: RunSweepOptions = {},
): Promise<SweepGrid> {
  const { onProgress, signal, resume } = options;
  const result = emptyResult(plan);
  const total = result.values.length;
  let doneCount = 0;
  if (resume) {
    if (
      resume.values.length !== total ||
      resume.component !== plan.component ||
      resume.layers.join() !== plan.layers.join() ||
      resume.positions.join() !== plan.positions.join()
    ) {
      throw new Error('the result to resume comes from a different sweep');
    }
    result.values.set(resume.values);
    result.done.set(resume.done);
    doneCount = resume.done.reduce((a, b) => a + b, 0);
  }

  for (const batch of plan.batches) {
    const todo = batch.filter((c) => !result.done[c.index]);
    if (todo.length === 0) continue;
    if (signal?.aborted) throw new SweepAbortError(result);
    let values: readonly (number | null)[];
    try {
      values = await raceAbort(runBatch(todo, signal), signal);
    } catch (err) {
      if (signal?.aborted) throw new SweepAbortError(result);
      throw err;
    }
    if (values.length !== todo.length) {
      throw new Error(`runBatch returned ${values.length} values for ${todo.length} cells`);
    }
    todo.forEach((c, i) => {
      const v = values[i];
      result.values[c.index] = v === null ? NaN : v;
      result.done[c.index] = 1;
    });
    doneCount += todo.length;
    onProgress?.({ done: doneCount, total, result });
  }
  if (signal?.aborted && doneCount < total) throw new SweepAbortError(result);
  return result;
}

/** `work`, or a rejection as soon as `signal` aborts (runSweep turns it into a SweepAbortError). */
async function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new CancelledError());
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    work.catch(() => {}); // NOTE: a dropped batch may still reject later; do not leave that unhandled
  }
}

export interface BatchPatchOptions {
  /** row of the first cell (leave rows before it free, e.g. for an unpatched baseline); default 0 */
  rowOffset?: number;
  /** default rowOffset + cells.length */
  batchSize?: number;
  /** source position for a target position (e.g. from patch.alignPositions); default the same */
  sourcePosition?: (position: number) => number;
  /**
   * the batch's tokens start at this prompt position (a run that continues a cache of the prompt's first
   * `positionOffset` tokens): cell position p patches batch position p − positionOffset, from source
   * position p (or sourcePosition(p)); default 0
   */
  positionOffset?: number;
}

/** The PatchSet for one sweep batch: cell i patches its (site, position) in row rowOffset + i only. */
export function sweepBatchPatches(
  component: PatchComponent,
  cells: readonly SweepCell[],
  source: SourceActivations,
  dims: ModelDims,
  seqLen: number,
  options: BatchPatchOptions = {},
): PatchSet {
  const rowOffset = options.rowOffset ?? 0;
  const offset = options.positionOffset ?? 0;
  const batch = { batchSize: options.batchSize ?? rowOffset + cells.length, seqLen };
  const patches: PatchSet = {};
  cells.forEach((c, i) =>
    setPatchCell(
      patches,
      {
        component,
        site: c.site,
        position: c.position - offset,
        row: rowOffset + i,
        sourcePosition: options.sourcePosition?.(c.position) ?? c.position,
      },
      source,
      dims,
      batch,
    ),
  );
  return patches;
}
