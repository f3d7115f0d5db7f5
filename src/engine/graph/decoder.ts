// Builds the decoder ONNX graph for an ArchSpec: Llama-family and Gemma-2/3 blocks (sandwich norms, GeGLU,
// sliding-window layers with their own RoPE, soft-capping) from standard opset-17 ops, the
// hooks (residual and pre-RoPE K/V patches, LoRA dose, taps) as ordinary graph inputs and outputs, and
// the weights as ORT external data. Must never compute sin/cos in-graph (tables come from rope.ts), never
// merge LoRA into base weights, and never import ORT: it only produces bytes.

import { EngineError } from '../errors';
import {
  ENGINE_Q4,
  q4Blocks,
  q4HasZeroPoints,
  quantizeInt8,
  quantizeQ4,
  type Q4Matrix,
  type Int8Matrix,
} from '../quantize';
import { ropeTables } from '../rope';
import { f32ToF16Bits } from '../safetensors';
import type { ArchSpec, LoraAdapter, LoraTarget, Tensor, WeightMap } from '../types';
import {
  FILE_ALIGN,
  float32Source,
  GraphBuilder,
  type BuiltModelFiles,
  type ExternalDataFile,
  type ExternalDataSink,
  type WeightSource,
} from './builder';
import * as N from './names';
import { DataType } from './proto';

export interface DecoderOptions {
  /** LoRA branches (kept separate from base weights, scaled per row by `lora_scale`) */
  lora?: LoraAdapter;
  /** add the patch inputs (`resid_patch*`, `kv_patch_mask`, `k_patch`, `v_patch`); default true */
  patchInputs?: boolean;
  /** add the tap outputs (`resid.*`, `k.*`, `v.*`, `attn.*`); default true */
  tapOutputs?: boolean;
  /** rows of the RoPE tables (largest position id + 1); default min(maxPositionEmbeddings, 8192) */
  maxPositions?: number;
  /** external data file name (default `model.onnx.data`) */
  externalPath?: string;
  /** split external data into files of at most this many bytes (default 1 GiB) */
  externalChunkBytes?: number;
  /** offset alignment of the external tensors (default 64; `buildDecoderGraphTo` uses FILE_ALIGN) */
  externalAlign?: number;
  /**
   * How the base weights are stored (default fp32). q4: every matrix as 4-bit blocks — q/k/v/o,
   * gate/up/down and an untied lm_head run by ORT's `com.microsoft` MatMulNBits, the embedding by
   * GatherBlockQuantized (a tied head shares its codes); norms, biases and LoRA stay fp32. int8: every
   * matrix as per-row symmetric 8-bit codes run by `com.microsoft` DynamicQuantizeMatMul (the activation
   * is quantized per tensor to uint8 at run time: MLAS's integer GEMM on CPU / WASM), the embedding as
   * a Gather of the same codes a tied head multiplies by. fp16: every matrix in fp16, multiplied in fp16
   * between Casts of the activation (for WebGPU with shader-f16; CONTEXT.md), the rest fp32.
   */
  dtype?: GraphDtype;
  /**
   * q4 only: quantization block size (default 32), symmetric (default false: per-block zero points),
   * MatMulNBits accuracy_level (default 0: fp32 math), and whether the embedding is 4-bit too (default
   * true: GatherBlockQuantized, and a tied head runs MatMulNBits on the same codes)
   */
  q4?: { blockSize?: number; symmetric?: boolean; accuracyLevel?: number; embedding?: boolean };
  /**
   * fp32 only: an embedding (and an untied lm_head) larger than this many bytes is stored as row blocks
   * of at most this size — gathered block by block and multiplied block by block, the logits
   * concatenated — because WebGPU binds at most maxStorageBufferBindingSize per buffer (128 MiB by
   * default) and a 1B model's embedding is 1 GiB. Default: no limit (one tensor, as before).
   */
  maxWeightBytes?: number;
  /**
   * The K/V cache as an append buffer (for the CPU runtimes): `past.*` are the caller's capacity
   * buffers `[B, kvH, capacity, hd]` (slots ≥ `past_length` are slack, masked as padding in
   * `attention_mask`), attention reads past and new K/V without concatenating them, and the outputs
   * are only the T new slots (`kv_new.*`), which the caller writes into its buffer. Default false:
   * `present.*` = past ⧺ new (what WebGPU keeps on the GPU).
   */
  kvAppend?: boolean;
}

/** Weight storage the graph can build. */
export type GraphDtype = 'fp32' | 'q4' | 'int8' | 'fp16';

/** What the built graph takes and gives, by name. */
export interface DecoderIo {
  numLayers: number;
  /** how the base weights are stored */
  dtype: GraphDtype;
  hasLora: boolean;
  patchInputs: boolean;
  tapOutputs: boolean;
  maxPositions: number;
  /** built with `kvAppend`: `past_length` input, `kv_new.*` outputs instead of `present.*` */
  kvAppend: boolean;
  inputs: string[];
  outputs: string[];
}

export interface DecoderGraph {
  model: Uint8Array;
  externalData: ExternalDataFile[];
  io: DecoderIo;
}

/** ORT's contrib operator domain (MatMulNBits). */
const MS_DOMAIN = 'com.microsoft';

/** Additive attention bias for disallowed positions; finite so fully masked rows stay NaN-free. */
const MASK_NEG = -1e9;

/**
 * The base weights as the graph reads them: each tensor's shape when the graph is declared, its fp32
 * values only when that weight is written out (one tensor at a time, in declaration order), so a
 * provider reading from safetensors never holds the whole model. A WeightMap is one (`mapWeights`).
 */
export interface WeightProvider {
  /** the tensor's shape, or undefined when there is none of that name */
  shape(name: string): readonly number[] | undefined;
  /** fp32 values (row-major); may be scratch memory that is valid only until the next call */
  values(name: string): Float32Array | Promise<Float32Array>;
  /** the fp32 values written into `dst` (of the tensor's length) */
  valuesInto(name: string, dst: Float32Array): void | Promise<void>;
}

/** A WeightMap as a provider (synchronous: `buildDecoderGraph`). */
export function mapWeights(weights: WeightMap): WeightProvider {
  const get = (name: string): Tensor => {
    const t = weights.get(name);
    if (!t) throw new EngineError('missing_tensor', `weight ${name} is missing`, { tensor: name });
    return t;
  };
  return {
    shape: (name) => weights.get(name)?.shape,
    values: (name) => get(name).data,
    valuesInto: (name, dst) => dst.set(get(name).data),
  };
}

/** `f(x)` now when x is a value, after it when a promise (sync providers keep `build` synchronous). */
function then<T, R>(x: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> {
  return x instanceof Promise ? x.then(f) : f(x);
}

/**
 * A value computed on first use and dropped after its last declared use (a quantized matrix feeds its
 * codes, scales and zero points, written one after the other).
 */
function shared<T>(make: () => T | Promise<T>) {
  let uses = 0;
  let value: T | Promise<T> | null = null;
  return {
    use(): void {
      uses++;
    },
    take(): T | Promise<T> {
      value ??= make();
      const v = value;
      if (--uses <= 0) value = null;
      return v;
    },
  };
}

/** A weight whose bytes come from `make` at write time. */
/** int8 codes as DynamicQuantizeMatMul's unsigned B with zero point 128: code + 128 (a fresh array) */
function unsignedCodes(codes: Int8Array): Uint8Array {
  const out = new Uint8Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = codes[i] + 128;
  return out;
}

function lazySource(
  dataType: DataType,
  dims: readonly number[],
  byteLength: number,
  make: () => ArrayBufferView | Promise<ArrayBufferView>,
): WeightSource {
  return {
    dataType,
    dims,
    byteLength,
    write: (dst) =>
      then(make(), (v) => {
        if (v.byteLength !== byteLength)
          throw new Error(`weight of ${v.byteLength} bytes, ${byteLength} declared`);
        dst.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      }),
  };
}

const TILE = 64;

/** src [rows, cols] → out [cols, rows], × scale; tiled so both sides stay in cache. */
function transposeInto(
  src: Float32Array,
  rows: number,
  cols: number,
  out: Float32Array,
  scale: number,
): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        if (scale === 1) for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c];
        else for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c] * scale;
      }
    }
  }
}

const f32View = (dst: Uint8Array): Float32Array =>
  new Float32Array(dst.buffer, dst.byteOffset, dst.byteLength / 4);

/**
 * fp32 values → binary16 bits in `dst` (round to nearest even). A finite value beyond fp16's range
 * (±65504) is refused rather than turned into ±inf, which would poison every sum it enters.
 */
function f16Checked(name: string, v: number): number {
  const h = f32ToF16Bits(v);
  if ((h & 0x7c00) === 0x7c00 && Number.isFinite(v))
    throw new EngineError(
      'unsupported_config',
      `weight ${name} holds ${v}, beyond fp16's range (±65504): load it in fp32`,
      { tensor: name },
    );
  return h;
}

function writeF16(name: string, src: Float32Array, dst: Uint8Array): void {
  const out = new Uint16Array(dst.buffer, dst.byteOffset, dst.byteLength / 2);
  for (let i = 0; i < src.length; i++) out[i] = f16Checked(name, src[i]);
}

/** src [rows, cols] → fp16 bits [cols, rows] straight into `dst`, tiled like transposeInto (no scratch). */
function transposeF16Into(
  name: string,
  src: Float32Array,
  rows: number,
  cols: number,
  dst: Uint8Array,
): void {
  const out = new Uint16Array(dst.buffer, dst.byteOffset, rows * cols);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = f16Checked(name, src[base + c]);
      }
    }
  }
}

/** [rows, cols] → [cols, rows] written straight into the destination, optionally scaled. */
function transposedSource(t: Tensor, scale = 1): WeightSource {
  const [rows, cols] = t.shape;
  return {
    dataType: DataType.FLOAT,
    dims: [cols, rows],
    byteLength: rows * cols * 4,
    write: (dst) => transposeInto(t.data, rows, cols, f32View(dst), scale),
  };
}

/** Builds the decoder graph from weights in memory (synchronous). */
export function buildDecoderGraph(
  spec: ArchSpec,
  weights: WeightMap,
  opts: DecoderOptions = {},
): DecoderGraph {
  const d = declareDecoder(spec, mapWeights(weights), opts);
  return { ...d.builder.build(d.opsets), io: d.io };
}

/**
 * Builds the decoder graph reading each base weight from `weights` only when it is written into the
 * external data (decoded, transposed or quantized straight into its place, one tensor at a time): the
 * graph's bytes are the only copy of the weights. `onWrite` is told after each weight.
 */
export async function buildDecoderGraphFrom(
  spec: ArchSpec,
  weights: WeightProvider,
  opts: DecoderOptions = {},
  onWrite?: (done: number, total: number, bytes: number) => void,
): Promise<DecoderGraph> {
  const d = declareDecoder(spec, weights, opts);
  return { ...(await d.builder.buildAsync(d.opsets, onWrite)), io: d.io };
}

/** What `buildDecoderGraphTo` gives: the protobuf, the external files' sizes, the tensors' places, the IO. */
export interface DecoderGraphFiles extends BuiltModelFiles {
  io: DecoderIo;
}

/**
 * As `buildDecoderGraphFrom`, but the external data goes to `sink` one tensor at a time (a file ORT
 * opens from its path: the CLI's graph cache), never whole in memory. Offsets are FILE_ALIGN (a page)
 * and the data is one file unless `externalAlign` / `externalChunkBytes` say otherwise; the tensors'
 * bytes are the in-memory build's (decoder-stream.test.ts).
 */
export async function buildDecoderGraphTo(
  spec: ArchSpec,
  weights: WeightProvider,
  sink: ExternalDataSink,
  opts: DecoderOptions = {},
  onWrite?: (done: number, total: number, bytes: number) => void,
): Promise<DecoderGraphFiles> {
  const d = declareDecoder(spec, weights, {
    ...opts,
    externalAlign: opts.externalAlign ?? FILE_ALIGN,
    externalChunkBytes: opts.externalChunkBytes ?? Number.MAX_SAFE_INTEGER,
  });
  return { ...(await d.builder.buildTo(sink, d.opsets, onWrite)), io: d.io };
}

/**
 * Append mode's slot indices (fp32, for the causal and window masks): the key slots are the capacity
 * buffer's 0 … capacity−1 followed by the new tokens' real slots P … P+T−1 (P = `past_length`); the
 * queries are P … P+T−1. Slack slots P … capacity−1 are masked as padding, so only real distances count
 * (Gemma's sliding windows measure them).
 */
function appendSlotIndices(
  b: GraphBuilder,
  pastLength: string,
  capacity: string,
  totalLen: string,
): { keyIdx: string; queryIdx: string } {
  const zeroI = b.constI64([0], []);
  const oneI = b.constI64([1], []);
  const p = b.squeeze(pastLength, [0]);
  const end = b.add(p, b.sub(totalLen, capacity)); // P + T
  const newSlots = b.range(p, end, oneI);
  const keyIdx = b.cast(b.concat([b.range(zeroI, capacity, oneI), newSlots], 0), DataType.FLOAT); // [cap+T]
  const queryIdx = b.unsqueeze(b.cast(newSlots, DataType.FLOAT), [1]); // [T,1]
  return { keyIdx, queryIdx };
}

function declareDecoder(
  spec: ArchSpec,
  weights: WeightProvider,
  opts: DecoderOptions,
): { builder: GraphBuilder; opsets: { domain: string; version: number }[]; io: DecoderIo } {
  /** A base weight by name, its shape checked now, its values read at write time. */
  interface Ref {
    name: string;
    shape: readonly number[];
  }
  const need = (name: string, shape: readonly number[]): Ref => {
    const got = weights.shape(name);
    if (!got) throw new EngineError('missing_tensor', `weight ${name} is missing`, { tensor: name });
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new EngineError('shape_mismatch', `weight ${name} has shape [${got}], expected [${shape}]`, {
        tensor: name,
        expected: shape,
        got,
      });
    }
    return { name, shape };
  };
  const size = (t: Ref): number => t.shape.reduce((a, x) => a * x, 1);
  /** the tensor as stored, optionally mapped value by value */
  const refSource = (t: Ref, map?: (v: number) => number): WeightSource => ({
    dataType: DataType.FLOAT,
    dims: t.shape,
    byteLength: size(t) * 4,
    write: (dst) => {
      const out = f32View(dst);
      return then(weights.valuesInto(t.name, out), () => {
        if (map) for (let i = 0; i < out.length; i++) out[i] = map(out[i]);
      });
    },
  });
  /** [rows, cols] → [cols, rows], from the provider's values */
  const refTransposed = (t: Ref): WeightSource => {
    const [rows, cols] = t.shape;
    return {
      dataType: DataType.FLOAT,
      dims: [cols, rows],
      byteLength: rows * cols * 4,
      write: (dst) => then(weights.values(t.name), (v) => transposeInto(v, rows, cols, f32View(dst), 1)),
    };
  };
  /** [rows, cols] → [cols, rows] in fp16, rounded straight into place */
  const refTransposedF16 = (t: Ref): WeightSource => {
    const [rows, cols] = t.shape;
    return {
      dataType: DataType.FLOAT16,
      dims: [cols, rows],
      byteLength: rows * cols * 2,
      write: (dst) => then(weights.values(t.name), (v) => transposeF16Into(t.name, v, rows, cols, dst)),
    };
  };
  const patchInputs = opts.patchInputs ?? true;
  const tapOutputs = opts.tapOutputs ?? true;
  const kvAppend = opts.kvAppend ?? false;
  const lora = opts.lora;
  const maxPositions = opts.maxPositions ?? Math.min(spec.maxPositionEmbeddings, 8192);
  const { hiddenSize: H, numHeads: nH, numKvHeads: kvH, headDim: hd, numLayers: L } = spec;
  const V = spec.vocabSize;
  const I = spec.intermediateSize;
  if (nH % kvH !== 0) {
    throw new EngineError('unsupported_config', `numHeads ${nH} is not a multiple of numKvHeads ${kvH}`);
  }
  const kvDim = kvH * hd;
  const b = new GraphBuilder({
    externalPath: opts.externalPath,
    externalChunkBytes: opts.externalChunkBytes,
    externalAlign: opts.externalAlign,
  });

  // --- inputs ----------------------------------------------------------------------------------
  const inputIds = b.input(N.INPUT_IDS, DataType.INT64, ['batch', 'seq']);
  const attnMask = b.input(N.ATTENTION_MASK, DataType.FLOAT, ['batch', 'total']);
  const positionIds = b.input(N.POSITION_IDS, DataType.INT64, ['batch', 'seq']);
  const logitsStart = b.input(N.LOGITS_START, DataType.INT64, [1]);
  const past: { key: string; value: string }[] = [];
  for (let l = 0; l < L; l++) {
    past.push({
      key: b.input(N.pastKey(l), DataType.FLOAT, ['batch', kvH, 'past', hd]),
      value: b.input(N.pastValue(l), DataType.FLOAT, ['batch', kvH, 'past', hd]),
    });
  }
  const pastLength = kvAppend ? b.input(N.PAST_LENGTH, DataType.INT64, [1]) : null;
  let loraScale3: string | undefined;
  if (lora) {
    const s = b.input(N.LORA_SCALE, DataType.FLOAT, ['batch']);
    loraScale3 = b.unsqueeze(s, [1, 2]); // [B,1,1]
  }
  const residPatches: { mask: string; value: string }[] = [];
  const kvPatches: { mask: string; k: string; v: string }[] = [];
  if (patchInputs) {
    // NOTE: each patch input gets its own symbolic dims: a [1,1,1] no-op beside a [B,T,1] patch must
    // not be declared equal, or ORT's memory planner reuses buffers of the wrong size.
    const patchInput = (name: string, width: number): string =>
      b.input(name, DataType.FLOAT, [`${name}.batch`, `${name}.seq`, width]);
    for (let l = 0; l <= L; l++) {
      residPatches.push({
        mask: patchInput(N.residPatchMask(l), 1),
        value: patchInput(N.residPatch(l), H),
      });
    }
    for (let l = 0; l < L; l++) {
      kvPatches.push({
        mask: patchInput(N.kvPatchMask(l), 1),
        k: patchInput(N.kPatch(l), kvDim),
        v: patchInput(N.vPatch(l), kvDim),
      });
    }
  }

  // --- shared pieces ---------------------------------------------------------------------------
  const one = b.constF32([1], []);
  const zero = b.constF32([0], []);

  /** x·(1−m) + p·m: exactly x where m = 0 and exactly p where m = 1. */
  const blend = (x: string, m: string, p: string, out?: string): string => {
    const keep = b.sub(one, m);
    return b.add(b.mul(x, keep), b.mul(p, m), out);
  };

  const normOffset = spec.normWeightOffset ?? 0;
  const rmsNorm = (x: string, weightName: string, dim: number, out?: string): string => {
    const ref = need(weightName, [dim]);
    // Gemma stores w − 1: the initializer holds (1 + w), rounded to fp32 once (as transformers computes it)
    const w = b.weight(weightName, refSource(ref, normOffset === 0 ? undefined : (v) => normOffset + v));
    // NOTE: Pow(x, 2) rather than x·x: it is the pattern ORT fuses into one SimplifiedLayerNormalization
    // kernel (CPU, WASM and WebGPU), which saves five dispatches per norm.
    const ms = b.reduceMean(b.op('Pow', [x, b.constF32([2], [])]), [-1]);
    const denom = b.sqrt(b.add(ms, b.constF32([spec.rmsNormEps], [])));
    return b.mul(b.div(x, denom), w, out);
  };

  const dtype: string = opts.dtype ?? 'fp32';
  if (dtype !== 'fp32' && dtype !== 'q4' && dtype !== 'int8' && dtype !== 'fp16') {
    throw new EngineError(
      'unsupported_config',
      `weight dtype ${dtype}: the graph builds fp32, fp16, int8 or q4`,
    );
  }
  // NOTE: fp16 (for WebGPU with shader-f16): every matrix is stored in fp16 and multiplied in fp16 — its
  // input cast down, its product cast back up. The residual stream, norms, RoPE, attention scores and
  // softmax, biases and LoRA branches stay fp32, where fp16's range (±65504) is at risk (Gemma's
  // activations overflow it). The weights are never cast to fp32 in the graph, so ORT has no Cast of
  // an initializer to fold back into an fp32 copy.
  const fp16 = dtype === 'fp16';
  /** bytes per element of a float matrix as stored */
  const matBytes = fp16 ? 2 : 4;
  /** x (fp32) · W for an fp16 W: Cast ↓, `f`, Cast ↑ */
  const viaF16 = (x: string, f: (x16: string) => string, out?: string): string =>
    b.cast(f(b.cast(x, DataType.FLOAT16)), DataType.FLOAT, out);
  const q4Opts = {
    blockSize: opts.q4?.blockSize ?? ENGINE_Q4.blockSize,
    symmetric: opts.q4?.symmetric ?? ENGINE_Q4.symmetric,
    alignedZeroPoints: ENGINE_Q4.alignedZeroPoints,
  };
  const q4Block = q4Opts.blockSize;
  const accuracyLevel = opts.q4?.accuracyLevel ?? 0;

  interface Q4Weight {
    /** uint8 [N, blocks, blockSize/2] */
    codes: string;
    /** fp32 [N, blocks] */
    scales: string;
    /** uint8 [N · ceil(blocks/2)], two per byte; absent = 8 */
    zeroPoints: string | null;
    n: number;
    k: number;
  }
  /** a matrix's 4-bit blocks, quantized when its first part is written and dropped after the last */
  type SharedQ4 = ReturnType<typeof shared<Q4Matrix>>;
  const sharedQ4 = (t: Ref): SharedQ4 =>
    shared(() => then(weights.values(t.name), (v) => quantizeQ4(v, t.shape[0], t.shape[1], q4Opts)));
  /** one part of a shared quantized matrix as a weight (its use counted now) */
  const partOf = <Q>(
    q: ReturnType<typeof shared<Q>>,
    dataType: DataType,
    dims: readonly number[],
    byteLength: number,
    pick: (m: Q) => ArrayBufferView,
  ): WeightSource => {
    q.use();
    return lazySource(dataType, dims, byteLength, () => then(q.take(), pick));
  };
  /** MatMulNBits' scales and zero points for a quantized matrix whose codes are already a weight */
  const q4Inputs = (name: string, q: SharedQ4, n: number, k: number, codes: string): Q4Weight => {
    const blocks = q4Blocks(k, q4Block);
    const zpBytes = n * Math.ceil(blocks / 2);
    return {
      codes,
      scales: b.weight(
        `${name}.scales`,
        partOf(q, DataType.FLOAT, [n, blocks], n * blocks * 4, (m) => m.scales),
      ),
      // NOTE: zero points declared 1-D: ORT's WebGPU kernel views them as u32 words through the declared
      // shape ([N, 3] fails there, [3N] with N a multiple of 4 works); the CPU kernel takes either.
      zeroPoints: q4HasZeroPoints(n, q4Opts)
        ? b.weight(
            `${name}.zero_points`,
            partOf(q, DataType.UINT8, [zpBytes], zpBytes, (m) => m.zeroPoints as Uint8Array),
          )
        : null,
      n,
      k,
    };
  };
  const q4Codes = (name: string, q: SharedQ4, n: number, k: number): string => {
    const blocks = q4Blocks(k, q4Block);
    const bytes = n * blocks * (q4Block / 2);
    return b.weight(
      `${name}.q4`,
      partOf(q, DataType.UINT8, [n, blocks, q4Block / 2], bytes, (m) => m.codes),
    );
  };
  const q4Weight = (name: string, t: Ref): Q4Weight => {
    const [n, k] = t.shape;
    const q = sharedQ4(t);
    return q4Inputs(name, q, n, k, q4Codes(name, q, n, k));
  };
  /** x·Wᵀ with W 4-bit: ORT's MatMulNBits */
  const matmulQ4 = (x: string, w: Q4Weight, out?: string): string =>
    // NOTE: ORT contrib op (CPU/WASM MLAS kernel, JSEP WebGPU kernel); B [N, blocks, blockSize/2] with
    // two codes per byte, low nibble first along K; result (code − zero point)·scale, zero point 8 when
    // absent.
    b.node('MatMulNBits', w.zeroPoints ? [x, w.codes, w.scales, w.zeroPoints] : [x, w.codes, w.scales], {
      domain: MS_DOMAIN,
      names: [out],
      attrs: [
        { name: 'K', type: 'int', value: w.k },
        { name: 'N', type: 'int', value: w.n },
        { name: 'bits', type: 'int', value: 4 },
        { name: 'block_size', type: 'int', value: q4Block },
        { name: 'accuracy_level', type: 'int', value: accuracyLevel },
      ],
    })[0];

  interface Int8Weight {
    /** uint8 [K, N]: Wᵀ's codes + 128 (zero point 128) */
    codes: string;
    /** fp32 [N] */
    scales: string;
    /** uint8 [N], all 128 */
    zeroPoints: string;
  }
  const sharedInt8 = (t: Ref) =>
    shared(() => then(weights.values(t.name), (v) => quantizeInt8(v, t.shape[0], t.shape[1])));
  // one all-128 zero-point initializer per distinct output width, shared by the matrices of that width
  const int8Zp = new Map<number, string>();
  const int8ZeroPoints = (n: number): string => {
    let zp = int8Zp.get(n);
    if (zp === undefined) {
      zp = b.weight(
        `int8.zero_points_${n}`,
        lazySource(DataType.UINT8, [n], n, () => new Uint8Array(n).fill(128)),
      );
      int8Zp.set(n, zp);
    }
    return zp;
  };
  const int8Parts = (name: string, q: ReturnType<typeof sharedInt8>, n: number, k: number): Int8Weight => ({
    // NOTE: stored unsigned (code + 128, zero point 128): MLAS's u8·s8 GEMM on x86 without VNNI
    // (AVX2) sums pairs of products in int16 with saturation (vpmaddubsw), which gave a relative error
    // of ~0.16 per matmul on an AVX2 EPYC (bench/int8-kernels.ts); its u8·u8 path does not saturate.
    // The values are the same: (code + 128 − 128)·scale.
    codes: b.weight(
      `${name}.int8`,
      partOf(q, DataType.UINT8, [k, n], n * k, (m: Int8Matrix) => unsignedCodes(m.codes)),
    ),
    scales: b.weight(
      `${name}.scales`,
      partOf(q, DataType.FLOAT, [n], n * 4, (m: Int8Matrix) => m.scales),
    ),
    zeroPoints: int8ZeroPoints(n),
  });
  const int8Weight = (name: string, t: Ref): Int8Weight => {
    const [n, k] = t.shape;
    return int8Parts(name, sharedInt8(t), n, k);
  };
  /** x·Wᵀ with W int8 per row: ORT's DynamicQuantizeMatMul */
  const matmulInt8 = (x: string, w: Int8Weight, out?: string): string =>
    // NOTE: ORT contrib op (CPU/WASM): quantizes x per tensor to uint8 (as DynamicQuantizeLinear), runs
    // MLAS's u8·s8 GEMM and scales column n by x_scale·b_scale[n]. Micro-bench (bench/int8-kernels.ts):
    // the fastest 8-bit option in both builds; MatMulNBits bits=8 dequantizes every run on WASM.
    b.node('DynamicQuantizeMatMul', [x, w.codes, w.scales, w.zeroPoints], {
      domain: MS_DOMAIN,
      names: [out],
    })[0];

  /** x·Wᵀ for a base matrix W [outDim, inDim] stored in `dtype` (x: [..., inDim]). */
  const project = (x: string, name: string, t: Ref, out?: string): string => {
    if (dtype === 'q4') return matmulQ4(x, q4Weight(name, t), out);
    if (dtype === 'int8') return matmulInt8(x, int8Weight(name, t), out);
    if (fp16) return viaF16(x, (x16) => b.matmul(x16, b.weight(name, refTransposedF16(t))), out);
    return b.matmul(x, b.weight(name, refTransposed(t)), out);
  };
  /** y = x·Wᵀ (+ bias) (+ lora_scale·scaling·(x·Aᵀ)·Bᵀ) */
  const linear = (
    x: string,
    layer: number,
    module: 'self_attn' | 'mlp',
    target: LoraTarget,
    inDim: number,
    outDim: number,
    bias: boolean,
    out?: string,
  ): string => {
    const prefix = `model.layers.${layer}.${module}.${target}`;
    const branch = lora?.branches.get(`${layer}.${target}`);
    let y = project(
      x,
      `${prefix}.weight`,
      need(`${prefix}.weight`, [outDim, inDim]),
      bias || branch ? undefined : out,
    );
    if (bias) {
      const bw = b.weight(`${prefix}.bias`, refSource(need(`${prefix}.bias`, [outDim])));
      y = b.add(y, bw, branch ? undefined : out);
    }
    if (branch && lora && loraScale3) {
      const r = branch.a.shape[0];
      if (branch.a.shape[1] !== inDim || branch.b.shape[0] !== outDim || branch.b.shape[1] !== r) {
        throw new EngineError(
          'adapter_mismatch',
          `LoRA ${layer}.${target} has A [${branch.a.shape}] B [${branch.b.shape}]`,
          {
            tensor: `${layer}.${target}`,
            expected: [outDim, inDim],
          },
        );
      }
      const at = b.weight(`lora.${layer}.${target}.A_t`, transposedSource(branch.a, lora.scaling));
      const bt = b.weight(`lora.${layer}.${target}.B_t`, transposedSource(branch.b));
      const down = b.mul(b.matmul(x, at), loraScale3);
      y = b.add(y, b.matmul(down, bt), out);
    }
    return y;
  };

  // RoPE tables [maxPos, hd] as initializers, gathered once per call by position_ids; Gemma-3's local
  // layers have their own (rope_local_base_freq, unscaled).
  const ropeInputs = (prefix: string, rs: Pick<ArchSpec, 'headDim' | 'ropeTheta' | 'ropeScaling'>) => {
    const tables = ropeTables(rs, maxPositions);
    const half = hd / 2;
    const cosFull = new Float32Array(maxPositions * hd);
    const sinSigned = new Float32Array(maxPositions * hd);
    for (let p = 0; p < maxPositions; p++) {
      for (let i = 0; i < half; i++) {
        const c = tables.cos[p * half + i];
        const s = tables.sin[p * half + i];
        cosFull[p * hd + i] = c;
        cosFull[p * hd + half + i] = c;
        sinSigned[p * hd + i] = -s;
        sinSigned[p * hd + half + i] = s;
      }
    }
    const cosT = b.weight(`${prefix}.cos`, float32Source([maxPositions, hd], cosFull));
    const sinT = b.weight(`${prefix}.sin`, float32Source([maxPositions, hd], sinSigned));
    return {
      cos4: b.unsqueeze(b.gather(cosT, positionIds), [1]), // [B,1,T,hd]
      sin4: b.unsqueeze(b.gather(sinT, positionIds), [1]),
    };
  };
  const windows = spec.layerWindows ?? [];
  const globalRope = ropeInputs('rope', spec);
  const localRope =
    spec.localRope && windows.some((w) => w !== null)
      ? ropeInputs('rope_local', { headDim: hd, ...spec.localRope })
      : globalRope;
  /** x [B,h,T,hd] → x·cos + rotate_half(x)·sin, with rotate_half(x)·sin = [x2,x1]·[−sin,sin] */
  const rope = (x: string, t: { cos4: string; sin4: string }, out?: string): string => {
    // NOTE: positive axes: JSEP WebGPU's Split/Concat mis-shape with axis −1.
    const [x1, x2] = b.split(x, 3, 2);
    const rot = b.concat([x2, x1], 3);
    return b.add(b.mul(x, t.cos4), b.mul(rot, t.sin4), out);
  };

  // Attention bias [B,1,T,S]: causal by slot index (query slot P+i sees key slots ≤ P+i) × padding mask.
  // NOTE: lengths and index ranges stay int64 (ORT runs them on the CPU, no GPU→CPU readback); only the
  // [S] and [T] index vectors are cast to float and cross to the device.
  const totalLen = b.squeeze(b.shape(attnMask, 1, 2), [0]);
  const pastLen = b.sub(totalLen, b.squeeze(b.shape(inputIds, 1, 2), [0]));
  const oneI = b.constI64([1], []);
  const { keyIdx, queryIdx } = pastLength
    ? appendSlotIndices(b, pastLength, pastLen, totalLen)
    : {
        keyIdx: b.cast(b.range(b.constI64([0], []), totalLen, oneI), DataType.FLOAT), // [S]
        queryIdx: b.unsqueeze(b.cast(b.range(pastLen, totalLen, oneI), DataType.FLOAT), [1]), // [T,1]
      };
  const queryMinusKey = b.sub(queryIdx, keyIdx); // [T,S]
  const causal = b.clip(b.add(queryMinusKey, one), zero, one); // [T,S] 1 where key ≤ query
  const padding = b.unsqueeze(attnMask, [1, 2]); // [B,1,1,S]
  const maskFor = (allowed: string) => ({
    allowed,
    bias: b.mul(b.sub(allowed, one), b.constF32([-MASK_NEG], [])), // 0 or −1e9
  });
  const globalMask = maskFor(b.mul(causal, padding)); // [B,1,T,S]
  // Sliding-window layers: key slot j is visible from query slot i iff i − w < j ≤ i, i.e. the window
  // factor clip(w − (i − j), 0, 1) is 1 (slot indices are exact integers in fp32 below 2^24).
  const windowMasks = new Map<number, { allowed: string; bias: string }>();
  for (const w of windows) {
    if (w === null || windowMasks.has(w)) continue;
    const inWindow = b.clip(b.sub(b.constF32([w], []), queryMinusKey), zero, one);
    windowMasks.set(w, maskFor(b.mul(b.mul(causal, inWindow), padding)));
  }

  /** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): PyTorch's tanh GELU (opset 17 has no Gelu op) */
  const geluTanh = (x: string): string => {
    const x3 = b.mul(b.mul(x, x), x);
    const inner = b.mul(
      b.add(x, b.mul(x3, b.constF32([0.044715], []))),
      b.constF32([Math.sqrt(2 / Math.PI)], []),
    );
    return b.mul(b.mul(x, b.constF32([0.5], [])), b.add(b.op('Tanh', [inner]), one));
  };
  const qScale = b.constF32([spec.attnScale ?? 1 / Math.sqrt(hd)], []);
  const attnCap = spec.attnSoftcap;
  /** tanh(x / c)·c */
  const softcap = (x: string, c: number, out?: string): string =>
    b.mul(b.op('Tanh', [b.div(x, b.constF32([c], []))]), b.constF32([c], []), out);
  const group = nH / kvH;

  /**
   * softmax(q·Kᵀ)·V for layer l. Concat mode: K/V = past ⧺ new, named `present.*`. Append mode: scores
   * against past and against new are concatenated (small: g·T rows), and probabilities × V are two
   * MatMuls summed, so the cache is never copied in the graph.
   */
  const attention = (
    l: number,
    qR: string,
    kR: string,
    vT: string,
    mask: { allowed: string; bias: string },
  ): string => {
    // GQA without repeating K/V: fold the head group into the query rows.
    const qS = b.mul(qR, qScale);
    const qg = group === 1 ? qS : b.reshape(qS, [0, kvH, -1, hd]); // [B,kvH,g·T,hd]
    const keysT = (k: string): string => b.transpose(k, [0, 1, 3, 2]);
    let presentK = '';
    let presentV = '';
    let rawScores: string; // [B,kvH,g·T,S]
    if (kvAppend) {
      // NOTE: (K·qᵀ)ᵀ, not q·Kᵀ: the transposes are of the small operands (q, the scores), so the
      // cache is read in place and never transposed into a copy
      const pastScores = keysT(b.matmul(past[l].key, keysT(qg))); // [B,kvH,g·T,C]
      rawScores = b.concat([pastScores, b.matmul(qg, keysT(kR))], 3);
    } else {
      presentK = b.concat([past[l].key, kR], 2, N.presentKey(l)); // [B,kvH,S,hd]
      presentV = b.concat([past[l].value, vT], 2, N.presentValue(l));
      rawScores = b.matmul(qg, keysT(presentK));
    }
    const scores = attnCap === undefined ? rawScores : softcap(rawScores, attnCap); // Gemma-2
    const scores4 = group === 1 ? scores : b.reshape(scores, [0, nH, -1, 0]); // [B,nH,T,S]
    const probs = b.mul(
      b.softmax(b.add(scores4, mask.bias), -1),
      mask.allowed,
      tapOutputs ? N.attnTap(l) : undefined,
    ); // NOTE: × allowed zeroes rows that see no key (left padding), as the reference does
    const probsG = group === 1 ? probs : b.reshape(probs, [0, kvH, -1, 0]); // [B,kvH,g·T,S]
    let ctx: string; // [B,kvH,g·T,hd]
    if (kvAppend) {
      const slots = b.sub(b.shape(attnMask, 1, 2), b.shape(inputIds, 1, 2)); // [1] capacity
      const end = b.constI64([Number.MAX_SAFE_INTEGER]);
      const pPast = b.slice(probsG, b.constI64([0]), slots, [3]);
      const pNew = b.slice(probsG, slots, end, [3]);
      ctx = b.add(b.matmul(pPast, past[l].value), b.matmul(pNew, vT));
    } else {
      ctx = b.matmul(probsG, presentV);
    }
    return group === 1 ? ctx : b.reshape(ctx, [0, nH, -1, hd]);
  };

  // --- layers ----------------------------------------------------------------------------------
  const embedName = 'model.embed_tokens.weight';
  const embedScale = spec.embedScale ?? 1;
  const embedT = need(embedName, [V, H]);
  // NOTE: a 4-bit embedding: codes [V, blocks, blockSize/2] (MatMulNBits' B layout) read by
  // GatherBlockQuantized (quantized along the last axis, one block per row of it) and, when the head is
  // tied, by MatMulNBits — one copy. Each op gets its own scales ([V, blocks, 1] vs [V, blocks]); only
  // when every row is whole blocks (else the embedding stays fp32).
  const embedQ =
    dtype === 'q4' && (opts.q4?.embedding ?? true) && H % q4Block === 0 ? sharedQ4(embedT) : null;
  const embedBlocks = H / q4Block;
  const embedCodes = embedQ ? q4Codes(embedName, embedQ, V, H) : null;
  // NOTE: an int8 embedding is stored transposed, codes [H, V] with one scale per token: that is
  // DynamicQuantizeMatMul's B for a tied head (scale per output column), and the embedding is a Gather
  // along axis 1 of the same codes — one copy.
  const embed8 = dtype === 'int8' ? int8Parts(embedName, sharedInt8(embedT), V, H) : null;
  const embed8Codes = embed8?.codes ?? null;
  const embed8Scales = embed8?.scales ?? null;
  // NOTE: fp32 matrices with one row per token, as row blocks under `maxWeightBytes` (one block, the
  // tensor under its own name, when it fits: the graph is then what it always was)
  const maxWeightBytes = opts.maxWeightBytes ?? Infinity;
  interface RowBlock {
    name: string;
    start: number;
    rows: number;
  }
  const rowBlocks = (name: string, t: Ref): RowBlock[] => {
    const [rows, cols] = t.shape;
    const per = Math.max(1, Math.floor(maxWeightBytes / (cols * matBytes)));
    if (rows <= per && !fp16) return [{ name: b.weight(name, refSource(t)), start: 0, rows }];
    const all = shared(() => weights.values(t.name));
    const out: RowBlock[] = [];
    for (let start = 0; start < rows; start += per) {
      const n = Math.min(per, rows - start);
      const blockName = rows <= per ? name : `${name}.rows_${start}`;
      const pick = (v: Float32Array) => v.subarray(start * cols, (start + n) * cols);
      const part = fp16
        ? {
            dataType: DataType.FLOAT16,
            dims: [n, cols],
            byteLength: n * cols * 2,
            write: (dst: Uint8Array) => then(all.take(), (v) => writeF16(name, pick(v), dst)),
          }
        : partOf(all, DataType.FLOAT, [n, cols], n * cols * 4, pick);
      if (fp16) all.use();
      out.push({ name: b.weight(blockName, part), start, rows: n });
    }
    return out;
  };
  /** rows `ids` of a blocked matrix: each block gathers the ids inside it (clamped) and zeroes the rest */
  const gatherBlocks = (blocks: RowBlock[], ids: string, out?: string): string => {
    /** rows of a block, as fp32 */
    const rowsOf = (name: string, idx: string, o?: string): string =>
      fp16 ? b.cast(b.gather(name, idx, 0), DataType.FLOAT, o) : b.gather(name, idx, 0, o);
    if (blocks.length === 1) return rowsOf(blocks[0].name, ids, out);
    // NOTE: index arithmetic in fp32 (token ids < 2^24 are exact) and int32 indices: WebGPU-friendly ops
    const idsF = b.cast(ids, DataType.FLOAT);
    let acc = '';
    blocks.forEach((blk, i) => {
      const local = b.sub(idsF, b.constF32([blk.start], []));
      const inside = b.mul(
        b.clip(b.add(local, one), zero, one), // 1 when local ≥ 0
        b.clip(b.sub(b.constF32([blk.rows], []), local), zero, one), // 1 when local < rows
      );
      const idx = b.cast(b.clip(local, zero, b.constF32([blk.rows - 1], [])), DataType.INT32);
      const rows = b.mul(rowsOf(blk.name, idx), b.unsqueeze(inside, [2]));
      acc = i === 0 ? rows : b.add(acc, rows, i === blocks.length - 1 ? out : undefined);
    });
    return acc;
  };
  /** x·Wᵀ for a blocked W [V, H]: one Gemm per block, concatenated along the vocabulary */
  // NOTE: in fp16 each block has its own Cast ↓ / ↑ and the blocks are joined in fp32, so every block
  // product is the same Cast–Gemm–Cast pattern as a single matrix
  const gemmBlock = (x: string, w: string): string =>
    fp16 ? viaF16(x, (x16) => b.gemmTransB(x16, w)) : b.gemmTransB(x, w);
  const gemmBlocks = (x: string, blocks: RowBlock[]): string =>
    blocks.length === 1
      ? gemmBlock(x, blocks[0].name)
      : b.concat(
          blocks.map((blk) => gemmBlock(x, blk.name)),
          1,
        );
  const embed = embedQ || embed8 ? null : rowBlocks(embedName, embedT);
  // NOTE: taps are named node outputs, never Identity nodes (JSEP WebGPU has no Identity kernel).
  // Taps read the value before its patch (as the reference does), so they name the producing node.
  const rawResidName = (l: number): string | undefined => (tapOutputs ? N.residTap(l) : undefined);
  const residSite = (l: number, x: string): string =>
    patchInputs ? blend(x, residPatches[l].mask, residPatches[l].value) : x;
  let h: string; // [B,T,H]
  if (embedQ && embedCodes) {
    const scales = b.weight(
      `${embedName}.scales_gather`,
      partOf(embedQ, DataType.FLOAT, [V, embedBlocks, 1], V * embedBlocks * 4, (m) => m.scales),
    );
    const gatherIn = [embedCodes, inputIds, scales];
    if (q4HasZeroPoints(V, q4Opts)) {
      // GatherBlockQuantized packs zero points like its data, along the last axis: one per byte here
      const unpack = (m: Q4Matrix): Uint8Array => {
        const zp = m.zeroPoints as Uint8Array;
        const one = new Uint8Array(V * embedBlocks);
        const stride = Math.ceil(embedBlocks / 2);
        for (let r = 0; r < V; r++) {
          for (let k = 0; k < embedBlocks; k++)
            one[r * embedBlocks + k] = (zp[r * stride + (k >> 1)] >> ((k & 1) * 4)) & 15;
        }
        return one;
      };
      gatherIn.push(
        b.weight(
          `${embedName}.zero_points_gather`,
          partOf(embedQ, DataType.UINT8, [V, embedBlocks, 1], V * embedBlocks, unpack),
        ),
      );
    }
    const rows = b.node('GatherBlockQuantized', gatherIn, {
      domain: MS_DOMAIN,
      attrs: [
        { name: 'bits', type: 'int', value: 4 },
        { name: 'block_size', type: 'int', value: q4Block },
        { name: 'gather_axis', type: 'int', value: 0 },
        { name: 'quantize_axis', type: 'int', value: 2 },
      ],
    })[0]; // [B,T,blocks,blockSize]
    h = b.reshape(rows, [0, 0, H], embedScale === 1 ? rawResidName(0) : undefined);
  } else if (embed8Codes && embed8Scales) {
    const cols = b.transpose(b.gather(embed8Codes, inputIds, 1), [1, 2, 0]); // uint8 [B,T,H], code + 128
    const scale = b.unsqueeze(b.gather(embed8Scales, inputIds), [2]); // [B,T,1]
    const signed = b.sub(b.cast(cols, DataType.FLOAT), b.constF32([128], []));
    h = b.mul(signed, scale, embedScale === 1 ? rawResidName(0) : undefined);
  } else {
    h = gatherBlocks(embed!, inputIds, embedScale === 1 ? rawResidName(0) : undefined);
  }
  // Gemma: × √hidden (in the checkpoint dtype, as spec.embedScale holds it); resid.0 is after it
  if (embedScale !== 1) h = b.mul(h, b.constF32([embedScale], []), rawResidName(0));

  for (let l = 0; l < L; l++) {
    h = residSite(l, h);
    const p = `model.layers.${l}`;
    const window = windows[l] ?? null;
    const mask = window === null ? globalMask : windowMasks.get(window)!;
    const layerRope = window === null ? globalRope : localRope;
    const x = rmsNorm(h, `${p}.input_layernorm.weight`, H);
    const q = linear(x, l, 'self_attn', 'q_proj', H, nH * hd, spec.qkvBias);
    let k = linear(x, l, 'self_attn', 'k_proj', H, kvDim, spec.qkvBias, tapOutputs ? N.kTap(l) : undefined);
    let v = linear(x, l, 'self_attn', 'v_proj', H, kvDim, spec.qkvBias, tapOutputs ? N.vTap(l) : undefined);
    if (patchInputs) {
      k = blend(k, kvPatches[l].mask, kvPatches[l].k);
      v = blend(v, kvPatches[l].mask, kvPatches[l].v);
    }
    let q4 = b.reshape(q, [0, 0, nH, hd]);
    let k4 = b.reshape(k, [0, 0, kvH, hd]);
    if (spec.qkNorm) {
      q4 = rmsNorm(q4, `${p}.self_attn.q_norm.weight`, hd);
      k4 = rmsNorm(k4, `${p}.self_attn.k_norm.weight`, hd);
    }
    const qR = rope(b.transpose(q4, [0, 2, 1, 3]), layerRope); // [B,nH,T,hd]
    const kR = rope(b.transpose(k4, [0, 2, 1, 3]), layerRope, kvAppend ? N.newKey(l) : undefined); // [B,kvH,T,hd]
    const vT = b.transpose(b.reshape(v, [0, 0, kvH, hd]), [0, 2, 1, 3], kvAppend ? N.newValue(l) : undefined);
    const ctx4 = attention(l, qR, kR, vT, mask); // [B,nH,T,hd]
    const merged = b.reshape(b.transpose(ctx4, [0, 2, 1, 3]), [0, 0, nH * hd]);
    let o = linear(merged, l, 'self_attn', 'o_proj', nH * hd, H, spec.oBias);
    if (spec.sandwichNorms) o = rmsNorm(o, `${p}.post_attention_layernorm.weight`, H);
    h = b.add(h, o);
    const x2 = rmsNorm(
      h,
      spec.sandwichNorms ? `${p}.pre_feedforward_layernorm.weight` : `${p}.post_attention_layernorm.weight`,
      H,
    );
    const gate = linear(x2, l, 'mlp', 'gate_proj', H, I, spec.mlpBias);
    const up = linear(x2, l, 'mlp', 'up_proj', H, I, spec.mlpBias);
    const act = b.mul(spec.mlpActivation === 'gelu_tanh' ? geluTanh(gate) : b.mul(gate, b.sigmoid(gate)), up);
    let down = linear(act, l, 'mlp', 'down_proj', I, H, spec.mlpBias);
    if (spec.sandwichNorms) down = rmsNorm(down, `${p}.post_feedforward_layernorm.weight`, H);
    h = b.add(h, down, rawResidName(l + 1));
  }
  h = residSite(L, h);

  // --- head ------------------------------------------------------------------------------------
  const normed = rmsNorm(h, 'model.norm.weight', H);
  const kept = b.slice(normed, logitsStart, b.constI64([Number.MAX_SAFE_INTEGER]), [1]); // [B,T',H]
  const keptFlat = b.reshape(kept, [-1, H]);
  let flat: string; // [B·T',V]
  if (spec.tieWordEmbeddings) {
    flat =
      embedQ && embedCodes
        ? matmulQ4(keptFlat, q4Inputs(embedName, embedQ, V, H, embedCodes))
        : embed8Codes && embed8Scales
          ? matmulInt8(keptFlat, embed8!)
          : gemmBlocks(keptFlat, embed!);
  } else {
    const headT = need('lm_head.weight', [V, H]);
    flat =
      dtype === 'q4' || dtype === 'int8'
        ? project(keptFlat, 'lm_head.weight', headT)
        : gemmBlocks(keptFlat, rowBlocks('lm_head.weight', headT));
  }
  if (spec.finalSoftcap !== undefined) flat = softcap(flat, spec.finalSoftcap); // Gemma-2
  const outShape = b.concat([b.shape(kept, 0, 2), b.constI64([V])], 0);
  b.reshapeTo(flat, outShape, N.LOGITS);

  // --- outputs ---------------------------------------------------------------------------------
  b.output(N.LOGITS, DataType.FLOAT, ['batch', 'logits_seq', V]);
  for (let l = 0; l < L; l++) {
    if (kvAppend) {
      b.output(N.newKey(l), DataType.FLOAT, ['batch', kvH, 'seq', hd]);
      b.output(N.newValue(l), DataType.FLOAT, ['batch', kvH, 'seq', hd]);
    } else {
      b.output(N.presentKey(l), DataType.FLOAT, ['batch', kvH, 'total', hd]);
      b.output(N.presentValue(l), DataType.FLOAT, ['batch', kvH, 'total', hd]);
    }
  }
  if (tapOutputs) {
    for (let l = 0; l <= L; l++) b.output(N.residTap(l), DataType.FLOAT, ['batch', 'seq', H]);
    for (let l = 0; l < L; l++) {
      b.output(N.kTap(l), DataType.FLOAT, ['batch', 'seq', kvDim]);
      b.output(N.vTap(l), DataType.FLOAT, ['batch', 'seq', kvDim]);
      b.output(N.attnTap(l), DataType.FLOAT, ['batch', nH, 'seq', 'total']);
    }
  }

  const opsets = [{ domain: '', version: 17 }];
  if (dtype === 'q4' || dtype === 'int8') opsets.push({ domain: MS_DOMAIN, version: 1 });
  const inputs = [N.INPUT_IDS, N.ATTENTION_MASK, N.POSITION_IDS, N.LOGITS_START];
  for (let l = 0; l < L; l++) inputs.push(N.pastKey(l), N.pastValue(l));
  if (kvAppend) inputs.push(N.PAST_LENGTH);
  if (lora) inputs.push(N.LORA_SCALE);
  if (patchInputs) {
    for (let l = 0; l <= L; l++) inputs.push(N.residPatchMask(l), N.residPatch(l));
    for (let l = 0; l < L; l++) inputs.push(N.kvPatchMask(l), N.kPatch(l), N.vPatch(l));
  }
  const outputs = [N.LOGITS];
  for (let l = 0; l < L; l++)
    outputs.push(...(kvAppend ? [N.newKey(l), N.newValue(l)] : [N.presentKey(l), N.presentValue(l)]));
  if (tapOutputs) {
    for (let l = 0; l <= L; l++) outputs.push(N.residTap(l));
    for (let l = 0; l < L; l++) outputs.push(N.kTap(l), N.vTap(l), N.attnTap(l));
  }
  return {
    builder: b,
    opsets,
    io: {
      numLayers: L,
      dtype,
      hasLora: !!lora,
      patchInputs,
      tapOutputs,
      maxPositions,
      kvAppend,
      inputs,
      outputs,
    },
  };
}
