// The engine's shared vocabulary: architecture spec, weights, LoRA branches, hook sites and the
// forward-pass contract that both the ONNX engine (model.ts) and the oracle (reference.ts) implement.
// Types only: this module must never import ORT, the DOM or Node APIs.

/** Architectures the graph builder knows. Each is a small spec, not a fork of the graph code. */
export type ModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma2' | 'gemma3_text';

export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/** Everything the graph builder and the reference forward need to know about a decoder. */
export interface ArchSpec {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q_proj / k_proj / v_proj carry a bias (Qwen2). */
  qkvBias: boolean;
  /** o_proj carries a bias (rare; Llama `attention_bias`). */
  oBias: boolean;
  /** gate/up/down carry a bias (Llama `mlp_bias`). */
  mlpBias: boolean;
  /** per-head RMSNorm on q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  // --- Gemma-2 / Gemma-3 features: each absent (the Llama-family default) unless the config sets it ---
  /** token embeddings are multiplied by this (Gemma: √hidden rounded to the checkpoint dtype); default 1 */
  embedScale?: number;
  /** RMSNorm multiplies by (normWeightOffset + w) (Gemma stores w − 1: offset 1); default 0 */
  normWeightOffset?: number;
  /**
   * Gemma's sandwich norms: `post_attention_layernorm` normalises the attention output before the
   * residual add, `pre_feedforward_layernorm` feeds the MLP and `post_feedforward_layernorm` normalises
   * its output; default false (Llama: `post_attention_layernorm` feeds the MLP)
   */
  sandwichNorms?: boolean;
  /** the gated MLP's activation: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU); default 'silu' */
  mlpActivation?: 'silu' | 'gelu_tanh';
  /** attention scores are q·k times this (Gemma: query_pre_attn_scalar^-½); default headDim^-½ */
  attnScale?: number;
  /** attention scores become tanh(s / c)·c before the mask (Gemma-2); default none */
  attnSoftcap?: number;
  /** logits become tanh(z / c)·c (Gemma-2); default none */
  finalSoftcap?: number;
  /**
   * per layer: the sliding window of a local layer (a query at slot i sees key slots i−w+1 … i) or null
   * for a global layer; absent = every layer global
   */
  layerWindows?: (number | null)[];
  /** RoPE of the local (windowed) layers when it differs from the global one (Gemma-3); default the same */
  localRope?: { ropeTheta: number; ropeScaling: RopeScaling };
  /**
   * the decoder is the text part of a multimodal checkpoint (Gemma-3 `Gemma3ForConditionalGeneration`):
   * its tensors are stored as `language_model.model.X` and `language_model.lm_head.weight` (transformers
   * < 4.52) or `model.language_model.X` and `lm_head.weight`; weights.ts reads them from there under
   * the usual `model.X` names and ignores the vision tower; default false
   */
  textOfMultimodal?: boolean;
}

/** A dense row-major fp32 tensor. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Weights keyed by their Hugging Face names, e.g. `model.layers.0.self_attn.q_proj.weight`. */
export type WeightMap = Map<string, Tensor>;

/** The seven projections PEFT can target in these architectures. */
export type LoraTarget = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';

/** One low-rank branch: y += scale · scaling · B(A x). A: [r, in], B: [out, r]. */
export interface LoraBranch {
  a: Tensor;
  b: Tensor;
}

/** A loaded PEFT adapter, kept as separate branches (never merged) so base and finetuned share weights. */
export interface LoraAdapter {
  r: number;
  alpha: number;
  useRslora: boolean;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scaling: number;
  baseModel: string | null;
  /** key: `${layer}.${target}` e.g. `3.q_proj` */
  branches: Map<string, LoraBranch>;
}

/**
 * Hook sites. Residual site l ∈ [0, numLayers] is the residual stream entering layer l;
 * site numLayers is the stream after the last layer (before the final norm).
 * K/V sites are the k_proj / v_proj outputs before RoPE (and before Qwen3's k_norm), per layer.
 */
export interface PatchSet {
  /** per residual site: mask [B·T] (1 = replace), value [B·T·hidden] */
  resid?: Map<number, { mask: Float32Array; value: Float32Array }>;
  /** per layer: mask [B·T], k and v [B·T·numKvHeads·headDim] */
  kv?: Map<number, { mask: Float32Array; k: Float32Array; v: Float32Array }>;
}

export interface TapRequest {
  /** residual sites to return */
  resid?: number[];
  /** layers whose pre-RoPE k / v to return */
  kv?: number[];
  /** layers whose attention probabilities to return */
  attn?: number[];
  /** which positions' logits to return: every position, or only the last one of each row */
  logits?: 'all' | 'last';
}

/** KV cache of one sequence batch: per layer, post-RoPE keys and values [B, kvHeads, P, headDim]. */
export interface KvCacheData {
  length: number;
  keys: Float32Array[];
  values: Float32Array[];
}

export interface ForwardInput {
  /** [B][T] token ids; all rows the same length (pad with any id and mask it out) */
  inputIds: number[][];
  /** [B][P+T] 1 = attend, 0 = padding; default all ones */
  attentionMask?: number[][];
  /** [B][T]; default P..P+T-1 */
  positionIds?: number[][];
  /** per-row LoRA scale (0 = base, 1 = finetuned); ignored without an adapter; default 1 */
  loraScale?: number[];
  patches?: PatchSet;
  taps?: TapRequest;
}

export interface ForwardOutput {
  /** [B, Tlogits, vocab] where Tlogits is T ('all') or 1 ('last') */
  logits: Tensor;
  resid: Map<number, Tensor>;
  k: Map<number, Tensor>;
  v: Map<number, Tensor>;
  attn: Map<number, Tensor>;
}

/** What reference.ts and model.ts both return from one forward call. */
export interface ForwardResult extends ForwardOutput {
  /** the cache after this call (past + this call's tokens), post-RoPE */
  present: KvCacheData;
}
