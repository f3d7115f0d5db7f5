// `npm run bench -- --only heatmap`: the full-prefix K/V patching heatmap (every layer × every prefix
// position), today's way ('full': one batch row per cell over the whole prompt, 16 rows a call) against
// the prefix cache ('prefix-cache': a cell at position p continues the unpatched cache and runs p..T−1;
// one call per position), on the same runtime, with the largest |Δ| between the two grids.
// - SmolLM2-135M shape (.cache/bench-model): `runPatchSweep` (what Lab.sweep runs) on a 33-token prompt
//   whose first 24 positions are swept, patched from a corrupted prompt, metric KL(clean ‖ patched).
// - Qwen2.5-0.5B shape + r 32 rsLoRA (.cache/bench-qwen0.5b, written by the memory bench; skipped when
//   absent): `Lab.sweep` itself on bench/specs/qwen0.5b-lora.json (real template, base → LoRA finetune).
//   node_cpu only by default (WASM on this shape is ~1.5 s a cell); `--heatmap-stride k` sweeps every
//   k-th prefix position only (both ways alike) and extrapolates the per-cell time to the whole grid.
// Prints numbers, never asserts; progress on stderr.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EngineModel } from '../src/engine/model';
import type { ArchSpec, WeightMap } from '../src/engine/types';
import { folderSource } from '../src/hub/folder-files-node';
import type { ModelDims } from '../src/lab/interventions/patch';
import { planSweep } from '../src/lab/interventions/sweep';
import { klFromLogits, logitsAt } from '../src/lab/metrics/metrics';
import { Lab } from '../src/lab/run/lab';
import { runPatchSweep, type SweepMethod } from '../src/lab/run/sweep-run';
import { parseSpec } from '../src/lab/spec/experiment';
import { loadSample, log, timed, type LoadSample, type Runtime, type Timing } from './lib';

export interface HeatmapArgs {
  runtimes: Runtime[];
  /** sweep every k-th prefix position (1 = all) on the SmolLM2 shape / on the 0.5B shape */
  stride: { small: number; qwen: number };
  /** runtimes for the 0.5B shape */
  qwenRuntimes: Runtime[];
  qwenSpec: string;
}

export interface HeatmapFigures {
  model: string;
  runtime: Runtime;
  layers: number;
  /** prefix positions swept (of `prefix` in all) */
  positions: number[];
  prefix: number;
  promptTokens: number;
  cells: number;
  /** per cell, ms (wall / process CPU) */
  msPerCell: Record<SweepMethod, Timing>;
  /** the whole layers × prefix grid, s (measured when stride 1, else extrapolated from the per-cell time) */
  gridS: Record<SweepMethod, number>;
  /** new ÷ old time (wall), ≤ 1/3 is the target */
  ratio: number;
  ratioCpu: number;
  /** largest |Δ| of a cell's value between the two ways */
  maxAbsDiff: number;
  load: { start: LoadSample; end: LoadSample };
}

const STRIDE_DEFAULT = { small: 1, qwen: 3 };

export function defaultHeatmapArgs(runtimes: Runtime[]): HeatmapArgs {
  return {
    runtimes,
    stride: { ...STRIDE_DEFAULT },
    qwenRuntimes: runtimes.filter((r) => r === 'node_cpu'),
    qwenSpec: 'bench/specs/qwen0.5b-lora.json',
  };
}

const backendOf = (r: Runtime): 'wasm' | 'node-cpu' => (r === 'wasm' ? 'wasm' : 'node-cpu');
const every = (n: number, k: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % k === 0);

function figures(
  model: string,
  runtime: Runtime,
  layers: number,
  positions: number[],
  prefix: number,
  promptTokens: number,
  t: Record<SweepMethod, Timing>,
  values: Record<SweepMethod, ArrayLike<number>>,
  start: LoadSample,
): HeatmapFigures {
  const cells = layers * positions.length;
  const per = (x: Timing): Timing => ({ wall: x.wall / cells, cpu: x.cpu / cells });
  let maxAbsDiff = 0;
  for (let i = 0; i < values.full.length; i++) {
    const a = values.full[i];
    const b = values['prefix-cache'][i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a - b));
  }
  const whole = layers * prefix;
  return {
    model,
    runtime,
    layers,
    positions,
    prefix,
    promptTokens,
    cells,
    msPerCell: { full: per(t.full), 'prefix-cache': per(t['prefix-cache']) },
    gridS: {
      full: (per(t.full).wall * whole) / 1000,
      'prefix-cache': (per(t['prefix-cache']).wall * whole) / 1000,
    },
    ratio: t['prefix-cache'].wall / t.full.wall,
    ratioCpu: t['prefix-cache'].cpu / t.full.cpu,
    maxAbsDiff,
    load: { start, end: loadSample() },
  };
}

/** SmolLM2-135M shape: runPatchSweep on a 33-token prompt, the first 24 positions swept. */
async function smallShape(
  spec: ArchSpec,
  weights: WeightMap,
  runtime: Runtime,
  stride: number,
): Promise<HeatmapFigures> {
  const T = 33;
  const PREFIX = 24;
  const engine = await EngineModel.create(spec, weights, { backend: backendOf(runtime) });
  try {
    const L = spec.numLayers;
    const dims: ModelDims = {
      numLayers: L,
      hidden: spec.hiddenSize,
      kvHeads: spec.numKvHeads,
      headDim: spec.headDim,
    };
    const ids = Array.from({ length: T }, (_, t) => (t * 7919 + 11) % spec.vocabSize);
    const corrupt = ids.map((id, t) => (t < PREFIX ? (id * 31 + 5) % spec.vocabSize : id));
    const layers = Array.from({ length: L }, (_, l) => l);
    const src = await engine.evaluate({ inputIds: [corrupt], taps: { kv: layers, logits: 'last' } });
    const clean = logitsAt(
      (await engine.evaluate({ inputIds: [ids], taps: { logits: 'last' } })).logits,
      0,
      0,
    );
    const positions = every(PREFIX, stride);
    const start = loadSample();
    const t = {} as Record<SweepMethod, Timing>;
    const values = {} as Record<SweepMethod, Float64Array>;
    // NOTE: warm-up (first-run allocations) outside the timing, then old and new one after the other
    await engine.evaluate({ inputIds: [ids, ids], taps: { logits: 'last' } });
    for (const method of ['full', 'prefix-cache'] as const) {
      const plan = planSweep({
        component: 'kv',
        layers,
        positions,
        maxBatchSize: method === 'full' ? 16 : L,
        order: method === 'full' ? 'layer' : 'position',
      });
      log(`heatmap ${runtime} SmolLM2 shape: ${method}, ${plan.batches.length} calls`);
      let grid: Float64Array | null = null;
      t[method] = await timed(async () => {
        grid = (
          await runPatchSweep({
            engine,
            ids,
            loraScale: 1,
            component: 'kv',
            source: { k: src.k, v: src.v },
            dims,
            plan,
            method,
            metric: (logits) => klFromLogits(clean, logits),
          })
        ).values;
      });
      values[method] = grid!;
    }
    return figures('SmolLM2-135M shape, fp32', runtime, L, positions, PREFIX, T, t, values, start);
  } finally {
    await engine.dispose();
  }
}

/** Qwen2.5-0.5B shape + LoRA: Lab.sweep on the memory bench's spec. */
async function qwenShape(specPath: string, runtime: Runtime, stride: number): Promise<HeatmapFigures> {
  const dir = path.dirname(specPath);
  const lab = new Lab({
    resolveSource: (s) => folderSource(path.resolve(dir, s.kind === 'local' ? s.path : 'missing')),
    backend: backendOf(runtime),
  });
  try {
    const parsed = parseSpec(JSON.parse(readFileSync(specPath, 'utf8')));
    if (!parsed.ok) throw new Error(`bad bench spec ${specPath}`);
    const spec = parsed.spec;
    log(`heatmap ${runtime} Qwen2.5-0.5B shape: loading`);
    const { prompt, handles } = await lab.prepare(spec);
    const L = handles.get('finetuned')!.model.arch.numLayers;
    const [s, e] = prompt.segments.prefix;
    const positions = every(e - s, stride).map((i) => s + i);
    const start = loadSample();
    const t = {} as Record<SweepMethod, Timing>;
    const values = {} as Record<SweepMethod, number[]>;
    for (const method of ['full', 'prefix-cache'] as const) {
      log(`heatmap ${runtime} Qwen2.5-0.5B shape: ${method}, ${L} × ${positions.length} cells`);
      let v: number[] = [];
      t[method] = await timed(async () => {
        v = (await lab.sweep(spec, { component: 'kv', positions, method })).values;
      });
      values[method] = v;
    }
    return figures(
      'Qwen2.5-0.5B shape + r 32 rsLoRA, fp32, Lab.sweep',
      runtime,
      L,
      positions,
      e - s,
      prompt.tokens.length,
      t,
      values,
      start,
    );
  } finally {
    await lab.dispose();
  }
}

export async function measureHeatmap(
  spec: ArchSpec,
  weights: WeightMap,
  args: HeatmapArgs,
): Promise<HeatmapFigures[]> {
  const out: HeatmapFigures[] = [];
  for (const rt of args.runtimes) out.push(await smallShape(spec, weights, rt, args.stride.small));
  if (!existsSync(args.qwenSpec)) {
    log(`heatmap: ${args.qwenSpec} not there, Qwen2.5-0.5B shape skipped`);
    return out;
  }
  for (const rt of args.qwenRuntimes) out.push(await qwenShape(args.qwenSpec, rt, args.stride.qwen));
  return out;
}

export function heatmapTable(rows: readonly HeatmapFigures[]): string {
  const f = (x: number, d = 0) => x.toFixed(d);
  const head =
    'heatmap (K/V, layers × prefix positions) | runtime | cells timed | ms/cell old | ms/cell new | grid s old | grid s new | new ÷ old (CPU) | max |Δ| | load';
  const lines = rows.map(
    (r) =>
      `${r.model}, ${r.layers} × ${r.prefix} of ${r.promptTokens} tokens | ${r.runtime} | ${r.cells} | ` +
      `${f(r.msPerCell.full.wall)} | ${f(r.msPerCell['prefix-cache'].wall)} | ${f(r.gridS.full)} | ` +
      `${f(r.gridS['prefix-cache'])} | ${f(r.ratio, 3)} (${f(r.ratioCpu, 3)}) | ${r.maxAbsDiff.toExponential(1)} | ` +
      `${r.load.start.load[0]} → ${r.load.end.load[0]}`,
  );
  return [head, ...lines].join('\n');
}
