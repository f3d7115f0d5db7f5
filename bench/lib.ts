// Bench helpers: argument parsing, timing and statistics, the machine description, and the random
// SmolLM2-135M-shaped model folder under .cache/ (written once, rewritten when missing or of another shape).
// Must never print to stdout (stdout carries the report / the one JSON object) and never assert: the
// bench prints numbers, it does not pass or fail.

import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { SMOLLM2_135M_SHAPE, writeRandomLlama } from '../scripts/fixtures/random-llama';

export type Runtime = 'wasm' | 'node_cpu';
/** the random SmolLM2-135M-shaped model the bench writes when missing */
export const DEFAULT_MODEL_DIR = '.cache/bench-model';
export const RUNTIMES: readonly Runtime[] = ['wasm', 'node_cpu'];

/**
 * Parts of the bench: prefill 128; decode; the sweep; hooked vs hook-free (prefill 512 and decode); and,
 * only when asked for, `control`: two sessions of the same hook-free graph against each other (the
 * noise floor of the overhead figure), and `q4`: the 4-bit graph (MatMulNBits) against fp32, prefill 128
 * and decode, with the bytes each graph holds.
 */
export type Section =
  | 'prefill'
  | 'decode'
  | 'sweep'
  | 'overhead'
  | 'control'
  | 'q4'
  | 'heatmap'
  | 'neighbours'
  | 'int8'
  | 'load'
  | 'tab';
export const SECTIONS: readonly Section[] = [
  'prefill',
  'decode',
  'sweep',
  'overhead',
  'control',
  'q4',
  // the full-prefix K/V heatmap, old vs prefix-cache sweep (bench/heatmap.ts): only when asked for
  'heatmap',
  // one random perturbation's neighbours, JS scan vs graph-side search (bench/neighbours.ts): when asked
  'neighbours',
  // fp32 vs int8 vs q4 prefill and decode, SmolLM2 and 0.5B shapes (bench/int8.ts): only when asked for
  'int8',
  // the 0.5B LoRA pair from cached files to the first answer: times and peak RSS (bench/load.ts): when asked
  'load',
  // the same pair by Hub ids in a Chromium tab (WASM): load time, answers, renderer peak RSS (bench/tab.ts)
  'tab',
];
const DEFAULT_SECTIONS: readonly Section[] = ['prefill', 'decode', 'sweep', 'overhead'];

export interface BenchArgs {
  json: boolean;
  runtimes: Runtime[];
  /** sections to run (default all) */
  only: Section[];
  /** intra-op threads for both runtimes (WASM thread pool and onnxruntime-node) */
  threads: number;
  /** timed repetitions per measurement (after one warm-up) */
  reps: number;
  /** hooked / hook-free prefill-512 pairs for the overhead */
  overheadPairs: Record<Runtime, number>;
  /** decode steps timed per run */
  decodeTokens: number;
  /** prompt length before the decode steps (the cache the steps start from) */
  decodePrompt: number;
  /** prompt length of the sweep (the 16 swept positions are its first 16 tokens) */
  sweepSeq: number;
  /** rows per batched sweep call */
  sweepBatch: number;
  /** batched sweep calls to time per runtime (0 = the whole 30 × 16 grid) */
  sweepCalls: Record<Runtime, number>;
  /** cells run one pass each for the sequential estimate */
  sweepSequentialCells: Record<Runtime, number>;
  /** `--heatmap-stride S[,Q]`: sweep every S-th prefix position (SmolLM2 shape) / Q-th (0.5B shape) */
  heatmapStride?: { small: number; qwen: number };
  /** keep V8's default WASM tiering (Liftoff first); default false: TurboFan up front */
  liftoff: boolean;
  modelDir: string;
  /** `--kv-cache`: the K/V cache layout of the timed models (default: the engine's, append on the CPU) */
  kvCache?: 'append' | 'concat';
  /** `--only load`: the weight dtypes to load (default fp32) */
  loadDtypes: ('fp32' | 'int8' | 'q4')[];
  /** `--only load`: stream (the lab's path) and / or map (the whole WeightMap first, the old path) */
  loadWays: ('stream' | 'map' | 'file' | 'file-warm')[];
  /** `--only load`: ORT session config entries for the loads (`--load-session-config k=v,…`) */
  loadSessionConfig?: Record<string, string>;
  /** `--only tab`: which pair the tab loads (bench/tab.ts TAB_PAIRS) */
  tabPair: string;
  /** `--only tab`: the Models panel's Weights choice */
  tabDtype: 'fp32' | 'int8' | 'q4';
  /** `--only tab`: the visits to make (cold = empty profile, warm = the same profile again) */
  tabVisits: ('cold' | 'warm')[];
}

const USAGE = `npm run bench -- [--json] [--runtimes wasm,node_cpu] [--only prefill,decode,sweep,overhead,control,q4] [--threads N] [--reps N] [--overhead-pairs N]
  [--decode-tokens N] [--decode-prompt T] [--sweep-seq T] [--sweep-batch B] [--sweep-calls N|all] [--sweep-seq-cells N] [--heatmap-stride S[,Q]] [--liftoff] [--kv-cache append|concat]
  [--model-dir DIR (an existing model folder instead of the SmolLM2-135M-shaped bench model)]
  [--load-dtypes fp32,int8,q4] [--load-ways stream,map,file,file-warm] [--load-session-config key=value,…] (with --only load)
  [--tab-pair qwen0.5b-lora|qwen0.5b-ft|llama1b-lora] [--tab-dtype fp32|int8|q4] [--tab-visits cold,warm] (with --only tab)`;

function intArg(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer ≥ ${min}\n${USAGE}`);
  return n;
}

export function parseArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = {
    json: false,
    runtimes: [...RUNTIMES],
    only: [...DEFAULT_SECTIONS],
    threads: 1,
    reps: 3,
    // NOTE: a WASM prefill of 512 takes ~5 s of CPU
    overheadPairs: { wasm: 3, node_cpu: 5 },
    decodeTokens: 32,
    decodePrompt: 128,
    sweepSeq: 48,
    sweepBatch: 16,
    // NOTE: ~3 minutes of CPU in all, so that a loaded 2-core box still finishes within 10 minutes: part
    // of the grid is timed and the per-cell time extrapolated (`--sweep-calls all` times the whole grid).
    sweepCalls: { wasm: 3, node_cpu: 10 },
    sweepSequentialCells: { wasm: 6, node_cpu: 16 },
    liftoff: false,
    modelDir: DEFAULT_MODEL_DIR,
    loadDtypes: ['fp32'],
    loadWays: ['stream', 'map'],
    tabPair: 'qwen0.5b-lora',
    tabDtype: 'fp32',
    tabVisits: ['cold', 'warm'],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string | undefined => argv[++i];
    switch (a) {
      case '--json':
        args.json = true;
        break;
      case '--runtimes': {
        const list = (next() ?? '').split(',').map((s) => s.trim().replace('-', '_'));
        const bad = list.filter((r) => !RUNTIMES.includes(r as Runtime));
        if (bad.length || list.length === 0) throw new Error(`unknown runtime ${bad.join(', ')}\n${USAGE}`);
        args.runtimes = list as Runtime[];
        break;
      }
      case '--only': {
        const list = (next() ?? '').split(',').map((x) => x.trim());
        const bad = list.filter((x) => !SECTIONS.includes(x as Section));
        if (bad.length || list.length === 0) throw new Error(`unknown section ${bad.join(', ')}\n${USAGE}`);
        args.only = list as Section[];
        break;
      }
      case '--threads':
        args.threads = intArg(a, next(), 1);
        break;
      case '--reps':
        args.reps = intArg(a, next(), 1);
        break;
      case '--overhead-pairs': {
        const n = intArg(a, next(), 1);
        args.overheadPairs = { wasm: n, node_cpu: n };
        break;
      }
      case '--decode-tokens':
        args.decodeTokens = intArg(a, next(), 2);
        break;
      case '--decode-prompt':
        args.decodePrompt = intArg(a, next(), 1);
        break;
      case '--sweep-seq':
        args.sweepSeq = intArg(a, next(), 16);
        break;
      case '--sweep-batch':
        args.sweepBatch = intArg(a, next(), 2);
        break;
      case '--sweep-calls': {
        const v = next();
        const n = v === 'all' ? 0 : intArg(a, v, 1);
        args.sweepCalls = { wasm: n, node_cpu: n };
        break;
      }
      case '--sweep-seq-cells': {
        const n = intArg(a, next(), 1);
        args.sweepSequentialCells = { wasm: n, node_cpu: n };
        break;
      }
      case '--heatmap-stride': {
        const [a1, a2] = (next() ?? '').split(',');
        const small = intArg(a, a1, 1);
        args.heatmapStride = { small, qwen: a2 === undefined ? small : intArg(a, a2, 1) };
        break;
      }
      case '--liftoff':
        args.liftoff = true;
        break;
      case '--kv-cache': {
        const v = next();
        if (v !== 'append' && v !== 'concat') throw new Error(`--kv-cache takes append or concat\n${USAGE}`);
        args.kvCache = v;
        break;
      }
      case '--model-dir': {
        const dir = next();
        if (!dir) throw new Error(`--model-dir needs a folder\n${USAGE}`);
        args.modelDir = dir;
        break;
      }
      case '--load-dtypes': {
        const list = (next() ?? '').split(',').map((x) => x.trim());
        if (list.some((x) => !['fp32', 'int8', 'q4'].includes(x)))
          throw new Error(`--load-dtypes takes fp32, int8, q4\n${USAGE}`);
        args.loadDtypes = list as BenchArgs['loadDtypes'];
        break;
      }
      case '--load-ways': {
        const list = (next() ?? '').split(',').map((x) => x.trim());
        if (list.some((x) => !['stream', 'map', 'file', 'file-warm'].includes(x)))
          throw new Error(`--load-ways takes stream, map, file, file-warm\n${USAGE}`);
        args.loadWays = list as BenchArgs['loadWays'];
        break;
      }
      case '--load-session-config': {
        const entries = (next() ?? '').split(',').map((kv) => kv.split('='));
        if (entries.some((e) => e.length !== 2 || !e[0]))
          throw new Error(`--load-session-config takes key=value,…\n${USAGE}`);
        args.loadSessionConfig = Object.fromEntries(entries);
        break;
      }
      case '--tab-pair': {
        const v = next() ?? '';
        if (!['qwen0.5b-lora', 'qwen0.5b-ft', 'llama1b-lora'].includes(v))
          throw new Error(`--tab-pair takes qwen0.5b-lora, qwen0.5b-ft, llama1b-lora\n${USAGE}`);
        args.tabPair = v;
        break;
      }
      case '--tab-dtype': {
        const v = next() ?? '';
        if (!['fp32', 'int8', 'q4'].includes(v))
          throw new Error(`--tab-dtype takes fp32, int8, q4\n${USAGE}`);
        args.tabDtype = v as BenchArgs['tabDtype'];
        break;
      }
      case '--tab-visits': {
        const list = (next() ?? '').split(',').map((x) => x.trim());
        if (!list.length || list.some((x) => x !== 'cold' && x !== 'warm'))
          throw new Error(`--tab-visits takes cold, warm\n${USAGE}`);
        args.tabVisits = list as BenchArgs['tabVisits'];
        break;
      }
      case '--help':
      case '-h':
        process.stderr.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  return args;
}

/** Progress line on stderr. */
export function log(msg: string): void {
  process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Wall-clock and process CPU milliseconds. */
export interface Timing {
  wall: number;
  cpu: number;
}

/** Process CPU time (all threads), ms. */
export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Wall-clock and CPU milliseconds taken by `f`. */
export async function timed(f: () => Promise<unknown>): Promise<Timing> {
  const w0 = performance.now();
  const c0 = cpuNow();
  await f();
  return { wall: performance.now() - w0, cpu: cpuNow() - c0 };
}

export const addTimings = (a: Timing, b: Timing): Timing => ({ wall: a.wall + b.wall, cpu: a.cpu + b.cpu });

export interface LoadSample {
  /** 1-, 5- and 15-minute load averages */
  load: [number, number, number];
  at: string;
}

export function loadSample(): LoadSample {
  const [a, b, c] = loadavg();
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { load: [r(a), r(b), r(c)], at: new Date().toISOString() };
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  platform: string;
  onnxruntimeWeb: string;
  onnxruntimeNode: string | null;
}

function packageVersion(name: string): string | null {
  try {
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    onnxruntimeWeb: packageVersion('onnxruntime-web') ?? 'unknown',
    onnxruntimeNode: packageVersion('onnxruntime-node'),
  };
}

/** The bench model's folder: written (≈ 540 MB F32, a few seconds) unless already there with this shape. */
export function ensureBenchModel(dir: string): void {
  const shape = SMOLLM2_135M_SHAPE;
  const configPath = `${dir}/config.json`;
  if (existsSync(configPath) && existsSync(`${dir}/model.safetensors`)) {
    const c = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    if (
      c.hidden_size === shape.hiddenSize &&
      c.num_hidden_layers === shape.numLayers &&
      c.vocab_size === shape.vocabSize &&
      c.intermediate_size === shape.intermediateSize
    ) {
      return;
    }
  }
  log(`writing the random SmolLM2-135M-shaped model to ${dir}`);
  // NOTE: write beside it and rename, so an interrupted write never leaves a half model that looks whole.
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  writeRandomLlama(tmp, shape, 1);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}
