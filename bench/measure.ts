// The measurements, on onnxruntime-web WASM and onnxruntime-node CPU with the same graph builder and the
// same EngineModel code as the app: prefill, decode through generate(), the residual patching sweep
// batched vs one pass per cell, and hook overhead (hooked graph with nothing requested vs the graph built
// without hook IO). One warm-up, then N timed runs (median). Runs that are compared with each other take
// turns (runtime A, runtime B, A, B…; batched call, single-cell calls, …) so that the load of a shared
// machine falls on both sides alike.
// Must never print to stdout, and never keep a hook-free model alive beyond its overhead comparison.

import { generate } from '../src/engine/generate';
import { EngineModel } from '../src/engine/model';
import type { ArchSpec, WeightMap } from '../src/engine/types';
import type { ModelDims } from '../src/lab/interventions/patch';
import { planSweep, sweepBatchPatches, type SweepCell } from '../src/lab/interventions/sweep';
import {
  addTimings,
  cpuNow,
  loadSample,
  log,
  median,
  timed,
  type BenchArgs,
  type LoadSample,
  type Runtime,
  type Section,
  type Timing,
} from './lib';

/** A figure by wall clock and by process CPU time (at 1 thread, CPU time ≈ the wall time of a quiet machine). */
export type ByClock = Timing;

export interface PrefillResult {
  tokens: number;
  runs: Timing[];
  tokS: ByClock;
}

export interface SweepFigures {
  grid: { layers: number; positions: number; cells: number };
  seqLen: number;
  batchRows: number;
  batchedCalls: number;
  batchedCellsTimed: number;
  /** true when every batch of the grid was timed */
  batchedWholeGrid: boolean;
  batchedMsPerCell: ByClock;
  sequentialCellsTimed: number;
  sequentialMsPerCell: ByClock;
  /** sequential ÷ batched time per cell */
  speedup: ByClock;
  /** whole grid in seconds (wall): measured (batched, when whole) or extrapolated from the per-cell time */
  batchedGridS: number;
  sequentialGridS: number;
}

export interface DecodeOverhead {
  hookedTokS: ByClock[];
  plainTokS: ByClock[];
  /** hooked ÷ hook-free time per token: median over adjacent pairs */
  ratio: ByClock;
}

export interface HookOverhead {
  tokens: number;
  hooked: Timing[];
  plain: Timing[];
  /** median of hooked ÷ plain over adjacent pairs (robust to load drift) */
  ratio: ByClock;
  /** median(hooked) ÷ median(plain) */
  ratioOfMedians: ByClock;
}

export interface DecodeResult {
  tokens: number;
  promptTokens: number;
  runsTokS: ByClock[];
  tokS: ByClock;
}

/** One runtime's figures; null where the section was not run (`--only`). */
export interface RuntimeResult {
  runtime: Runtime;
  createMs: number;
  /** the hooked fp32 model's graph bytes and RoPE rows (for the decode roofline) */
  graphBytes: number;
  maxPositions: number;
  prefill128: PrefillResult | null;
  /** the hooked side of the overhead pairs */
  prefill512: PrefillResult | null;
  decode: DecodeResult | null;
  sweep: SweepFigures | null;
  hookOverhead: HookOverhead | null;
  /** the same comparison for decode (generate(), no patch: the graph still runs its no-op blends) */
  decodeHookOverhead: DecodeOverhead | null;
  /** load average when this runtime's overhead pairs started and ended */
  hookLoad: [LoadSample, LoadSample] | null;
  /** `control`: one hook-free session ÷ another of the same graph, prefill 512 */
  control: HookOverhead | null;
  /** `q4`: the 4-bit graph against fp32 (both hooked), in alternating rounds */
  q4: Q4Result | null;
}

export interface Q4Result {
  prefill128TokS: { fp32: ByClock; q4: ByClock };
  decodeTokS: { fp32: ByClock; q4: ByClock };
  /** bytes of each session's graph (model proto + external weights) */
  graphBytes: { fp32: number; q4: number };
}

const medianBy = (xs: readonly Timing[]): ByClock => ({
  wall: median(xs.map((x) => x.wall)),
  cpu: median(xs.map((x) => x.cpu)),
});
const mapClock = (x: ByClock, f: (v: number) => number): ByClock => ({ wall: f(x.wall), cpu: f(x.cpu) });
const divClock = (a: ByClock, b: ByClock): ByClock => ({ wall: a.wall / b.wall, cpu: a.cpu / b.cpu });
const ZERO: Timing = { wall: 0, cpu: 0 };

/** "wall (CPU-time figure)" for progress lines. */
const show = (x: ByClock, digits = 1): string =>
  `${x.wall.toFixed(digits)} (CPU time: ${x.cpu.toFixed(digits)})`;

/** Deterministic token ids spread over the vocabulary. */
export function promptIds(spec: ArchSpec, T: number, salt = 0): number[] {
  return Array.from({ length: T }, (_, t) => (t * 7919 + salt * 104729 + 11) % spec.vocabSize);
}

const backendOf = (r: Runtime): 'wasm' | 'node-cpu' => (r === 'wasm' ? 'wasm' : 'node-cpu');

async function createModel(
  spec: ArchSpec,
  weights: WeightMap,
  runtime: Runtime,
  args: BenchArgs,
  hooks: boolean,
  dtype: 'fp32' | 'q4' = 'fp32',
): Promise<EngineModel> {
  return EngineModel.create(spec, weights, {
    backend: backendOf(runtime),
    patchInputs: hooks,
    tapOutputs: hooks,
    dtype,
    kvCache: args.kvCache,
    session: { intraOpNumThreads: args.threads },
  });
}

/** Prefill (new cache fetched, as generation does) of one row of `T` tokens; only the last logits. */
async function prefill(model: EngineModel, ids: number[]): Promise<Timing> {
  return timed(async () => {
    const out = await model.forward({ inputIds: [ids], taps: { logits: 'last' } });
    out.present.dispose();
  });
}

/** generate() after a `promptT` prompt; tok/s over the decode steps only (first token = prefill). */
async function decode(model: EngineModel, promptT: number, steps: number): Promise<ByClock> {
  const stamps: Timing[] = [];
  await generate(model, {
    inputIds: [promptIds(model.spec, promptT, 1)],
    maxNewTokens: steps + 1,
    stopTokens: [],
    onToken: () => stamps.push({ wall: performance.now(), cpu: cpuNow() }),
  });
  return {
    wall: (steps / (stamps[steps].wall - stamps[0].wall)) * 1000,
    cpu: (steps / (stamps[steps].cpu - stamps[0].cpu)) * 1000,
  };
}

/** Warm-up once per model, then `reps` rounds taking turns over the models. */
async function rounds<K, T>(
  models: ReadonlyMap<K, EngineModel>,
  reps: number,
  once: (m: EngineModel) => Promise<T>,
): Promise<Map<K, T[]>> {
  const out = new Map<K, T[]>();
  for (const [rt, m] of models) {
    await once(m);
    out.set(rt, []);
  }
  const order = [...models.keys()];
  for (let i = 0; i < reps; i++) {
    const turn = i % 2 === 0 ? order : [...order].reverse();
    for (const rt of turn) out.get(rt)!.push(await once(models.get(rt)!));
  }
  return out;
}

function dimsOf(spec: ArchSpec): ModelDims {
  return {
    numLayers: spec.numLayers,
    hidden: spec.hiddenSize,
    kvHeads: spec.numKvHeads,
    headDim: spec.headDim,
  };
}

/**
 * 30 residual sites (the stream entering each layer) × the first 16 positions of a `sweepSeq`-token
 * prompt, planned and patched by the lab's own sweep code; last-position logits only, no cache fetched.
 * Batched calls and single-cell calls alternate.
 */
async function measureSweep(model: EngineModel, runtime: Runtime, args: BenchArgs): Promise<SweepFigures> {
  const spec = model.spec;
  const T = args.sweepSeq;
  const ids = promptIds(spec, T, 2);
  const layers = Array.from({ length: spec.numLayers }, (_, l) => l);
  const positions = Array.from({ length: 16 }, (_, p) => p);
  const dims = dimsOf(spec);
  const src = await model.evaluate({ inputIds: [ids], taps: { resid: layers, logits: 'last' } });
  const source = { resid: src.resid };
  const run = async (cells: SweepCell[]): Promise<void> => {
    const patches = sweepBatchPatches('resid', cells, source, dims, T);
    await model.evaluate({ inputIds: cells.map(() => ids), patches, taps: { logits: 'last' } });
  };

  const plan = planSweep({ component: 'resid', layers, positions, maxBatchSize: args.sweepBatch });
  const cells = plan.batches.flat();
  const wanted = args.sweepCalls[runtime];
  const batches = wanted === 0 ? plan.batches : plan.batches.slice(0, wanted);
  const nSeq = Math.min(args.sweepSequentialCells[runtime], cells.length);
  // single cells spread evenly over the grid (every layer band, every position)
  const picked = Array.from({ length: nSeq }, (_, i) => cells[Math.floor((i * cells.length) / nSeq)]);
  log(
    `${runtime}: sweep, ${batches.length} of ${plan.batches.length} batched calls × ${args.sweepBatch} rows ` +
      `and ${picked.length} of ${cells.length} cells one pass each, taking turns`,
  );
  await run(plan.batches[0]); // warm-ups (the first run of a shape plans memory)
  await run([picked[0]]);
  let batchedMs = ZERO;
  let seqMs = ZERO;
  let batchedCells = 0;
  let nextSingle = 0;
  for (let i = 0; i < batches.length; i++) {
    batchedMs = addTimings(batchedMs, await timed(() => run(batches[i])));
    batchedCells += batches[i].length;
    const until = Math.round(((i + 1) * picked.length) / batches.length);
    for (; nextSingle < until; nextSingle++) {
      seqMs = addTimings(seqMs, await timed(() => run([picked[nextSingle]])));
    }
  }

  const batchedMsPerCell = mapClock(batchedMs, (ms) => ms / batchedCells);
  const sequentialMsPerCell = mapClock(seqMs, (ms) => ms / picked.length);
  return {
    grid: { layers: layers.length, positions: positions.length, cells: cells.length },
    seqLen: T,
    batchRows: args.sweepBatch,
    batchedCalls: batches.length,
    batchedCellsTimed: batchedCells,
    batchedWholeGrid: batches.length === plan.batches.length,
    batchedMsPerCell,
    sequentialCellsTimed: picked.length,
    sequentialMsPerCell,
    speedup: divClock(sequentialMsPerCell, batchedMsPerCell),
    batchedGridS: (batchedMsPerCell.wall * cells.length) / 1000,
    sequentialGridS: (sequentialMsPerCell.wall * cells.length) / 1000,
  };
}

/** Hooked (no patch, no tap requested) ÷ hook-free graph, prefill `T`, in alternating pairs. */
async function measureHookOverhead(
  hookedModel: EngineModel,
  plainModel: EngineModel,
  T: number,
  pairs: number,
): Promise<HookOverhead> {
  const ids = promptIds(hookedModel.spec, T);
  await prefill(hookedModel, ids);
  await prefill(plainModel, ids);
  const hooked: Timing[] = [];
  const plain: Timing[] = [];
  const ratios: ByClock[] = [];
  for (let i = 0; i < pairs; i++) {
    // NOTE: alternate which goes first, so a load change during a pair does not always favour one side
    let h: Timing;
    let p: Timing;
    if (i % 2 === 0) {
      h = await prefill(hookedModel, ids);
      p = await prefill(plainModel, ids);
    } else {
      p = await prefill(plainModel, ids);
      h = await prefill(hookedModel, ids);
    }
    hooked.push(h);
    plain.push(p);
    ratios.push(divClock(h, p));
  }
  return {
    tokens: T,
    hooked,
    plain,
    ratio: medianBy(ratios),
    ratioOfMedians: divClock(medianBy(hooked), medianBy(plain)),
  };
}

/** Decode through generate() on the hooked and the hook-free model, in alternating pairs. */
async function measureDecodeOverhead(
  hookedModel: EngineModel,
  plainModel: EngineModel,
  promptT: number,
  steps: number,
  pairs: number,
): Promise<DecodeOverhead> {
  const models = new Map([
    ['hooked', hookedModel],
    ['plain', plainModel],
  ]);
  const r = await rounds(models, pairs, (m) => decode(m, promptT, steps));
  const hookedTokS = r.get('hooked')!;
  const plainTokS = r.get('plain')!;
  const ratios = hookedTokS.map((h, i) => divClock(plainTokS[i], h));
  return { hookedTokS, plainTokS, ratio: medianBy(ratios) };
}

/** Every measurement on every runtime in `args.runtimes`. */
export async function measureAll(
  spec: ArchSpec,
  weights: WeightMap,
  args: BenchArgs,
): Promise<Map<Runtime, RuntimeResult>> {
  const models = new Map<Runtime, EngineModel>();
  const results = new Map<Runtime, RuntimeResult>();
  const on = (section: Section): boolean => args.only.includes(section);
  try {
    for (const rt of args.runtimes) {
      log(`${rt}: creating the hooked model`);
      const t0 = performance.now();
      models.set(rt, await createModel(spec, weights, rt, args, true));
      results.set(rt, {
        runtime: rt,
        createMs: performance.now() - t0,
        graphBytes: models.get(rt)!.graphBytes,
        maxPositions: models.get(rt)!.io.maxPositions,
        prefill128: null,
        prefill512: null,
        decode: null,
        sweep: null,
        hookOverhead: null,
        decodeHookOverhead: null,
        hookLoad: null,
        control: null,
        q4: null,
      });
    }

    if (on('prefill')) {
      log(`prefill 128, ${args.reps} rounds`);
      const p128 = await rounds(models, args.reps, (m) => prefill(m, promptIds(spec, 128)));
      for (const [rt, runs] of p128) {
        const tokS = mapClock(medianBy(runs), (ms) => (128 / ms) * 1000);
        results.get(rt)!.prefill128 = { tokens: 128, runs, tokS };
        log(`${rt}: prefill 128 → ${show(tokS)} tok/s`);
      }
    }

    if (on('decode')) {
      log(
        `decode ${args.decodeTokens} tokens after a ${args.decodePrompt}-token prompt, ${args.reps} rounds`,
      );
      const dec = await rounds(models, args.reps, (m) => decode(m, args.decodePrompt, args.decodeTokens));
      for (const [rt, runsTokS] of dec) {
        const tokS = medianBy(runsTokS);
        results.get(rt)!.decode = {
          tokens: args.decodeTokens,
          promptTokens: args.decodePrompt,
          runsTokS,
          tokS,
        };
        log(`${rt}: decode → ${show(tokS)} tok/s`);
      }
    }

    if (on('sweep')) {
      for (const [rt, m] of models) {
        const s = await measureSweep(m, rt, args);
        results.get(rt)!.sweep = s;
        log(
          `${rt}: sweep → ms/cell batched ${show(s.batchedMsPerCell, 0)}, ` +
            `one pass each ${show(s.sequentialMsPerCell, 0)}; speedup ${show(s.speedup, 2)}`,
        );
      }
    }

    if (on('overhead')) {
      for (const [rt, hooked] of models) {
        const pairs = args.overheadPairs[rt];
        log(`${rt}: creating the hook-free model; prefill 512 hooked vs hook-free, ${pairs} pairs`);
        const plain = await createModel(spec, weights, rt, args, false);
        const r = results.get(rt)!;
        const loadAt = loadSample();
        try {
          const overhead = await measureHookOverhead(hooked, plain, 512, pairs);
          r.hookOverhead = overhead;
          r.prefill512 = {
            tokens: 512,
            runs: overhead.hooked,
            tokS: mapClock(medianBy(overhead.hooked), (ms) => (512 / ms) * 1000),
          };
          log(
            `${rt}: prefill 512 → ${show(r.prefill512.tokS)} tok/s; hooked ÷ hook-free ${show(overhead.ratio, 3)}`,
          );
          log(`${rt}: decode hooked vs hook-free, ${args.reps} pairs`);
          const dec = await measureDecodeOverhead(
            hooked,
            plain,
            args.decodePrompt,
            args.decodeTokens,
            args.reps,
          );
          r.decodeHookOverhead = dec;
          log(`${rt}: decode hooked ÷ hook-free ${show(dec.ratio, 3)}`);
        } finally {
          await plain.dispose();
        }
        r.hookLoad = [loadAt, loadSample()];
      }
    }
    if (on('control')) {
      for (const rt of models.keys()) {
        const pairs = args.overheadPairs[rt];
        log(`${rt}: control, two hook-free sessions of one graph, prefill 512, ${pairs} pairs`);
        const a = await createModel(spec, weights, rt, args, false);
        try {
          const b = await createModel(spec, weights, rt, args, false);
          try {
            const c = await measureHookOverhead(a, b, 512, pairs);
            results.get(rt)!.control = c;
            log(`${rt}: control ratio ${show(c.ratio, 3)}`);
          } finally {
            await b.dispose();
          }
        } finally {
          await a.dispose();
        }
      }
    }
    if (on('q4')) {
      for (const [rt, fp32] of models) {
        log(`${rt}: creating the q4 model; prefill 128 and decode, fp32 vs q4, ${args.reps} rounds`);
        const q4 = await createModel(spec, weights, rt, args, true, 'q4');
        try {
          const pair = new Map([
            ['fp32', fp32],
            ['q4', q4],
          ] as const);
          const pre = await rounds(pair, args.reps, (m) => prefill(m, promptIds(spec, 128)));
          const dec = await rounds(pair, args.reps, (m) => decode(m, args.decodePrompt, args.decodeTokens));
          const tok = (runs: Timing[]) => mapClock(medianBy(runs), (ms) => (128 / ms) * 1000);
          const r: Q4Result = {
            prefill128TokS: { fp32: tok(pre.get('fp32')!), q4: tok(pre.get('q4')!) },
            decodeTokS: { fp32: medianBy(dec.get('fp32')!), q4: medianBy(dec.get('q4')!) },
            graphBytes: { fp32: fp32.graphBytes, q4: q4.graphBytes },
          };
          results.get(rt)!.q4 = r;
          log(
            `${rt}: q4 prefill 128 ${show(r.prefill128TokS.q4)} vs fp32 ${show(r.prefill128TokS.fp32)} tok/s; ` +
              `decode ${show(r.decodeTokS.q4)} vs ${show(r.decodeTokS.fp32)} tok/s; graph ${r.graphBytes.q4} vs ${r.graphBytes.fp32} bytes`,
          );
        } finally {
          await q4.dispose();
        }
      }
    }
    return results;
  } finally {
    for (const m of models.values()) await m.dispose();
  }
}
