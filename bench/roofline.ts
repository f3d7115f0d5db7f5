// The decode roofline: this machine's single-thread memory read bandwidth, measured by the bench, and the
// bytes one decode step must read (the weights it streams plus the K/V cache it attends over), so that
// every decode figure can say how close it is to the bound: tok/s × bytes per token ÷ bandwidth.
// Must never print to stdout and never assert: it measures and computes, bench/run.ts reports.

import { DataType } from '../src/engine/graph/proto';
import { GraphBuilder } from '../src/engine/graph/builder';
import { loadOrtNode, type Ort } from '../src/engine/session';
import type { ArchSpec } from '../src/engine/types';
import { log } from './lib';

export interface Bandwidth {
  /** the figure the roofline uses: the best of the methods measured, GB/s (10⁹ bytes/s) */
  gbS: number;
  /** how it was measured, e.g. "onnxruntime-node Gemm transB GEMV, 1 thread, 256 MiB fp32, best of 7" */
  method: string;
  /** every method's best, GB/s */
  byMethod: Record<string, number>;
}

/** 256 MiB: far beyond any last-level cache, so the sum streams from DRAM. */
const BYTES = 256 * 2 ** 20;
const REPS = 7;

/** Σ of a large Float32Array in plain JS (4 accumulators): a floor, V8 is not always load-bound here. */
function jsSumGbS(data: Float32Array): number {
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    let a = 0;
    let b = 0;
    let c = 0;
    let d = 0;
    const n = data.length;
    for (let i = 0; i < n; i += 4) {
      a += data[i];
      b += data[i + 1];
      c += data[i + 2];
      d += data[i + 3];
    }
    sink += a + b + c + d;
    best = Math.min(best, performance.now() - t0);
  }
  if (Number.isNaN(sink)) log('bandwidth: JS sum was NaN');
  return data.byteLength / (best / 1000) / 1e9;
}

type Kernel = 'ReduceSum' | 'MatMul' | 'Gemm';

/**
 * One pass of an onnxruntime-node CPU kernel over the buffer, one intra-op thread: ReduceSum of its rows,
 * or a GEMV with the buffer as the matrix (MatMul [1,K]·[K,N], or Gemm transB [1,K]·[N,K]ᵀ, which is what
 * a decode step does with each weight). Best of REPS after a warm-up.
 */
async function ortPassGbS(ort: Ort, data: Float32Array, kernel: Kernel): Promise<number> {
  const K = 4096;
  const n = data.length / K;
  const b = new GraphBuilder();
  const w = b.input('w', DataType.FLOAT, kernel === 'MatMul' ? [K, n] : [n, K]);
  const feeds: Record<string, InstanceType<Ort['Tensor']>> = {
    // NOTE: onnxruntime-node wraps an input's memory without copying it, so a run reads it once.
    w: new ort.Tensor('float32', data, kernel === 'MatMul' ? [K, n] : [n, K]),
  };
  let y: string;
  if (kernel === 'ReduceSum') {
    y = b.op('ReduceSum', [w, b.constI64([1])], [{ name: 'keepdims', type: 'int', value: 0 }], 'y');
    b.output(y, DataType.FLOAT, [n]);
  } else {
    const a = b.input('a', DataType.FLOAT, [1, K]);
    feeds.a = new ort.Tensor('float32', new Float32Array(K).fill(1), [1, K]);
    y = kernel === 'MatMul' ? b.matmul(a, w, 'y') : b.gemmTransB(a, w, 'y');
    b.output(y, DataType.FLOAT, [1, n]);
  }
  const session = await ort.InferenceSession.create(b.build([{ domain: '', version: 17 }]).model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  try {
    let best = Infinity;
    for (let r = 0; r <= REPS; r++) {
      const t0 = performance.now();
      const out = await session.run(feeds, ['y']);
      const ms = performance.now() - t0;
      out.y.dispose();
      if (r > 0) best = Math.min(best, ms); // the first run is the warm-up
    }
    return data.byteLength / (best / 1000) / 1e9;
  } finally {
    await session.release();
  }
}

/**
 * Single-thread read bandwidth: the best of onnxruntime-node's GEMV and ReduceSum passes (when it is
 * installed) and a JS sum over the same 256 MiB. On a shared machine it moves with the load; the bench
 * measures it in the same run as the decode figures it divides.
 */
export async function measureBandwidth(): Promise<Bandwidth> {
  const data = new Float32Array(BYTES / 4);
  for (let i = 0; i < data.length; i++) data[i] = (i % 251) * 0.5; // touch every page
  const byMethod: Record<string, number> = {};
  let ort: Ort | null = null;
  try {
    ort = await loadOrtNode();
  } catch {
    ort = null;
  }
  if (ort) {
    for (const k of ['Gemm', 'MatMul', 'ReduceSum'] as const)
      byMethod[
        `onnxruntime-node ${k === 'Gemm' ? 'Gemm transB GEMV' : k === 'MatMul' ? 'MatMul GEMV' : 'ReduceSum'}`
      ] = await ortPassGbS(ort, data, k);
  }
  byMethod['JS Float32Array sum'] = jsSumGbS(data);
  const [method, gbS] = Object.entries(byMethod).reduce((a, e) => (e[1] > a[1] ? e : a));
  return {
    gbS: Number(gbS.toPrecision(4)),
    method: `${method}, 1 thread, ${BYTES / 2 ** 20} MiB fp32, best of ${REPS}`,
    byMethod: Object.fromEntries(Object.entries(byMethod).map(([k, v]) => [k, Number(v.toPrecision(4))])),
  };
}

export interface DecodeBytes {
  /** weight bytes a decode step streams (every matrix, norms and biases, the head; not the embedding table
   * when untied, of which one row is gathered; not the RoPE tables, of which one row is gathered) */
  weights: number;
  /** K/V cache bytes the step reads at the mean context of the timed steps */
  kvCache: number;
  total: number;
}

/**
 * Bytes read per decode token for a graph of `graphBytes` (model proto + external data, as
 * EngineModel.graphBytes) built from `spec` with `maxPositions` RoPE rows and an fp32 embedding of
 * `embeddingBytes` (0 when the embedding is quantized and shared with the head), at a mean context of
 * `contextTokens` (the K/V cache is fp32).
 */
export function decodeBytesPerToken(
  spec: ArchSpec,
  graphBytes: number,
  maxPositions: number,
  contextTokens: number,
  embeddingBytes = spec.vocabSize * spec.hiddenSize * 4,
): DecodeBytes {
  const ropeTables = spec.localRope ? 4 : 2;
  const rope = ropeTables * maxPositions * spec.headDim * 4;
  // NOTE: a tied head reads the whole embedding once per token (Gemm on the table); an untied one reads
  // lm_head instead, and the table is only gathered (one row)
  const weights = graphBytes - rope - (spec.tieWordEmbeddings ? 0 : embeddingBytes);
  const kvCache = 2 * spec.numLayers * spec.numKvHeads * spec.headDim * 4 * contextTokens;
  return { weights, kvCache, total: weights + kvCache };
}

/** Fraction of the bandwidth bound a decode speed reaches: tok/s × bytes per token ÷ bytes/s. */
export function rooflineFraction(tokS: number, bytesPerToken: number, bw: Bandwidth): number {
  return (tokS * bytesPerToken) / (bw.gbS * 1e9);
}

/** The bound itself: the most tokens per second this bandwidth can stream `bytesPerToken` for. */
export function rooflineTokS(bytesPerToken: number, bw: Bandwidth): number {
  return (bw.gbS * 1e9) / bytesPerToken;
}
