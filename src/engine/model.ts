// One decoder on one ORT session: the forward pass with taps, patches and per-row LoRA dose, and the
// KV cache as an opaque handle that stays where ORT left it (GPU under WebGPU). Same contract as
// reference.ts's referenceForward, so tests compare the two directly. It must never merge LoRA into base
// weights, never fetch outputs nobody asked for, and never dispose a cache it did not create.

import { errorMessage } from '../common/errors';
import { EngineError } from './errors';
import {
  buildDecoderGraph,
  buildDecoderGraphFrom,
  type DecoderGraph,
  type DecoderIo,
  type DecoderOptions,
  type GraphDtype,
  buildDecoderGraphTo,
  type WeightProvider,
} from './graph/decoder';
import * as N from './graph/names';
import { graphKey, type GraphStore } from './graph-store';
import { WEBGPU_WEIGHT_BLOCK_BYTES, type WeightDtype } from './memory';
import { appendSlots, compactAttention, newStore, storeFromData, storeToData, type KvStore } from './kvcache';
import {
  createSession,
  type BackendInfo,
  type BackendRequest,
  type CreateSessionOptions,
  type EngineSession,
  type Ort,
  type OrtTensor,
  probeWebGpu,
  type WebGpuPresence,
} from './session';
import type {
  ArchSpec,
  ForwardInput,
  ForwardOutput,
  KvCacheData,
  LoraAdapter,
  Tensor,
  WeightMap,
} from './types';

export interface EngineModelOptions {
  lora?: LoraAdapter;
  backend?: BackendRequest;
  /** build with patch inputs (default true); false gives the hook-free graph for overhead benchmarks */
  patchInputs?: boolean;
  /** build with tap outputs (default true) */
  tapOutputs?: boolean;
  /** largest position id + 1 the model will see (RoPE table rows) */
  maxPositions?: number;
  /**
   * How the base weights are stored: fp32 (default), int8 (every matrix 8-bit per row, run by ORT's
   * integer GEMM: for WASM / CPU) or q4 (every matrix 4-bit, graph/decoder.ts). fp16 builds the fp16
   * graph (fp16 matrices multiplied in fp16, the rest fp32) where WebGPU has `shader-f16`; elsewhere it
   * loads as fp32 (`dtype` says which, `dtypeNote` why), unless `fp16Graph` forces it.
   */
  dtype?: WeightDtype;
  /**
   * fp16 only: build the fp16 graph whatever the backend (ORT's CPU and WASM builds run it too, for
   * checking it against the reference); default: only on WebGPU with `shader-f16`
   */
  fp16Graph?: boolean;
  /** q4 only: block size and MatMulNBits accuracy_level (see DecoderOptions) */
  q4?: DecoderOptions['q4'];
  /**
   * fp32 embedding / untied head larger than this are stored as row blocks (DecoderOptions); default
   * WEBGPU_WEIGHT_BLOCK_BYTES when the backend may be WebGPU ('webgpu', 'auto'), else none
   */
  maxWeightBytes?: number;
  session?: Omit<CreateSessionOptions, 'gpuOutputs'>;
  /**
   * How the K/V cache grows. 'append' (default on 'wasm' and 'node-cpu', and on 'auto' where there is
   * no WebGPU): a JS-side capacity buffer per layer that each call writes only its new slots into
   * (`kvcache.ts`); 'concat' (default where WebGPU may run): the graph concatenates past and new into
   * `present.*`, which stays on the GPU under WebGPU.
   */
  kvCache?: 'append' | 'concat';
  /** told when each step of create starts (graph build, session open, the WebGPU warm-up run), for progress */
  onStage?: (stage: 'graph' | 'session' | 'warmup') => void;
  /**
   * onnxruntime-node ('node-cpu') with a WeightProvider only: keep the graph as files in `store` and
   * open the session from the path (ORT maps the external data: no JS copy beside ORT's), built into
   * the store the first time. `source` identifies the weights' and the adapter's bytes (graph-store.ts
   * graphKey adds the spec and the options). Ignored on the other backends.
   */
  graphStore?: { store: GraphStore; source: string };
}

const FP16_NOTE =
  'fp16 loads as fp32 here: the fp16 graph needs WebGPU with the shader-f16 feature; on this backend choose int8 or q4 to save memory';

// NOTE: measured on a SmolLM2-135M-shaped model in Node (onnxruntime-web 1.30, one thread): 770 ms vs
// 70 ms per decoded token at load 9, 476 vs 26 ms on a quiet machine (BENCHMARKS.md, `--only q4`);
// onnxruntime-node's CPU kernel is faster in q4 than in fp32 (18 vs 31 ms quiet).
const Q4_WASM_NOTE =
  'q4 on WASM: ONNX Runtime’s WebAssembly build has no fast 4-bit kernel, so decoding is 10–20× slower than fp32 (for a fifth of the memory)';

const INT8_WEBGPU_NOTE =
  'int8 is for WASM and CPU: ONNX Runtime’s WebGPU backend has no 8-bit matmul kernel, so its matmuls run on the CPU here; choose q4 or fp32 on WebGPU';

function badInput(message: string, details: Record<string, unknown> = {}): EngineError {
  return new EngineError('bad_input', message, details);
}

/**
 * A KV cache ([B, kvHeads, P, headDim] per layer, post-RoPE), opaque. Held either as ORT tensors
 * (`tensors`: concat graphs; under WebGPU the data lives on the GPU) or as a view of the first P slots
 * of a shared append buffer (`store`, kvcache.ts). `toData()` reads it out. Whoever receives one owns it
 * and disposes it; disposing a view leaves the buffer to the other views on it.
 */
export class KvCache {
  private disposed = false;

  constructor(
    /** the runtime whose tensors these are */
    readonly ort: Ort,
    readonly batch: number,
    readonly length: number,
    readonly tensors: { keys: readonly OrtTensor[]; values: readonly OrtTensor[] } | null,
    readonly store: KvStore | null = null,
  ) {}

  get isDisposed(): boolean {
    return this.disposed;
  }

  async toData(): Promise<KvCacheData> {
    if (this.disposed) throw new Error('KV cache already disposed');
    if (this.store) return storeToData(this.store, this.length);
    const read = async (t: OrtTensor): Promise<Float32Array> =>
      Float32Array.from((await t.getData()) as Float32Array);
    return {
      length: this.length,
      keys: await Promise.all(this.tensors!.keys.map(read)),
      values: await Promise.all(this.tensors!.values.map(read)),
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.tensors) for (const t of [...this.tensors.keys, ...this.tensors.values]) t.dispose();
  }
}

/** What `forward` returns: the reference's ForwardResult with the cache kept as a handle. */
export interface EngineForwardResult extends ForwardOutput {
  present: KvCache;
}

interface NoopPatch {
  mask: OrtTensor;
  resid: OrtTensor;
  kv: OrtTensor;
}

/**
 * 'append' where the model will run on a CPU runtime, 'concat' where it may run on WebGPU: for `auto`,
 * where an adapter is granted (`probeWebGpu`). NOTE: when a granted adapter still fails (session
 * creation or the warm-up run) the WASM fallback keeps the concat graph: rebuilding would read the
 * weights again.
 */
export function defaultKvCache(request: BackendRequest, gpu: WebGpuPresence): 'append' | 'concat' {
  if (request === 'wasm' || request === 'node-cpu') return 'append';
  if (request === 'webgpu') return 'concat';
  return gpu.adapter ? 'concat' : 'append';
}

/**
 * The graph an fp16 request gets: the fp16 graph where WebGPU has shader-f16 (or `forced`), else fp32
 * (CPU / WASM would compute it in fp32 anyway: graph/CONTEXT.md).
 */
export function fp16GraphFor(request: BackendRequest, gpu: WebGpuPresence, forced?: boolean): boolean {
  return forced === true || ((request === 'webgpu' || request === 'auto') && gpu.shaderF16);
}

/** [B, P+T] mask → [B, capacity+T]: slots P … capacity−1 of the append buffer are padding */
function slackMask(mask: Float32Array, B: number, P: number, T: number, capacity: number): Float32Array {
  if (capacity === P) return mask;
  const S = P + T;
  const out = new Float32Array(B * (capacity + T));
  for (let b = 0; b < B; b++) {
    out.set(mask.subarray(b * S, b * S + P), b * (capacity + T));
    out.set(mask.subarray(b * S + P, (b + 1) * S), b * (capacity + T) + capacity);
  }
  return out;
}

export class EngineModel {
  private noop: Promise<NoopPatch> | null = null;
  private disposed = false;

  private constructor(
    readonly spec: ArchSpec,
    readonly io: DecoderIo,
    private readonly session: EngineSession,
    private readonly fallbackReason?: string,
    /** the weight dtype that was asked for */
    private readonly askedDtype: WeightDtype = 'fp32',
    /** bytes of the graph handed to ORT: the weights as built (fp32 or 4-bit) plus the graph itself */
    readonly graphBytes = 0,
    /**
     * whether this load built its graph: true unless it was opened from a graph store's entry
     * (EngineModelOptions.graphStore) without building
     */
    readonly graphBuilt = true,
  ) {}

  /**
   * Builds the graph for `spec` (+ adapter) and opens a session on the requested backend. From a
   * WeightProvider (weights.ts `storeWeights`) each tensor is read, converted and written straight into
   * the graph's external data, one at a time: the graph is then the only JS copy of the weights, and it
   * is dropped once ORT has its session (kept only while a WebGPU session may still fall back to WASM).
   */
  static async create(
    spec: ArchSpec,
    weights: WeightMap | WeightProvider,
    opts: EngineModelOptions = {},
  ): Promise<EngineModel> {
    const asked = opts.dtype ?? 'fp32';
    const request = opts.backend ?? 'auto';
    const cpu = request === 'wasm' || request === 'node-cpu';
    const gpu: WebGpuPresence = cpu ? { adapter: false, shaderF16: false } : await probeWebGpu();
    const fp16 = asked === 'fp16' && fp16GraphFor(request, gpu, opts.fp16Graph);
    const dtype: GraphDtype = asked === 'q4' || asked === 'int8' ? asked : fp16 ? 'fp16' : 'fp32';
    const decoderOpts: DecoderOptions = {
      lora: opts.lora,
      patchInputs: opts.patchInputs,
      tapOutputs: opts.tapOutputs,
      maxPositions: opts.maxPositions,
      dtype,
      q4: opts.q4,
      maxWeightBytes:
        opts.maxWeightBytes ??
        (opts.backend === 'webgpu' || (opts.backend ?? 'auto') === 'auto'
          ? WEBGPU_WEIGHT_BLOCK_BYTES
          : undefined),
      kvAppend: (opts.kvCache ?? defaultKvCache(request, gpu)) === 'append',
    };
    if (opts.graphStore && request === 'node-cpu' && !(weights instanceof Map)) {
      const { store, source } = opts.graphStore;
      const stored = await store.graph(graphKey(source, spec, decoderOpts, opts.lora), (sink) =>
        buildDecoderGraphTo(spec, weights, sink, decoderOpts, (done, total) => {
          if (done === total) opts.onStage?.('graph');
        }),
      );
      opts.onStage?.('session');
      const session = await createSession(stored, request, { ...opts.session });
      return new EngineModel(spec, stored.io, session, undefined, asked, stored.graphBytes, stored.built);
    }
    let graph: DecoderGraph;
    if (weights instanceof Map) {
      opts.onStage?.('graph');
      graph = buildDecoderGraph(spec, weights, decoderOpts);
    } else {
      // NOTE: the weights are read while they are written into the graph (the provider reports that as
      // reading); what is left after the last one is encoding the protobuf, the 'graph' stage
      graph = await buildDecoderGraphFrom(spec, weights, decoderOpts, (done, total) => {
        if (done === total) opts.onStage?.('graph');
      });
    }
    const graphBytes = graph.model.byteLength + graph.externalData.reduce((n, f) => n + f.data.byteLength, 0);
    const gpuOutputs: string[] = [];
    if (!graph.io.kvAppend)
      for (let l = 0; l < spec.numLayers; l++) gpuOutputs.push(N.presentKey(l), N.presentValue(l));
    const sessionOpts = { ...opts.session, gpuOutputs };
    opts.onStage?.('session');
    const model = new EngineModel(
      spec,
      graph.io,
      await createSession(graph, request, sessionOpts),
      undefined,
      asked,
      graphBytes,
    );
    if (request !== 'auto' || model.backend.kind !== 'webgpu') return model;
    // NOTE: a WebGPU session can open and still fail on its first run (a kernel the EP lacks or
    // mis-shapes). One-token warm-up (it also compiles the shaders); on failure fall back to WASM, saying why.
    opts.onStage?.('warmup');
    try {
      const warm = await model.forward({ inputIds: [[0]], taps: { logits: 'last' } });
      warm.present.dispose();
      return model;
    } catch (e) {
      await model.dispose();
      const reason = `WebGPU run failed: ${errorMessage(e)}`;
      return new EngineModel(
        spec,
        graph.io,
        await createSession(graph, 'wasm', sessionOpts),
        reason,
        asked,
        graphBytes,
      );
    }
  }

  /** The backend this model runs on, and why it is not WebGPU when it fell back. */
  get backend(): BackendInfo {
    const b = this.session.backend;
    return this.fallbackReason ? { ...b, reason: this.fallbackReason } : b;
  }

  /** how the base weights are stored in this model's graph (fp16 requests load as fp32: see dtypeNote) */
  get dtype(): GraphDtype {
    return this.io.dtype;
  }

  /**
   * What to know about the weight dtype here, or undefined: why an fp16 request runs as fp32, or that
   * q4 on WASM trades speed for memory.
   */
  get dtypeNote(): string | undefined {
    if (this.askedDtype === 'fp16' && this.io.dtype !== 'fp16') return FP16_NOTE;
    if (this.io.dtype === 'q4' && this.session.backend.kind === 'wasm') return Q4_WASM_NOTE;
    if (this.io.dtype === 'int8' && this.session.backend.kind === 'webgpu') return INT8_WEBGPU_NOTE;
    return undefined;
  }

  get hasLora(): boolean {
    return this.io.hasLora;
  }

  /** A zero-length cache for `batch` rows (what a first call uses when no past is given). */
  emptyCache(batch: number): KvCache {
    const { numKvHeads: kvH, headDim: hd, numLayers: L } = this.spec;
    if (this.io.kvAppend)
      return new KvCache(this.session.ort, batch, 0, null, newStore(L, batch * kvH, hd, 0));
    const mk = (): OrtTensor => this.session.float32(new Float32Array(0), [batch, kvH, 0, hd]);
    return new KvCache(this.session.ort, batch, 0, {
      keys: Array.from({ length: L }, mk),
      values: Array.from({ length: L }, mk),
    });
  }

  /** Uploads cache data (e.g. from the reference, or from another model) into this model's runtime. */
  cacheFromData(data: KvCacheData, batch?: number): KvCache {
    const { numKvHeads: kvH, headDim: hd, numLayers: L } = this.spec;
    if (data.keys.length !== L || data.values.length !== L) {
      throw badInput(`cache has ${data.keys.length} layers, the model ${L}`);
    }
    const perRow = kvH * data.length * hd;
    const B = batch ?? (perRow === 0 ? 1 : data.keys[0].length / perRow);
    if (!Number.isInteger(B) || B < 1) throw badInput(`cache size ${data.keys[0].length} is not B·${perRow}`);
    for (const [l, a] of [...data.keys, ...data.values].entries()) {
      if (a.length !== B * perRow)
        throw badInput(`cache layer ${l % L} holds ${a.length} values, expected ${B * perRow}`);
    }
    if (this.io.kvAppend) {
      return new KvCache(this.session.ort, B, data.length, null, storeFromData(data, B * kvH, hd));
    }
    const mk = (a: Float32Array): OrtTensor => this.session.float32(a, [B, kvH, data.length, hd]);
    return new KvCache(this.session.ort, B, data.length, {
      keys: data.keys.map(mk),
      values: data.values.map(mk),
    });
  }

  /**
   * The same cache with every row repeated `times` times (row-major: r0,r0,…,r1,…) or, for a one-row
   * cache, broadcast to `times` rows: one prefix prefill, many continuations.
   */
  async expandCache(cache: KvCache, times: number): Promise<KvCache> {
    const data = await cache.toData();
    const rep = (a: Float32Array): Float32Array => {
      const rowLen = a.length / cache.batch;
      const out = new Float32Array(a.length * times);
      for (let r = 0; r < cache.batch; r++) {
        const row = a.subarray(r * rowLen, (r + 1) * rowLen);
        for (let i = 0; i < times; i++) out.set(row, (r * times + i) * rowLen);
      }
      return out;
    };
    return this.cacheFromData(
      { length: data.length, keys: data.keys.map(rep), values: data.values.map(rep) },
      cache.batch * times,
    );
  }

  /** Zero patches ([1,1,1] mask, [1,1,width] value), made once per model and shared by every run. */
  private noopPatch(): Promise<NoopPatch> {
    if (!this.noop) {
      const s = this.session;
      const kvDim = this.spec.numKvHeads * this.spec.headDim;
      const H = this.spec.hiddenSize;
      this.noop = Promise.all([
        s.constant(new Float32Array(1), [1, 1, 1]),
        s.constant(new Float32Array(H), [1, 1, H]),
        s.constant(new Float32Array(kvDim), [1, 1, kvDim]),
      ]).then(([mask, resid, kv]) => ({ mask, resid, kv }));
    }
    return this.noop;
  }

  /**
   * One forward call: `input` as for referenceForward, `past` a cache from an earlier call (not
   * consumed: the caller still owns and disposes it). The returned `present` is a new cache.
   */
  async forward(input: ForwardInput, past?: KvCache): Promise<EngineForwardResult> {
    const { output, present } = await this.run(input, past, true);
    return { ...output, present: present! };
  }

  /**
   * The same call without fetching the new cache: for sweeps that only read logits and taps (under
   * WASM a batch's cache can be hundreds of MB to copy out).
   */
  async evaluate(input: ForwardInput, past?: KvCache): Promise<ForwardOutput> {
    return (await this.run(input, past, false)).output;
  }

  private async run(
    input: ForwardInput,
    past: KvCache | undefined,
    wantCache: boolean,
  ): Promise<{ output: ForwardOutput; present: KvCache | null }> {
    if (this.disposed) throw new Error('model already disposed');
    const spec = this.spec;
    const { hiddenSize: H, numLayers: L, numKvHeads: kvH, headDim: hd, numHeads: nH } = spec;
    const kvDim = kvH * hd;
    const B = input.inputIds.length;
    if (B === 0) throw badInput('inputIds has no rows');
    const T = input.inputIds[0].length;
    if (T === 0) throw badInput('inputIds rows are empty');

    if (past?.isDisposed) throw badInput('past cache was disposed');
    if (past && past.batch !== B) {
      throw badInput(`past has ${past.batch} rows, input ${B}`, { expected: B, got: past.batch });
    }
    const P = past?.length ?? 0;
    const S = P + T;
    const append = this.io.kvAppend;

    const ids = new BigInt64Array(B * T);
    input.inputIds.forEach((row, b) => {
      if (row.length !== T) throw badInput(`inputIds row ${b} has ${row.length} tokens, row 0 has ${T}`);
      row.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) {
          throw badInput(`token id ${id} outside the vocabulary (${spec.vocabSize})`, { row: b, value: id });
        }
        ids[b * T + t] = BigInt(id);
      });
    });
    const mask = new Float32Array(B * S).fill(1);
    if (input.attentionMask) {
      const m = input.attentionMask;
      if (m.length !== B || m.some((r) => r.length !== S)) {
        throw badInput(`attentionMask must be [${B}][${S}] (past + new tokens)`);
      }
      m.forEach((row, b) => row.forEach((v, j) => (mask[b * S + j] = v)));
    }
    const pos = new BigInt64Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const p = input.positionIds ? input.positionIds[b]?.[t] : P + t;
        if (p === undefined || !Number.isInteger(p) || p < 0 || p >= this.io.maxPositions) {
          throw badInput(`position id ${p} outside [0, ${this.io.maxPositions}) at row ${b}, token ${t}`);
        }
        pos[b * T + t] = BigInt(p);
      }
    }

    const s = this.session;
    const created: OrtTensor[] = [];
    const mk = (t: OrtTensor): OrtTensor => (created.push(t), t);
    const taps = input.taps ?? {};
    let out: Record<string, OrtTensor>;
    let ownPast: KvCache | null = null;
    let capacity = P;
    let present: KvCache | null = null;
    try {
      if (!past) past = ownPast = this.emptyCache(B);
      else if (append ? !past.store : !past.tensors || past.ort !== s.ort) {
        // NOTE: another runtime's tensors (onnxruntime-node vs -web) cannot be fed here, nor a cache of
        // the other layout: copy them.
        past = ownPast = this.cacheFromData(await past.toData(), past.batch);
      }
      const pastIn = past;
      const st = pastIn.store;
      if (st && (st.rows !== B * kvH || st.headDim !== hd || st.keys.length !== L)) {
        throw badInput(
          `past cache is [${st.keys.length} layers, ${st.rows} rows × heads, head dim ${st.headDim}]`,
          {
            expected: [L, B * kvH, hd],
          },
        );
      }
      // NOTE: an append graph reads the whole capacity buffer; its slack slots P … capacity−1 are padding
      capacity = pastIn.store?.capacity ?? P;
      const feeds: Record<string, OrtTensor> = {
        [N.INPUT_IDS]: mk(s.int64(ids, [B, T])),
        [N.ATTENTION_MASK]: mk(
          s.float32(append ? slackMask(mask, B, P, T, capacity) : mask, [B, capacity + T]),
        ),
        [N.POSITION_IDS]: mk(s.int64(pos, [B, T])),
        [N.LOGITS_START]: mk(s.int64(BigInt64Array.of(input.taps?.logits === 'last' ? -1n : 0n), [1])),
      };
      if (pastIn.store) {
        feeds[N.PAST_LENGTH] = mk(s.int64(BigInt64Array.of(BigInt(P)), [1]));
        for (let l = 0; l < L; l++) {
          feeds[N.pastKey(l)] = mk(s.float32(pastIn.store.keys[l], [B, kvH, capacity, hd]));
          feeds[N.pastValue(l)] = mk(s.float32(pastIn.store.values[l], [B, kvH, capacity, hd]));
        }
      } else {
        for (let l = 0; l < L; l++) {
          feeds[N.pastKey(l)] = pastIn.tensors!.keys[l];
          feeds[N.pastValue(l)] = pastIn.tensors!.values[l];
        }
      }
      if (this.io.hasLora) {
        const scale = input.loraScale ?? new Array<number>(B).fill(1);
        if (scale.length !== B) throw badInput(`loraScale has ${scale.length} entries for ${B} rows`);
        feeds[N.LORA_SCALE] = mk(s.float32(Float32Array.from(scale), [B]));
      }

      const patches = input.patches;
      const hasPatches = (patches?.resid?.size ?? 0) + (patches?.kv?.size ?? 0) > 0;
      if (hasPatches && !this.io.patchInputs) throw badInput('this model was built without patch inputs');
      if (this.io.patchInputs) {
        const noop = await this.noopPatch();
        for (let site = 0; site <= L; site++) {
          const p = patches?.resid?.get(site);
          if (p && (p.mask.length !== B * T || p.value.length !== B * T * H)) {
            throw badInput(`resid patch ${site}: mask must hold B·T and value B·T·hidden values`, { site });
          }
          feeds[N.residPatchMask(site)] = p ? mk(s.float32(p.mask, [B, T, 1])) : noop.mask;
          feeds[N.residPatch(site)] = p ? mk(s.float32(p.value, [B, T, H])) : noop.resid;
        }
        for (let l = 0; l < L; l++) {
          const p = patches?.kv?.get(l);
          if (
            p &&
            (p.mask.length !== B * T || p.k.length !== B * T * kvDim || p.v.length !== B * T * kvDim)
          ) {
            throw badInput(`kv patch ${l}: mask must hold B·T, k and v B·T·kvHeads·headDim values`, {
              layer: l,
            });
          }
          feeds[N.kvPatchMask(l)] = p ? mk(s.float32(p.mask, [B, T, 1])) : noop.mask;
          feeds[N.kPatch(l)] = p ? mk(s.float32(p.k, [B, T, kvDim])) : noop.kv;
          feeds[N.vPatch(l)] = p ? mk(s.float32(p.v, [B, T, kvDim])) : noop.kv;
        }
        for (const site of patches?.resid?.keys() ?? []) {
          if (!(site >= 0 && site <= L)) throw badInput(`resid patch site ${site} out of range`);
        }
        for (const l of patches?.kv?.keys() ?? []) {
          if (!(l >= 0 && l < L)) throw badInput(`kv patch layer ${l} out of range`);
        }
      }

      const tapped = (taps.resid?.length ?? 0) + (taps.kv?.length ?? 0) + (taps.attn?.length ?? 0) > 0;
      if (tapped && !this.io.tapOutputs) throw badInput('this model was built without tap outputs');
      for (const site of taps.resid ?? [])
        if (!(site >= 0 && site <= L)) throw badInput(`resid tap ${site} out of range`);
      for (const l of [...(taps.kv ?? []), ...(taps.attn ?? [])]) {
        if (!(l >= 0 && l < L)) throw badInput(`layer tap ${l} out of range`);
      }
      const fetches = [N.LOGITS];
      if (wantCache) {
        for (let l = 0; l < L; l++) {
          fetches.push(...(append ? [N.newKey(l), N.newValue(l)] : [N.presentKey(l), N.presentValue(l)]));
        }
      }
      for (const site of new Set(taps.resid ?? [])) fetches.push(N.residTap(site));
      for (const l of new Set(taps.kv ?? [])) fetches.push(N.kTap(l), N.vTap(l));
      for (const l of new Set(taps.attn ?? [])) fetches.push(N.attnTap(l));

      out = await s.run(feeds, fetches);
      if (wantCache && pastIn.store) {
        const slots = async (name: string): Promise<Float32Array> => {
          const data = (await out[name].getData()) as Float32Array;
          out[name].dispose();
          return data;
        };
        const newK: Float32Array[] = [];
        const newV: Float32Array[] = [];
        for (let l = 0; l < L; l++) {
          newK.push(await slots(N.newKey(l)));
          newV.push(await slots(N.newValue(l)));
        }
        const store = appendSlots(pastIn.store, P, T, newK, newV);
        present = new KvCache(s.ort, B, S, null, store);
      }
    } finally {
      for (const t of created) t.dispose();
      ownPast?.dispose();
    }

    const cpu = async (name: string, shape: number[]): Promise<Tensor> => {
      const t = out[name];
      const data = (await t.getData()) as Float32Array;
      t.dispose();
      return { shape, data };
    };
    const tOut = taps.logits === 'last' ? 1 : T;
    const result: ForwardOutput = {
      logits: await cpu(N.LOGITS, [B, tOut, spec.vocabSize]),
      resid: new Map(),
      k: new Map(),
      v: new Map(),
      attn: new Map(),
    };
    if (wantCache && !append) {
      present = new KvCache(s.ort, B, S, {
        keys: Array.from({ length: L }, (_, l) => out[N.presentKey(l)]),
        values: Array.from({ length: L }, (_, l) => out[N.presentValue(l)]),
      });
    }
    for (const site of new Set(taps.resid ?? []))
      result.resid.set(site, await cpu(N.residTap(site), [B, T, H]));
    for (const l of new Set(taps.kv ?? [])) {
      result.k.set(l, await cpu(N.kTap(l), [B, T, kvDim]));
      result.v.set(l, await cpu(N.vTap(l), [B, T, kvDim]));
    }
    for (const l of new Set(taps.attn ?? [])) {
      const a = await cpu(N.attnTap(l), [B, nH, T, capacity + T]);
      // NOTE: the contract is [B,nH,T,P+T]: an append graph's slack columns (all 0) are dropped
      result.attn.set(l, capacity === P ? a : compactAttention(a, P, capacity, T));
    }
    return { output: result, present };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.noop) for (const t of Object.values(await this.noop)) t.dispose();
    await this.session.release();
  }
}
