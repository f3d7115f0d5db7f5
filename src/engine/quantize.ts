// 4-bit block quantization of linear weights in ONNX Runtime's MatMulNBits layout (com.microsoft):
// for W [N, K] (HF's [out, in]) and block size 32 — codes uint8 [N, ceil(K/32), 16] with two 4-bit
// codes per byte, low nibble first along K; scales fp32 [N · blocks]; optional zero points uint8
// [N · ceil(blocks/2)], packed the same way (absent = 8). Dequantized value = (code − zp) · scale.
// The rounding follows ORT's MLAS quantizer (symmetric: scale = (signed absmax)/−8; asymmetric:
// min/max stretched to include 0, scale = range/15, zp = round(−min/scale)).
// Pure arithmetic on typed arrays: must never build graph nodes (graph/ does that), never import
// ORT, Node APIs or the DOM.

import { f16ToF32, f32ToF16 } from './safetensors';
import type { Tensor, WeightMap } from './types';

export const Q4_BLOCK = 32;

export interface Q4Matrix {
  /** rows (output features) */
  n: number;
  /** columns (input features, the reduction axis) */
  k: number;
  blockSize: number;
  /** [n, blocks, blockSize/2] */
  codes: Uint8Array;
  /** [n · blocks] */
  scales: Float32Array;
  /** [n · ceil(blocks/2)], or null for the default zero point 8 */
  zeroPoints: Uint8Array | null;
}

/**
 * What the engine's q4 graphs use (graph/decoder.ts): 32-wide blocks with zero points (asymmetric)
 * where the row count is a multiple of 4, so `q4RoundTrip(weights, ENGINE_Q4)` is what the 4-bit graph
 * computes with.
 */
export const ENGINE_Q4 = { blockSize: Q4_BLOCK, symmetric: false, alignedZeroPoints: true } as const;

export interface Q4Options {
  blockSize?: number;
  /** default true: no zero points (what ORT's quantizer does with is_symmetric) */
  symmetric?: boolean;
  /**
   * with symmetric false: keep zero points only when n is a multiple of 4, symmetric otherwise — ORT's
   * WebGPU MatMulNBits reads the packed zero points as 32-bit words and fails on other sizes
   */
  alignedZeroPoints?: boolean;
}

export function q4Blocks(k: number, blockSize = Q4_BLOCK): number {
  return Math.ceil(k / blockSize);
}

const clamp15 = (x: number) => (x < 0 ? 0 : x > 15 ? 15 : x);

/** Whether `quantizeQ4` gives an [n, k] matrix zero points under these options (before quantizing). */
export function q4HasZeroPoints(n: number, opts: Q4Options = {}): boolean {
  return !((opts.symmetric ?? true) || (!!opts.alignedZeroPoints && n % 4 !== 0));
}

/** Quantizes row-major W [n, k] (fp32) to MatMulNBits inputs. */
export function quantizeQ4(w: Float32Array, n: number, k: number, opts: Q4Options = {}): Q4Matrix {
  const bs = opts.blockSize ?? Q4_BLOCK;
  if (bs < 16 || (bs & (bs - 1)) !== 0)
    throw new Error(`block size ${bs}: MatMulNBits needs a power of two ≥ 16`);
  if (w.length !== n * k) throw new Error(`weights have ${w.length} values, [${n}, ${k}] needs ${n * k}`);
  const symmetric = !q4HasZeroPoints(n, opts);
  const blocks = q4Blocks(k, bs);
  const half = bs / 2;
  const codes = new Uint8Array(n * blocks * half);
  const scales = new Float32Array(n * blocks);
  const zpStride = Math.ceil(blocks / 2);
  const zeroPoints = symmetric ? null : new Uint8Array(n * zpStride);
  const q = new Uint8Array(bs);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) {
      const start = b * bs;
      const end = Math.min(k, start + bs);
      let scale: number;
      let zp: number;
      if (symmetric) {
        let signedMax = 0;
        for (let i = start; i < end; i++) {
          const v = w[r * k + i];
          if (Math.abs(v) > Math.abs(signedMax)) signedMax = v;
        }
        scale = signedMax === 0 ? 0 : Math.fround(signedMax / -8);
        zp = 8;
      } else {
        let lo = 0;
        let hi = 0;
        for (let i = start; i < end; i++) {
          const v = w[r * k + i];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        scale = Math.fround((hi - lo) / 15);
        zp = scale === 0 ? 8 : clamp15(Math.round(-lo / scale));
      }
      const inv = scale === 0 ? 0 : 1 / scale;
      q.fill(zp);
      for (let i = start; i < end; i++) q[i - start] = clamp15(Math.round(w[r * k + i] * inv) + zp);
      const base = (r * blocks + b) * half;
      for (let j = 0; j < half; j++) codes[base + j] = q[2 * j] | (q[2 * j + 1] << 4);
      scales[r * blocks + b] = scale;
      if (zeroPoints) {
        const zi = r * zpStride + (b >> 1);
        zeroPoints[zi] |= (b & 1) === 0 ? zp : zp << 4;
      }
    }
  }
  return { n, k, blockSize: bs, codes, scales, zeroPoints };
}

/** The fp32 matrix MatMulNBits computes with: (code − zp) · scale. */
export function dequantizeQ4(m: Q4Matrix): Float32Array {
  const { n, k, blockSize: bs } = m;
  const blocks = q4Blocks(k, bs);
  const half = bs / 2;
  const zpStride = Math.ceil(blocks / 2);
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) {
      const scale = m.scales[r * blocks + b];
      const zp = m.zeroPoints ? (m.zeroPoints[r * zpStride + (b >> 1)] >> ((b & 1) * 4)) & 15 : 8;
      const base = (r * blocks + b) * half;
      for (let i = b * bs; i < Math.min(k, (b + 1) * bs); i++) {
        const j = i - b * bs;
        const byte = m.codes[base + (j >> 1)];
        const code = (j & 1) === 0 ? byte & 15 : byte >> 4;
        out[r * k + i] = (code - zp) * scale;
      }
    }
  }
  return out;
}

/** Whether a weight is one MatMulNBits would carry: a 2-D projection (and the LM head / embedding). */
function isQuantizable(name: string, t: Tensor, includeEmbedding = true): boolean {
  if (t.shape.length !== 2) return false;
  if (name === 'model.embed_tokens.weight') return includeEmbedding;
  return (
    /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/.test(name) ||
    name === 'lm_head.weight'
  );
}

/** Every quantizable weight → its Q4 matrix. */
export function quantizeWeights(
  weights: WeightMap,
  opts: Q4Options & { includeEmbedding?: boolean } = {},
): Map<string, Q4Matrix> {
  const out = new Map<string, Q4Matrix>();
  for (const [name, t] of weights) {
    if (isQuantizable(name, t, opts.includeEmbedding ?? true))
      out.set(name, quantizeQ4(t.data, t.shape[0], t.shape[1], opts));
  }
  return out;
}

/** The weights as the 4-bit model sees them (quantized then dequantized), for error measurements. */
export function q4RoundTrip(
  weights: WeightMap,
  opts: Q4Options & { includeEmbedding?: boolean } = {},
): WeightMap {
  const out: WeightMap = new Map(weights);
  for (const [name, q] of quantizeWeights(weights, opts))
    out.set(name, { shape: [q.n, q.k], data: dequantizeQ4(q) });
  return out;
}

export interface ErrorStats {
  maxAbs: number;
  rmse: number;
  /** ‖a − b‖ / ‖a‖ */
  relative: number;
}

export function errorStats(a: ArrayLike<number>, b: ArrayLike<number>): ErrorStats {
  let maxAbs = 0;
  let se = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    se += d * d;
    norm += a[i] * a[i];
  }
  return {
    maxAbs,
    rmse: Math.sqrt(se / Math.max(1, a.length)),
    relative: norm > 0 ? Math.sqrt(se / norm) : 0,
  };
}

// --- int8 (CPU / WASM) -----------------------------------------------------------------------------
// Per-output-row symmetric 8-bit weights for ORT's `com.microsoft` DynamicQuantizeMatMul: B int8 [K, N]
// (MatMul's layout: the transposed HF matrix), b_scale fp32 [N] (one per output feature), no zero point.
// Dequantized value = code · scale, codes in −127…127 (−128 unused, so the range is symmetric).
// The activations are quantized per tensor to uint8 at run time by the kernel (DynamicQuantizeLinear).

export interface Int8Matrix {
  /** rows of W (output features) */
  n: number;
  /** columns of W (input features, the reduction axis) */
  k: number;
  /** W's codes transposed: [k, n] row-major (`codes[c·n + r]` is W[r, c]) */
  codes: Int8Array;
  /** [n] */
  scales: Float32Array;
}

const clamp127 = (x: number) => (x < -127 ? -127 : x > 127 ? 127 : x);

/** Quantizes row-major W [n, k] (fp32) to DynamicQuantizeMatMul's B and b_scale. */
export function quantizeInt8(w: Float32Array, n: number, k: number): Int8Matrix {
  if (w.length !== n * k) throw new Error(`weights have ${w.length} values, [${n}, ${k}] needs ${n * k}`);
  const codes = new Int8Array(n * k);
  const scales = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const base = r * k;
    let m = 0;
    for (let c = 0; c < k; c++) {
      const a = Math.abs(w[base + c]);
      if (a > m) m = a;
    }
    const scale = Math.fround(m / 127);
    scales[r] = scale;
    const inv = scale === 0 ? 0 : 1 / scale;
    for (let c = 0; c < k; c++) codes[c * n + r] = clamp127(Math.round(w[base + c] * inv));
  }
  return { n, k, codes, scales };
}

/** The fp32 matrix [n, k] the int8 graph's weights stand for: code · scale. */
export function dequantizeInt8(m: Int8Matrix): Float32Array {
  const { n, k } = m;
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    const s = m.scales[r];
    for (let c = 0; c < k; c++) out[r * k + c] = m.codes[c * n + r] * s;
  }
  return out;
}

/**
 * The weights as the int8 graph stores them (quantized then dequantized): every projection, an untied
 * lm_head and the embedding. The graph also quantizes each matmul's input per tensor at run time, which
 * this does not model (the tests bound that error separately).
 */
export function int8RoundTrip(weights: WeightMap): WeightMap {
  const out: WeightMap = new Map(weights);
  for (const [name, t] of weights) {
    if (isQuantizable(name, t))
      out.set(name, { shape: t.shape, data: dequantizeInt8(quantizeInt8(t.data, t.shape[0], t.shape[1])) });
  }
  return out;
}

/**
 * The weights as the fp16 graph stores them (rounded to binary16 and back): every projection, an untied
 * lm_head and the embedding, as `int8RoundTrip` picks them; norms and biases stay fp32.
 */
export function fp16RoundTrip(weights: WeightMap): WeightMap {
  const out: WeightMap = new Map(weights);
  for (const [name, t] of weights) {
    if (isQuantizable(name, t)) out.set(name, { shape: t.shape, data: f16ToF32(f32ToF16(t.data)) });
  }
  return out;
}
