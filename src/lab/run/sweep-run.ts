// Runs a planned patching sweep (interventions/sweep.ts) on one engine model: each cell patches one
// (site, position) of the target run with the source's activation and scores the target's last-position
// logits. Two ways, with the same answers up to fp32 rounding:
// - 'full' (the reference): every cell is a batch row over the whole prompt;
// - 'prefix-cache' (default): a patch at position p changes nothing before p at any layer, so a cell
//   continues the unpatched run's KV cache of positions 0..p−1 and runs only positions p..T−1; cells of
//   one position share that prefix (the cache is tiled across the batch's rows); and a cell whose source
//   value equals the target's own activation bit for bit (e.g. residual site 0 of a LoRA pair, whose
//   embeddings are shared) is not run at all: its logits are the unpatched run's.
// It never keeps a cache or tensor it made beyond the call.

import type { EngineModel } from '../../engine/model';
import type { KvCacheData } from '../../engine/types';
import { logitsAt } from '../metrics/metrics';
import type { PatchComponent } from '../spec/experiment';
import type { ModelDims, SourceActivations } from '../interventions/patch';
import {
  runSweep,
  sweepBatchPatches,
  type RunSweepOptions,
  type SweepCell,
  type SweepGrid,
  type SweepPlan,
} from '../interventions/sweep';

export type SweepMethod = 'prefix-cache' | 'full';

/** The engine calls a sweep makes (EngineModel's; a structural type so tests can count calls). */
export type SweepEngine = Pick<EngineModel, 'evaluate' | 'forward' | 'cacheFromData'>;

export interface PatchSweepArgs extends RunSweepOptions {
  engine: SweepEngine;
  /** the target run's prompt */
  ids: readonly number[];
  /** the target's LoRA dose (every row) */
  loraScale: number;
  component: PatchComponent;
  /** the source run's taps on the same prompt (patch.ts SourceActivations) */
  source: SourceActivations;
  dims: ModelDims;
  plan: SweepPlan;
  /** a cell's value from its last-position logits; null = undefined for that cell */
  metric: (logits: Float32Array) => number | null;
  /** default 'prefix-cache' */
  method?: SweepMethod;
}

/** The first `length` positions of a one-row cache, repeated for `rows` rows ([rows, kvHeads, length, headDim]). */
export function tilePrefix(
  data: KvCacheData,
  length: number,
  rows: number,
  kvHeads: number,
  headDim: number,
): KvCacheData {
  if (!Number.isInteger(length) || length < 0 || length > data.length) {
    throw new RangeError(`prefix length ${length} ∉ 0..${data.length}`);
  }
  const S = data.length;
  const rowLen = kvHeads * length * headDim;
  const cut = (a: Float32Array): Float32Array => {
    if (a.length !== kvHeads * S * headDim) throw new RangeError('the cache to tile must have one row');
    const out = new Float32Array(rows * rowLen);
    for (let h = 0; h < kvHeads; h++) {
      const from = a.subarray(h * S * headDim, (h * S + length) * headDim);
      for (let r = 0; r < rows; r++) out.set(from, r * rowLen + h * length * headDim);
    }
    return out;
  };
  return { length, keys: data.keys.map(cut), values: data.values.map(cut) };
}

/** The unpatched target run: its cache, its last logits and its own activations (to spot no-op cells). */
interface Unpatched {
  cache: KvCacheData;
  logits: Float32Array;
  own: SourceActivations;
}

function sameVector(
  a: Float32Array | undefined,
  b: Float32Array | undefined,
  width: number,
  position: number,
): boolean {
  if (!a || !b) return false;
  const o = position * width;
  for (let i = 0; i < width; i++) if (a[o + i] !== b[o + i]) return false;
  return true;
}

/** True when patching `cell` from `source` would write exactly the value the target already has there. */
function isNoop(
  cell: SweepCell,
  component: PatchComponent,
  src: SourceActivations,
  own: SourceActivations,
  dims: ModelDims,
) {
  if (component === 'resid') {
    return sameVector(
      src.resid?.get(cell.site)?.data,
      own.resid?.get(cell.site)?.data,
      dims.hidden,
      cell.position,
    );
  }
  const w = dims.kvHeads * dims.headDim;
  return (
    sameVector(src.k?.get(cell.site)?.data, own.k?.get(cell.site)?.data, w, cell.position) &&
    sameVector(src.v?.get(cell.site)?.data, own.v?.get(cell.site)?.data, w, cell.position)
  );
}

/** Runs `plan` (best planned with order 'position' for 'prefix-cache') and returns the grid. */
export async function runPatchSweep(args: PatchSweepArgs): Promise<SweepGrid> {
  const { engine, component, source, dims, plan, metric, loraScale } = args;
  const ids = [...args.ids];
  const T = ids.length;
  const method = args.method ?? 'prefix-cache';
  const L = dims.numLayers;

  const full = async (cells: SweepCell[]): Promise<(number | null)[]> => {
    const patches = sweepBatchPatches(component, cells, source, dims, T);
    const out = await engine.evaluate({
      inputIds: cells.map(() => ids),
      loraScale: cells.map(() => loraScale),
      patches,
      taps: { logits: 'last' },
    });
    return cells.map((_, b) => metric(logitsAt(out.logits, b, 0)));
  };
  if (method === 'full') return runSweep(plan, full, args);

  let unpatched: Promise<Unpatched> | null = null;
  const getUnpatched = (): Promise<Unpatched> =>
    (unpatched ??= (async () => {
      const sites = Array.from({ length: component === 'kv' ? L : L + 1 }, (_, l) => l);
      const r = await engine.forward({
        inputIds: [ids],
        loraScale: [loraScale],
        taps: component === 'kv' ? { kv: sites, logits: 'last' } : { resid: sites, logits: 'last' },
      });
      try {
        return {
          cache: await r.present.toData(),
          logits: logitsAt(r.logits, 0, 0),
          own: component === 'kv' ? { k: r.k, v: r.v } : { resid: r.resid },
        };
      } finally {
        r.present.dispose();
      }
    })());

  /** one call: cells that all patch position p, continuing the unpatched cache of 0..p−1 */
  const fromPrefix = async (p: number, cells: SweepCell[]): Promise<(number | null)[]> => {
    if (p === 0) return full(cells);
    const B = cells.length;
    const { cache } = await getUnpatched();
    const past = engine.cacheFromData(tilePrefix(cache, p, B, dims.kvHeads, dims.headDim), B);
    try {
      const rest = ids.slice(p);
      const out = await engine.evaluate(
        {
          inputIds: cells.map(() => rest),
          loraScale: cells.map(() => loraScale),
          patches: sweepBatchPatches(component, cells, source, dims, T - p, { positionOffset: p }),
          taps: { logits: 'last' },
        },
        past,
      );
      return cells.map((_, b) => metric(logitsAt(out.logits, b, 0)));
    } finally {
      past.dispose();
    }
  };

  const batch = async (cells: SweepCell[]): Promise<(number | null)[]> => {
    const values = new Array<number | null>(cells.length).fill(null);
    const u = await getUnpatched();
    const byPosition = new Map<number, number[]>();
    cells.forEach((c, i) => {
      if (isNoop(c, component, source, u.own, dims)) {
        values[i] = metric(u.logits);
        return;
      }
      const list = byPosition.get(c.position) ?? [];
      list.push(i);
      byPosition.set(c.position, list);
    });
    for (const [p, idx] of byPosition) {
      args.signal?.throwIfAborted();
      const got = await fromPrefix(
        p,
        idx.map((i) => cells[i]),
      );
      idx.forEach((i, j) => (values[i] = got[j]));
    }
    return values;
  };
  return runSweep(plan, batch, args);
}
