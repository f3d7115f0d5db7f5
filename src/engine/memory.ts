// Memory planning before a load: bytes of the weights as the engine builds them for the chosen dtype
// (fp32; int8: 8-bit codes + one scale per row for every matrix; q4: 4-bit blocks for every matrix;
// fp16: 2-byte matrices where the fp16 graph is built (WebGPU with shader-f16), else as fp32), the KV cache for a context length and
// batch, the largest activations, and the biggest single buffer — compared with the WebGPU adapter's
// `maxBufferSize` and `maxStorageBufferBindingSize` (and WASM's 4 GiB heap), so a model that cannot
// fit is refused with a message that names the buffer, the limit, and the dtype that would fit.
// Estimates only: must never allocate, never touch ORT or the GPU, never import Node APIs or the DOM.

import { formatBytes } from '../common/format';
import { capacityFor } from './kvcache';
import { Q4_BLOCK } from './quantize';
import type { ArchSpec } from './types';
import { requiredTensors } from './weights';

export type WeightDtype = 'fp32' | 'fp16' | 'int8' | 'q4';

export interface GpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** WebGPU's guaranteed minimums; real adapters usually allow more (ORT asks for the adapter's maxima). */
export const WEBGPU_DEFAULT_LIMITS: GpuLimits = {
  maxBufferSize: 268_435_456,
  maxStorageBufferBindingSize: 134_217_728,
};

/**
 * The largest fp32 embedding / untied head block the engine builds when the backend may be WebGPU
 * (graph/decoder.ts `maxWeightBytes`): the guaranteed binding limit, so the blocks bind on any adapter.
 */
export const WEBGPU_WEIGHT_BLOCK_BYTES = WEBGPU_DEFAULT_LIMITS.maxStorageBufferBindingSize;

/** wasm32 linear memory: everything the WASM backend holds lives in one 4 GiB heap. */
export const WASM_HEAP_LIMIT = 4 * 1024 ** 3;

/**
 * The WASM backend as a memory target: one heap of `heapBytes` (default WASM_HEAP_LIMIT; less to model
 * a device whose browser caps WebAssembly memory lower, e.g. the page's `?wasm-heap=` setting).
 */
export interface WebGpuTarget {
  backend: 'webgpu';
  limits: GpuLimits;
  budgetBytes?: number;
  /** the adapter has shader-f16, so an fp16 request builds the fp16 graph (2 bytes a matrix value) */
  shaderF16?: boolean;
}

export interface WasmTarget {
  backend: 'wasm';
  heapBytes?: number;
}

export interface MemoryOptions {
  dtype: WeightDtype;
  /** prompt + answer tokens a row can reach (the KV cache is sized for this) */
  contextLength: number;
  /** rows run together (sweeps batch interventions along B); default 1 */
  batch?: number;
  /** tokens processed in one call (prefill); default min(contextLength, 256) */
  prefillTokens?: number;
  /** positions per row whose logits are computed (the graph can skip all but the last); default 1 */
  logitsPositions?: number;
  /** LoRA parameters on top (kept in the float dtype) */
  loraParams?: number;
  /** weight copies: 2 for a full-finetune pair (two sessions), 1 for base + LoRA; default 1 */
  weightCopies?: number;
  /**
   * fp32 embedding / untied head stored as row blocks of at most this many bytes (graph/decoder.ts
   * `maxWeightBytes`; the engine uses WEBGPU_WEIGHT_BLOCK_BYTES when the backend may be WebGPU): they
   * count as blocks for the largest buffer. Default: one buffer each.
   */
  maxWeightBytes?: number;
  /**
   * how the K/V cache grows (model.ts `kvCache`): 'append' (the CPU runtimes' default) keeps one buffer
   * per layer with up to KV_CHUNK spare slots (kvcache.ts capacityFor); 'concat' (WebGPU) holds the past
   * and the present (one slot longer) together during every step. Default 'append'.
   */
  kvCache?: 'append' | 'concat';
  /**
   * dtype fp16 only: the fp16 graph is built (WebGPU with shader-f16: model.ts), so every matrix is 2
   * bytes a value; otherwise an fp16 request loads as fp32 and counts 4
   */
  fp16Graph?: boolean;
}

export interface BufferEstimate {
  name: string;
  bytes: number;
}

export interface MemoryEstimate {
  dtype: WeightDtype;
  parameters: number;
  weightsBytes: number;
  kvBytes: number;
  /** the largest transient activations (logits, MLP intermediate, attention scores) */
  activationBytes: number;
  totalBytes: number;
  /** the single biggest GPU buffer: what the binding limits apply to */
  largestBuffer: BufferEstimate;
  /** the few biggest buffers, biggest first */
  topBuffers: BufferEstimate[];
  /** JS heap the current loader holds while building (fp32 copies of the weights) */
  loaderBytes: number;
}

/**
 * Bytes per float the engine holds. An fp16 request counts 4 too unless `fp16Graph`: EngineModel
 * builds the fp16 graph only on WebGPU with shader-f16 and loads fp32 elsewhere (graph/CONTEXT.md).
 */
const FLOAT_BYTES = 4;

/** Bytes of one [N, K] matrix as MatMulNBits inputs: packed codes, scales, optional zero points. */
export function q4Bytes(
  n: number,
  k: number,
  scaleBytes: number,
  zeroPoints: boolean,
  blockSize = Q4_BLOCK,
): { codes: number; scales: number; zeroPoints: number } {
  const blocks = Math.ceil(k / blockSize);
  return {
    codes: n * blocks * (blockSize / 2),
    scales: n * blocks * scaleBytes,
    zeroPoints: zeroPoints ? n * Math.ceil(blocks / 2) : 0,
  };
}

export function estimateMemory(spec: ArchSpec, opts: MemoryOptions): MemoryEstimate {
  const batch = opts.batch ?? 1;
  const ctx = opts.contextLength;
  // NOTE: prompts here are short (template prefix + one question): prefill defaults to 256 tokens.
  const prefill = opts.prefillTokens ?? Math.min(ctx, 256);
  const copies = opts.weightCopies ?? 1;
  const fb = FLOAT_BYTES;
  const buffers: BufferEstimate[] = [];
  let parameters = 0;
  let weightsBytes = 0;
  const int8Widths = new Set<number>();
  for (const t of requiredTensors(spec)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    parameters += count;
    // NOTE: in q4 every matrix is 4-bit with fp32 scales and packed zero points (asymmetric, as
    // ENGINE_Q4, when the row count is a multiple of 4): MatMulNBits for the projections and an untied lm_head, GatherBlockQuantized for the
    // embedding (when the hidden size is whole blocks, else it stays fp32) with its own scales and one
    // zero point per byte; a tied head shares the embedding's codes and adds MatMulNBits' scales and
    // zero points. Norms and biases stay fp32. As graph/decoder.ts builds it.
    const embedding = t.name === 'model.embed_tokens.weight';
    if (opts.dtype === 'int8' && t.shape.length === 2) {
      // NOTE: int8 (graph/decoder.ts): codes [K, N] one byte each + fp32 scales [N] per matrix; the
      // embedding is stored transposed ([H, V] + [V] scales) and a tied head shares both. The codes are
      // unsigned, with one all-128 uint8 zero point [N] per distinct output width N.
      const [n, k] = t.shape;
      buffers.push({ name: t.name, bytes: n * k });
      buffers.push({ name: `${t.name} (scales)`, bytes: n * fb });
      weightsBytes += n * k + n * fb;
      if (!int8Widths.has(n)) {
        int8Widths.add(n);
        weightsBytes += n;
      }
    } else if (
      opts.dtype === 'q4' &&
      t.shape.length === 2 &&
      (!embedding || spec.hiddenSize % Q4_BLOCK === 0)
    ) {
      const [n, k] = t.shape;
      const q = q4Bytes(n, k, fb, n % 4 === 0); // ENGINE_Q4: zero points only for a multiple of 4 rows
      let side = q.scales + q.zeroPoints;
      if (embedding) {
        const gather = q.scales + (q.zeroPoints ? n * Math.ceil(k / Q4_BLOCK) : 0);
        side = spec.tieWordEmbeddings ? gather + side : gather;
      }
      buffers.push({ name: t.name, bytes: q.codes });
      buffers.push({ name: `${t.name} (scales, zero points)`, bytes: side });
      weightsBytes += q.codes + side;
    } else {
      // NOTE: the fp16 graph stores every matrix (2-D) in fp16; norms and biases stay fp32
      const eb = opts.dtype === 'fp16' && opts.fp16Graph && t.shape.length === 2 ? 2 : fb;
      const blocked =
        (embedding || t.name === 'lm_head.weight') && count * eb > (opts.maxWeightBytes ?? Infinity);
      if (blocked) {
        const [n, k] = t.shape;
        const per = Math.max(1, Math.floor(opts.maxWeightBytes! / (k * eb)));
        for (let s = 0; s < n; s += per)
          buffers.push({ name: `${t.name} (rows ${s}…)`, bytes: Math.min(per, n - s) * k * eb });
      } else buffers.push({ name: t.name, bytes: count * eb });
      weightsBytes += count * eb;
    }
  }
  const lora = opts.loraParams ?? 0;
  parameters += lora;
  weightsBytes = weightsBytes * copies + lora * fb;

  // NOTE: append: one buffer of capacityFor(ctx) slots per layer and K/V (ctx + 1 … ctx + 64); concat:
  // a step's past (ctx − 1 slots) and present (ctx) are alive together.
  const concat = opts.kvCache === 'concat';
  const kvSlots = concat ? 2 * ctx - 1 : capacityFor(ctx);
  const kvPerLayer = batch * spec.numKvHeads * kvSlots * spec.headDim * fb;
  const kvBytes = 2 * spec.numLayers * kvPerLayer * copies;
  buffers.push({
    name: concat ? 'present.*.key / value (each)' : 'K/V cache buffer (each)',
    bytes: concat ? batch * spec.numKvHeads * ctx * spec.headDim * fb : kvPerLayer,
  });

  // NOTE: activations, logits and the KV cache are fp32 whatever the weights; attention scores are per
  // layer, reused.
  const logits = batch * Math.min(prefill, opts.logitsPositions ?? 1) * spec.vocabSize * 4;
  const mlp = batch * prefill * spec.intermediateSize * fb;
  const scores = batch * spec.numHeads * prefill * ctx * fb;
  buffers.push({ name: 'logits', bytes: logits });
  buffers.push({ name: 'MLP intermediate', bytes: mlp });
  buffers.push({ name: 'attention scores', bytes: scores });
  const activationBytes = logits + 2 * mlp + scores;

  buffers.sort((a, b) => b.bytes - a.bytes);
  return {
    dtype: opts.dtype,
    parameters,
    weightsBytes,
    kvBytes,
    activationBytes,
    totalBytes: weightsBytes + kvBytes + activationBytes,
    largestBuffer: buffers[0],
    topBuffers: buffers.slice(0, 5),
    loaderBytes: (parameters - lora) * 4 * copies + lora * 4,
  };
}

export interface FitCheck {
  ok: boolean;
  /** each limit broken, in words */
  problems: string[];
}

/** WebGPU: every buffer within both limits; optionally the total within `budgetBytes`. */
function checkWebGpu(est: MemoryEstimate, limits: GpuLimits, budgetBytes?: number): FitCheck {
  const problems: string[] = [];
  const b = est.largestBuffer;
  if (b.bytes > limits.maxStorageBufferBindingSize) {
    problems.push(
      `${b.name} needs one ${formatBytes(b.bytes)} buffer, but this GPU binds at most ${formatBytes(limits.maxStorageBufferBindingSize)} (maxStorageBufferBindingSize)`,
    );
  }
  if (b.bytes > limits.maxBufferSize) {
    problems.push(
      `${b.name} needs one ${formatBytes(b.bytes)} buffer, but this GPU allows at most ${formatBytes(limits.maxBufferSize)} per buffer (maxBufferSize)`,
    );
  }
  if (budgetBytes !== undefined && est.totalBytes > budgetBytes) {
    problems.push(
      `it needs about ${formatBytes(est.totalBytes)} in all, more than the ${formatBytes(budgetBytes)} available`,
    );
  }
  return { ok: problems.length === 0, problems };
}

/** The heap a WASM target has, in words: “WebAssembly's 4.00 GiB heap” (or the smaller one set). */
const heapOf = (t: WasmTarget) => t.heapBytes ?? WASM_HEAP_LIMIT;
const heapWords = (t: WasmTarget) =>
  t.heapBytes === undefined
    ? `WebAssembly's ${formatBytes(heapOf(t))} heap`
    : `the ${formatBytes(heapOf(t))} WebAssembly heap this page was given`;

function checkWasm(est: MemoryEstimate, target: WasmTarget): FitCheck {
  return est.totalBytes > heapOf(target)
    ? {
        ok: false,
        problems: [`it needs about ${formatBytes(est.totalBytes)}, more than ${heapWords(target)}`],
      }
    : { ok: true, problems: [] };
}

export interface PlanResult {
  ok: boolean;
  estimate: MemoryEstimate;
  /** the smallest dtype that fits, when the chosen one does not */
  suggestion: WeightDtype | null;
  /** null when it fits; otherwise what is wrong and what to do */
  message: string | null;
}

/**
 * Checks `opts.dtype` against the backend's limits; when it does not fit, tries the lighter dtypes
 * (int8 then q4 on WASM, q4 on WebGPU) and suggests the first that fits (fp16 is never suggested: it
 * loads as fp32).
 */
export function planMemory(
  spec: ArchSpec,
  opts: MemoryOptions,
  target: WebGpuTarget | WasmTarget,
  label = 'this model',
): PlanResult {
  const check = (e: MemoryEstimate) =>
    target.backend === 'webgpu' ? checkWebGpu(e, target.limits, target.budgetBytes) : checkWasm(e, target);
  // NOTE: on WebGPU the engine builds an fp32 embedding / head as blocks that bind on any adapter
  if (target.backend === 'webgpu')
    opts = {
      maxWeightBytes: WEBGPU_WEIGHT_BLOCK_BYTES,
      kvCache: 'concat',
      fp16Graph: target.shaderF16 ?? false,
      ...opts,
    };
  const estimate = estimateMemory(spec, opts);
  const first = check(estimate);
  if (first.ok) return { ok: true, estimate, suggestion: null, message: null };
  // NOTE: int8 runs on MLAS's integer GEMM (CPU / WASM); ORT's WebGPU backend has no 8-bit matmul
  const ladder: WeightDtype[] = target.backend === 'wasm' ? ['int8', 'q4'] : ['q4'];
  const smaller = ladder.slice(ladder.indexOf(opts.dtype) + 1);
  for (const d of smaller) {
    const e = estimateMemory(spec, { ...opts, dtype: d });
    if (check(e).ok) {
      return {
        ok: false,
        estimate,
        suggestion: d,
        message: `${label} does not fit in ${opts.dtype} on ${target.backend}: ${first.problems.join('; ')}. Choose ${d}${d === 'q4' ? ' (4-bit weights)' : d === 'int8' ? ' (8-bit weights)' : ''}: about ${formatBytes(e.totalBytes)} in all, largest buffer ${formatBytes(e.largestBuffer.bytes)}.`,
      };
    }
  }
  const tips: string[] = [];
  if (opts.dtype !== 'q4') tips.push('even q4 does not fit');
  if ((opts.batch ?? 1) > 1) tips.push('use a smaller batch');
  if (opts.contextLength > 512) tips.push('shorten the context');
  tips.push(target.backend === 'webgpu' ? 'try the WASM backend or a smaller model' : 'use a smaller model');
  return {
    ok: false,
    estimate,
    suggestion: null,
    message: `${label} does not fit in ${opts.dtype} on ${target.backend}: ${first.problems.join('; ')}. ${tips.join('; ')}.`,
  };
}

/** One ORT session a spec opens: a model (with its adapter, if any) that no other entry shares. */
export interface SessionPlanInput {
  /** what to call it in a message (the spec's model ids that share it, or its source) */
  label: string;
  spec: ArchSpec;
  /** LoRA parameters on top (a finetune given as an adapter shares its base's session) */
  loraParams?: number;
  /**
   * a session whose dtype the spec does not choose (a model judge loads fp32): it is counted in this
   * dtype whatever dtype is planned or suggested for the others
   */
  dtype?: WeightDtype;
}

export interface SessionsPlanResult {
  ok: boolean;
  /** per session, in the dtype asked for */
  estimates: { label: string; estimate: MemoryEstimate }[];
  /** the sessions' total bytes in the dtype asked for */
  totalBytes: number;
  /** the lighter dtype with which all of them fit together, when the asked one does not */
  suggestion: WeightDtype | null;
  /** null when they fit; otherwise what is wrong and what to do */
  message: string | null;
}

/**
 * Dtypes lighter than fp32 that the engine builds, lightest last (fp16 loads as fp32, so never); int8
 * only where its kernel runs (MLAS: CPU / WASM, not WebGPU), as planMemory's ladder.
 */
const LIGHTER_DTYPES: readonly WeightDtype[] = ['int8', 'q4'];

/**
 * Every session of a spec at once. On WASM they share one 4 GiB heap, so their totals add up (a base, a
 * full finetune and a model judge are three sessions; a LoRA finetune rides on its base's); under
 * WebGPU each buffer must fit the binding limits and, with `budgetBytes`, the total the budget; on
 * `node` (onnxruntime-node) the total must fit `budgetBytes` (the machine's memory). When it does not
 * fit, it names the lighter dtype that fits, else what else would (a LoRA adapter instead of a second
 * full copy, WebGPU instead of WASM's heap, a smaller model).
 */
export function planSessions(
  sessions: readonly SessionPlanInput[],
  opts: Omit<MemoryOptions, 'loraParams' | 'weightCopies'>,
  target: WebGpuTarget | WasmTarget | { backend: 'node'; budgetBytes: number },
): SessionsPlanResult {
  const estimatesFor = (dtype: WeightDtype) =>
    sessions.map((s) => ({
      label: s.label,
      estimate: estimateMemory(s.spec, {
        ...(target.backend === 'webgpu'
          ? {
              maxWeightBytes: WEBGPU_WEIGHT_BLOCK_BYTES,
              kvCache: 'concat' as const,
              fp16Graph: target.shaderF16 ?? false,
            }
          : {}),
        ...opts,
        dtype: s.dtype ?? dtype,
        loraParams: s.loraParams ?? 0,
      }),
    }));
  const problemsOf = (es: { label: string; estimate: MemoryEstimate }[]): string[] => {
    const total = es.reduce((n, e) => n + e.estimate.totalBytes, 0);
    const problems: string[] = [];
    const what =
      es.length === 1
        ? `${es[0].label} needs about ${formatBytes(total)}`
        : `its ${es.length} sessions (${es.map((e) => `${e.label} ${formatBytes(e.estimate.totalBytes)}`).join(' + ')}) need about ${formatBytes(total)} together`;
    if (target.backend === 'wasm') {
      // NOTE: while a session opens, onnxruntime-web stages its external data in the heap beside the
      // initializers it makes of it (measured: the heap grows by 2.2× the weights for one session) and a
      // grown heap never shrinks, so a session opened beside another needs its weights twice. One
      // session alone is planMemory's case; beside it, the next largest stages its weights (the base +
      // full finetune that failed with std::bad_alloc).
      const sizes = es.map((e) => e.estimate.weightsBytes).sort((a, b) => b - a);
      const staging = sizes[1] ?? 0;
      if (total + staging > heapOf(target))
        problems.push(
          `${what}${staging > 0 ? `, plus ${formatBytes(staging)} while a second one opens` : ''}: more than ${heapWords(target)}, which they share`,
        );
    } else if (target.backend === 'node') {
      if (total > target.budgetBytes)
        problems.push(`${what}, more than this machine's ${formatBytes(target.budgetBytes)} of memory`);
    } else {
      for (const e of es) {
        const c = checkWebGpu(e.estimate, target.limits);
        problems.push(...c.problems.map((p) => `${e.label}: ${p}`));
      }
      if (target.budgetBytes !== undefined && total > target.budgetBytes)
        problems.push(`${what}, more than the ${formatBytes(target.budgetBytes)} available`);
    }
    return problems;
  };
  const estimates = estimatesFor(opts.dtype);
  const totalBytes = estimates.reduce((n, e) => n + e.estimate.totalBytes, 0);
  const problems = problemsOf(estimates);
  if (problems.length === 0) return { ok: true, estimates, totalBytes, suggestion: null, message: null };
  const head = `${sessions.length === 1 ? sessions[0].label : 'this experiment'} does not fit in ${opts.dtype} on ${target.backend}: ${problems.join('; ')}.`;
  const lighter = LIGHTER_DTYPES.slice(LIGHTER_DTYPES.indexOf(opts.dtype) + 1).filter(
    (d) => d !== 'int8' || target.backend !== 'webgpu',
  );
  for (const d of lighter) {
    const es = estimatesFor(d);
    if (problemsOf(es).length === 0) {
      const t = es.reduce((n, e) => n + e.estimate.totalBytes, 0);
      return {
        ok: false,
        estimates,
        totalBytes,
        suggestion: d,
        message: `${head} Choose ${d}${d === 'q4' ? ' (4-bit weights)' : d === 'int8' ? ' (8-bit weights)' : ''}: about ${formatBytes(t)} in all.`,
      };
    }
  }
  const tips: string[] = [];
  if (lighter.length > 0) tips.push(`even ${lighter.join(' or ')} does not fit`);
  const full = sessions.filter((s) => !s.loraParams).length;
  if (sessions.length > 1 && full > 1)
    tips.push(
      'a finetune given as a LoRA adapter shares its base’s session (one weight copy instead of two)',
    );
  if (target.backend === 'wasm') tips.push('WebGPU holds the weights outside the WebAssembly heap');
  if ((opts.batch ?? 1) > 1) tips.push('use a smaller batch');
  if (opts.contextLength > 512) tips.push('shorten the context');
  tips.push('or use a smaller model');
  return { ok: false, estimates, totalBytes, suggestion: null, message: `${head} ${tips.join('; ')}.` };
}
