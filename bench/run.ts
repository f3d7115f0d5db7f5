// `npm run bench [-- --json]`: the engine's speed on a random SmolLM2-135M-shaped fp32 model in Node, on
// onnxruntime-web WASM and onnxruntime-node CPU (same graph): prefill tok/s (128 and 512 tokens), decode
// tok/s, hook overhead, and the 30-layer × 16-position residual sweep batched vs one pass per cell; with
// every decode figure its roofline (bench/roofline.ts: tok/s × bytes read per token ÷ the single-thread read
// bandwidth measured in the same run).
// Prints numbers, never asserts. Progress goes to stderr; stdout carries a table, or with --json exactly one
// JSON object (one line; `npm run --silent bench -- --json` leaves out npm's own banner). Options in
// bench/lib.ts (`--help`). Must finish within 10 minutes on 2 shared cores with the defaults.

import { int8Table, measureInt8 } from './int8';
import { setFlagsFromString } from 'node:v8';
import { configureOrt } from '../src/engine/session';
import { folderSource } from '../src/hub/folder-files-node';
import type { ArchSpec } from '../src/engine/types';
import { loadModel } from '../src/engine/weights';
import {
  DEFAULT_MODEL_DIR,
  ensureBenchModel,
  loadSample,
  log,
  machineInfo,
  parseArgs,
  RUNTIMES,
  type BenchArgs,
  type LoadSample,
  type MachineInfo,
  type Runtime,
  type Section,
} from './lib';
import { measureAll, type RuntimeResult } from './measure';
import { decodeBytesPerToken, measureBandwidth, rooflineFraction, type Bandwidth } from './roofline';
import { defaultHeatmapArgs, heatmapTable, measureHeatmap } from './heatmap';
import { measureNeighbours, neighboursTable } from './neighbours';
import { loadTable, measureLoad } from './load';
import { measureTab, tabTable } from './tab';

type PerRuntime<T> = Record<Runtime, T | null>;

/** The headline figures, by one clock. */
export interface Figures {
  /** prefill of 128 tokens (one row), tok/s */
  prefill_tok_s: PerRuntime<number>;
  prefill_512_tok_s: PerRuntime<number>;
  decode_tok_s: PerRuntime<number>;
  /** decode tok/s × bytes read per token (weights streamed + K/V cache) ÷ measured bandwidth */
  decode_roofline: PerRuntime<number>;
  /** WASM decode ÷ onnxruntime-node decode */
  wasm_over_node_decode: number | null;
  /** hooked ÷ hook-free time, prefill 512: the worse of the runtimes measured */
  hook_overhead_ratio: number | null;
  hook_overhead_ratio_by_runtime: PerRuntime<number>;
  /** the same for decode (hooked graph running its no-op blends vs hook-free), time per token */
  decode_hook_overhead_ratio: PerRuntime<number>;
  /** sequential ÷ batched time per sweep cell: the worse of the runtimes measured */
  sweep_speedup_per_cell: number | null;
  /** `--only …,control`: hook-free ÷ hook-free (two sessions of one graph): the overhead's noise floor */
  control_ratio_by_runtime: PerRuntime<number>;
  /** `--only …,q4`: the 4-bit graph against fp32 */
  q4: PerRuntime<{
    prefill_tok_s: { fp32: number; q4: number };
    decode_tok_s: { fp32: number; q4: number };
    decode_roofline: { fp32: number; q4: number };
    graph_bytes: { fp32: number; q4: number };
  }>;
  sweep_speedup_per_cell_by_runtime: PerRuntime<number>;
  sweep_ms_per_cell: PerRuntime<{ batched: number; sequential: number }>;
  targets: {
    hook_overhead_le_5pct: boolean | null;
    sweep_speedup_ge_3x: boolean | null;
    wasm_decode_ge_0_8x_node: boolean | null;
  };
}

/** Wall-clock figures at the top level; the same by process CPU time under `cpu_time`. */
export interface BenchReport extends Figures {
  date: string;
  machine: MachineInfo;
  threads: number;
  reps: number;
  /** single-thread read bandwidth measured in this run (bench/roofline.ts); null when no decode ran */
  bandwidth: Bandwidth | null;
  /** bytes one decode step reads (fp32 hooked graph) at the mean context of the timed steps */
  decode_bytes_per_token: PerRuntime<{ weights: number; kv_cache: number; total: number }>;
  /** sections run */
  only: Section[];
  /** false: V8 compiled onnxruntime-web's WASM with TurboFan up front (--no-liftoff) */
  liftoff: boolean;
  model: string;
  /** tokens in the cache when the timed decode steps start */
  decode_prompt_tokens: number;
  /** prompt length of the sweep; rows per batched call */
  sweep_seq_len: number;
  sweep_batch_rows: number;
  load_avg: { start: LoadSample; end: LoadSample };
  wall_s: number;
  cpu_time: Figures;
  runtimes: PerRuntime<RuntimeResult>;
}

const round = (x: number, digits = 3): number => Number(x.toPrecision(digits + 2));

/** Per runtime: `f` of its result, or null where the runtime or the section was not run. */
function perRuntime<T>(
  results: Map<Runtime, RuntimeResult>,
  f: (r: RuntimeResult) => T | null,
): PerRuntime<T> {
  const out = {} as PerRuntime<T>;
  for (const rt of RUNTIMES) {
    const r = results.get(rt);
    out[rt] = r ? f(r) : null;
  }
  return out;
}

function worst(xs: PerRuntime<number>, pick: (a: number, b: number) => number): number | null {
  const v = Object.values(xs).filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => pick(a, b)) : null;
}

/** Mean context of the timed decode steps: the prompt plus half the steps. */
const decodeContext = (args: BenchArgs): number => args.decodePrompt + args.decodeTokens / 2;

function figures(
  results: Map<Runtime, RuntimeResult>,
  clock: 'wall' | 'cpu',
  bw: Bandwidth | null,
  args: BenchArgs,
  spec: ArchSpec,
): Figures {
  const decode = perRuntime(results, (r) => (r.decode ? round(r.decode.tokS[clock]) : null));
  const bytesOf = (r: RuntimeResult, graphBytes = r.graphBytes): number =>
    decodeBytesPerToken(spec, graphBytes, r.maxPositions, decodeContext(args)).total;
  const roof = (tokS: number, bytes: number): number => (bw ? round(rooflineFraction(tokS, bytes, bw)) : NaN);
  const hook = perRuntime(results, (r) => (r.hookOverhead ? round(r.hookOverhead.ratio[clock], 4) : null));
  const speedup = perRuntime(results, (r) => (r.sweep ? round(r.sweep.speedup[clock]) : null));
  const hookWorst = worst(hook, Math.max);
  const speedupWorst = worst(speedup, Math.min);
  const wasmOverNode =
    decode.wasm !== null && decode.node_cpu !== null ? round(decode.wasm / decode.node_cpu) : null;
  return {
    prefill_tok_s: perRuntime(results, (r) => (r.prefill128 ? round(r.prefill128.tokS[clock]) : null)),
    prefill_512_tok_s: perRuntime(results, (r) => (r.prefill512 ? round(r.prefill512.tokS[clock]) : null)),
    decode_tok_s: decode,
    decode_roofline: perRuntime(results, (r) =>
      r.decode && bw ? roof(r.decode.tokS[clock], bytesOf(r)) : null,
    ),
    wasm_over_node_decode: wasmOverNode,
    hook_overhead_ratio: hookWorst,
    hook_overhead_ratio_by_runtime: hook,
    decode_hook_overhead_ratio: perRuntime(results, (r) =>
      r.decodeHookOverhead ? round(r.decodeHookOverhead.ratio[clock], 4) : null,
    ),
    sweep_speedup_per_cell: speedupWorst,
    control_ratio_by_runtime: perRuntime(results, (r) =>
      r.control ? round(r.control.ratio[clock], 4) : null,
    ),
    q4: perRuntime(results, (r) =>
      r.q4
        ? {
            prefill_tok_s: {
              fp32: round(r.q4.prefill128TokS.fp32[clock]),
              q4: round(r.q4.prefill128TokS.q4[clock]),
            },
            decode_tok_s: { fp32: round(r.q4.decodeTokS.fp32[clock]), q4: round(r.q4.decodeTokS.q4[clock]) },
            // NOTE: the q4 graph's embedding is 4-bit and shared with a tied head: count its bytes as streamed
            decode_roofline: {
              fp32: roof(r.q4.decodeTokS.fp32[clock], bytesOf(r, r.q4.graphBytes.fp32)),
              q4: roof(
                r.q4.decodeTokS.q4[clock],
                decodeBytesPerToken(spec, r.q4.graphBytes.q4, r.maxPositions, decodeContext(args), 0).total,
              ),
            },
            graph_bytes: r.q4.graphBytes,
          }
        : null,
    ),
    sweep_speedup_per_cell_by_runtime: speedup,
    sweep_ms_per_cell: perRuntime(results, (r) =>
      r.sweep
        ? {
            batched: round(r.sweep.batchedMsPerCell[clock]),
            sequential: round(r.sweep.sequentialMsPerCell[clock]),
          }
        : null,
    ),
    targets: {
      hook_overhead_le_5pct: hookWorst === null ? null : hookWorst <= 1.05,
      sweep_speedup_ge_3x: speedupWorst === null ? null : speedupWorst >= 3,
      wasm_decode_ge_0_8x_node: wasmOverNode === null ? null : wasmOverNode >= 0.8,
    },
  };
}

function buildReport(
  args: BenchArgs,
  results: Map<Runtime, RuntimeResult>,
  start: LoadSample,
  wallS: number,
  bw: Bandwidth | null,
  spec: ArchSpec,
): BenchReport {
  return {
    date: new Date().toISOString(),
    machine: machineInfo(),
    threads: args.threads,
    reps: args.reps,
    bandwidth: bw,
    decode_bytes_per_token: perRuntime(results, (r) => {
      const b = decodeBytesPerToken(spec, r.graphBytes, r.maxPositions, decodeContext(args));
      return { weights: b.weights, kv_cache: b.kvCache, total: b.total };
    }),
    only: args.only,
    liftoff: args.liftoff,
    model:
      args.modelDir === DEFAULT_MODEL_DIR
        ? 'random-weight SmolLM2-135M shape (30 layers, hidden 576, 9/3 heads, MLP 1536, vocab 49152), fp32'
        : `${args.modelDir} (${spec.numLayers} layers, hidden ${spec.hiddenSize}, ${spec.numHeads}/${spec.numKvHeads} heads, MLP ${spec.intermediateSize}, vocab ${spec.vocabSize}), fp32`,
    decode_prompt_tokens: args.decodePrompt,
    sweep_seq_len: args.sweepSeq,
    sweep_batch_rows: args.sweepBatch,
    load_avg: { start, end: loadSample() },
    wall_s: Math.round(wallS),
    ...figures(results, 'wall', bw, args, spec),
    cpu_time: figures(results, 'cpu', bw, args, spec),
    runtimes: perRuntime(results, (r) => r),
  };
}

function targetLines(rep: BenchReport): string[] {
  const f = (x: number | null, d: number): string => (x == null ? '—' : x.toFixed(d));
  const t = rep.targets;
  const c = rep.cpu_time;
  const rows: [string, string, string][] = [
    ['target', 'wall clock', 'CPU time'],
    [
      'WASM decode ÷ node decode ≥ 0.8',
      `${f(rep.wasm_over_node_decode, 2)} ${t.wasm_decode_ge_0_8x_node}`,
      `${f(c.wasm_over_node_decode, 2)} ${c.targets.wasm_decode_ge_0_8x_node}`,
    ],
    [
      'hook overhead (worst) ≤ 1.05',
      `${f(rep.hook_overhead_ratio, 3)} ${t.hook_overhead_le_5pct}`,
      `${f(c.hook_overhead_ratio, 3)} ${c.targets.hook_overhead_le_5pct}`,
    ],
    [
      'sweep speedup (worst) ≥ 3',
      `${f(rep.sweep_speedup_per_cell, 2)} ${t.sweep_speedup_ge_3x}`,
      `${f(c.sweep_speedup_per_cell, 2)} ${c.targets.sweep_speedup_ge_3x}`,
    ],
  ];
  const w = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map(([a, b, cc]) => `${a.padEnd(w[0])} | ${b.padEnd(w[1])} | ${cc}`);
}

function bytesLine(rep: BenchReport): string {
  const b = rep.decode_bytes_per_token.node_cpu ?? rep.decode_bytes_per_token.wasm;
  if (!b) return '—';
  const mb = (x: number): string => (x / 1e6).toFixed(1);
  return `${mb(b.total)} MB/token (${mb(b.weights)} weights + ${mb(b.kv_cache)} K/V at ${rep.decode_prompt_tokens}+ tokens)`;
}

function table(rep: BenchReport): string {
  const f = (x: number | null | undefined, d = 1): string => (x == null ? '—' : x.toFixed(d));
  const pct = (x: number | null): string => (x == null ? '—' : `${(x * 100).toFixed(0)} %`);
  type Q4 = Figures['q4']['wasm'];
  const q4 = (
    r: Q4,
    k: 'prefill_tok_s' | 'decode_tok_s' | 'decode_roofline' | 'graph_bytes',
    scale = 1,
  ): string => (r ? `${f(r[k].q4 * scale)} (${f(r[k].fp32 * scale)})` : '—');
  const rows = (x: Figures): [string, string, string][] => [
    ['prefill 128, tok/s', f(x.prefill_tok_s.wasm), f(x.prefill_tok_s.node_cpu)],
    ['prefill 512, tok/s', f(x.prefill_512_tok_s.wasm), f(x.prefill_512_tok_s.node_cpu)],
    ['decode, tok/s', f(x.decode_tok_s.wasm), f(x.decode_tok_s.node_cpu)],
    ['decode, % of roofline', pct(x.decode_roofline.wasm), pct(x.decode_roofline.node_cpu)],
    [
      'hooked ÷ hook-free, prefill 512',
      f(x.hook_overhead_ratio_by_runtime.wasm, 3),
      f(x.hook_overhead_ratio_by_runtime.node_cpu, 3),
    ],
    [
      'hooked ÷ hook-free, decode',
      f(x.decode_hook_overhead_ratio.wasm, 3),
      f(x.decode_hook_overhead_ratio.node_cpu, 3),
    ],
    [
      'control: hook-free ÷ hook-free',
      f(x.control_ratio_by_runtime.wasm, 3),
      f(x.control_ratio_by_runtime.node_cpu, 3),
    ],
    ['q4 prefill 128, tok/s (fp32)', q4(x.q4.wasm, 'prefill_tok_s'), q4(x.q4.node_cpu, 'prefill_tok_s')],
    ['q4 decode, tok/s (fp32)', q4(x.q4.wasm, 'decode_tok_s'), q4(x.q4.node_cpu, 'decode_tok_s')],
    [
      'q4 decode, % of roofline (fp32)',
      q4(x.q4.wasm, 'decode_roofline', 100),
      q4(x.q4.node_cpu, 'decode_roofline', 100),
    ],
    ['q4 graph MB (fp32)', q4(x.q4.wasm, 'graph_bytes', 1e-6), q4(x.q4.node_cpu, 'graph_bytes', 1e-6)],
    [
      'sweep ms/cell, batched',
      f(x.sweep_ms_per_cell.wasm?.batched, 0),
      f(x.sweep_ms_per_cell.node_cpu?.batched, 0),
    ],
    [
      'sweep ms/cell, one pass each',
      f(x.sweep_ms_per_cell.wasm?.sequential, 0),
      f(x.sweep_ms_per_cell.node_cpu?.sequential, 0),
    ],
    [
      'sweep speedup per cell, ×',
      f(x.sweep_speedup_per_cell_by_runtime.wasm, 2),
      f(x.sweep_speedup_per_cell_by_runtime.node_cpu, 2),
    ],
  ];
  const wall = rows(rep);
  const cpu = rows(rep.cpu_time);
  const w0 = Math.max(...wall.map((r) => r[0].length));
  // NOTE: a column is as wide as its widest cell (the q4 rows carry "q4 (fp32)" pairs)
  const cw = Math.max(8, ...wall.flatMap((r, i) => [r[1], r[2], cpu[i][1], cpu[i][2]].map((x) => x.length)));
  const cell = (s: string): string => s.padStart(cw);
  const lines = [
    `${rep.machine.cpu}, ${rep.machine.cores} cores, ${rep.threads} thread(s), ${rep.date}`,
    `decode after ${rep.decode_prompt_tokens} tokens; sweep prompt ${rep.sweep_seq_len} tokens, ${rep.sweep_batch_rows} rows per call`,
    `load average ${rep.load_avg.start.load.join(' ')} → ${rep.load_avg.end.load.join(' ')}; ${rep.wall_s} s`,
    rep.bandwidth
      ? `read bandwidth ${rep.bandwidth.gbS} GB/s (${rep.bandwidth.method}); decode reads ${bytesLine(rep)}`
      : 'read bandwidth not measured (no decode section)',
    '',
    `${''.padEnd(w0)} | ${'wall clock'.padEnd(2 * cw + 3)} | CPU time`,
    `${'metric'.padEnd(w0)} | ${cell('wasm')} | ${cell('node_cpu')} | ${cell('wasm')} | ${cell('node_cpu')}`,
    `${'-'.repeat(w0)}-|-${'-'.repeat(cw)}-|-${'-'.repeat(cw)}-|-${'-'.repeat(cw)}-|-${'-'.repeat(cw)}`,
    ...wall.map(
      ([a, b, c], i) => `${a.padEnd(w0)} | ${cell(b)} | ${cell(c)} | ${cell(cpu[i][1])} | ${cell(cpu[i][2])}`,
    ),
    '',
    ...targetLines(rep),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === 'lens') return (await import('./lens')).benchLens(process.argv.slice(3));
  const args = parseArgs(process.argv.slice(2));
  // NOTE: V8 first compiles WASM with its baseline compiler (Liftoff) and tiers hot functions up to
  // TurboFan in the background over the first ~40 decode steps; before that WASM runs ~2× slower and
  // the tier-up steals CPU. Compiling with TurboFan up front measures the steady state from the start.
  if (!args.liftoff) setFlagsFromString('--no-liftoff');
  const t0 = performance.now();
  const start = loadSample();
  log(
    `load average ${start.load.join(' ')}; ${args.threads} thread(s); runtimes ${args.runtimes.join(', ')}`,
  );
  // NOTE: 'error' keeps ORT's placement notes off the output; both runtimes get the same thread count.
  configureOrt({ numThreads: args.threads, logLevel: 'error' });
  // NOTE: only the default folder is (re)written; `--model-dir` names a model made elsewhere, kept as it is
  if (args.modelDir === DEFAULT_MODEL_DIR) ensureBenchModel(args.modelDir);
  // NOTE: the load section runs in child processes of its own; it needs nothing loaded here
  const load = args.only.includes('load')
    ? await measureLoad(args.runtimes, args.threads, args.loadDtypes, args.loadWays, args.loadSessionConfig)
    : null;
  // NOTE: the tab section runs in Chromium; nothing of it is loaded here
  const tab = args.only.includes('tab')
    ? await measureTab({ pair: args.tabPair, dtype: args.tabDtype, visits: args.tabVisits })
    : null;
  const { spec, weights } = await loadModel(folderSource(args.modelDir));
  const rest = args.only.filter(
    (x) => x !== 'heatmap' && x !== 'neighbours' && x !== 'int8' && x !== 'load' && x !== 'tab',
  );
  const results = rest.length ? await measureAll(spec, weights, args) : new Map<Runtime, RuntimeResult>();
  const decodeRan = ['decode', 'q4'].some((x) => args.only.includes(x as Section));
  let bw: Bandwidth | null = null;
  if (decodeRan) {
    log('measuring read bandwidth (256 MiB, one thread)');
    bw = await measureBandwidth();
    log(
      `read bandwidth ${bw.gbS} GB/s (${Object.entries(bw.byMethod)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    );
  }
  const heatmap = args.only.includes('heatmap')
    ? await measureHeatmap(spec, weights, {
        ...defaultHeatmapArgs(args.runtimes),
        ...(args.heatmapStride ? { stride: args.heatmapStride } : {}),
      })
    : null;
  const neighbours = args.only.includes('neighbours') ? await measureNeighbours(args.runtimes) : null;
  const int8 = args.only.includes('int8') ? await measureInt8(args.runtimes, args.threads, args.reps) : null;
  const report = {
    ...buildReport(args, results, start, (performance.now() - t0) / 1000, bw, spec),
    heatmap,
    neighbours,
    int8,
    load,
    tab,
  };
  log(`done in ${report.wall_s} s`);
  const text = [
    rest.length ? table(report) : '',
    heatmap ? heatmapTable(heatmap) : '',
    neighbours ? neighboursTable(neighbours) : '',
    int8 ? int8Table(int8) : '',
    load ? loadTable(load) : '',
    tab ? tabTable(tab) : '',
  ].filter(Boolean);
  process.stdout.write(args.json ? `${JSON.stringify(report)}\n` : `${text.join('\n\n')}\n`);
}

main().then(
  // NOTE: onnxruntime-web's WASM thread pool keeps Node alive; leave once the report is out.
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
