// Hugging Face `config.json` → ArchSpec for the decoders the engine builds (Llama, Mistral, Qwen2,
// Qwen3, Gemma-2, Gemma-3 and the text part of multimodal Gemma-3), with the defaults transformers
// applies when a field is absent.
// Must never guess silently: an unknown architecture or an unsupported field value is an EngineError
// naming it, and anything that changes the math but is ignored is reported in `notes`. Must never let
// a size field past its bound (CONFIG_LIMITS): a config.json is untrusted input, and every later
// allocation (tensor names per layer, RoPE tables, the graph) is sized from these fields.

import { isObject, type JsonObject } from '../common/json';
import { EngineError } from './errors';
import type { ArchSpec, ModelType, RopeScaling } from './types';

const MODEL_TYPES: readonly ModelType[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma2', 'gemma3_text'];

/** transformers' per-architecture defaults for fields a config.json may omit. */
const DEFAULTS: Record<
  ModelType,
  { maxPositionEmbeddings: number; rmsNormEps: number; ropeTheta: number; headDim: number | null }
> = {
  llama: { maxPositionEmbeddings: 2048, rmsNormEps: 1e-6, ropeTheta: 10000, headDim: null },
  mistral: { maxPositionEmbeddings: 4096 * 32, rmsNormEps: 1e-6, ropeTheta: 10000, headDim: null },
  qwen2: { maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 10000, headDim: null },
  // NOTE: Qwen3Config defaults head_dim to 128 rather than hidden/heads; every released config sets it.
  qwen3: { maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 10000, headDim: 128 },
  // Gemma2Config / Gemma3TextConfig; the rest of their defaults are in GEMMA_DEFAULTS
  gemma2: { maxPositionEmbeddings: 8192, rmsNormEps: 1e-6, ropeTheta: 10000, headDim: 256 },
  gemma3_text: { maxPositionEmbeddings: 131072, rmsNormEps: 1e-6, ropeTheta: 1_000_000, headDim: 256 },
};

/**
 * Upper bounds on config.json's size fields, checked before anything is sized from them. Each is far
 * above every released decoder (largest today: 126 layers, hidden 16384 / 18432, intermediate 53248,
 * 128 heads, head_dim 256, vocab ~262k, context 10M) so real models load, while a config with, say,
 * 10 million layers is refused in microseconds instead of building tens of millions of tensor names.
 */
export const CONFIG_LIMITS = {
  num_hidden_layers: 1024,
  hidden_size: 65_536,
  intermediate_size: 262_144,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 1024,
  vocab_size: 4_194_304,
  max_position_embeddings: 16_777_216,
  original_max_position_embeddings: 16_777_216,
} as const;

type LimitedField = keyof typeof CONFIG_LIMITS;

export interface ParsedConfig {
  spec: ArchSpec;
  /** human-readable remarks about fields that were accepted with a caveat (e.g. sliding window) */
  notes: string[];
}

function bad(field: string, value: unknown, why: string, file: string): EngineError {
  return new EngineError('bad_config', `${file}: ${field} ${why} (got ${JSON.stringify(value)})`, {
    file,
    field,
    value,
  });
}

function unsupported(field: string, value: unknown, why: string, file: string): EngineError {
  return new EngineError(
    'unsupported_config',
    `${file}: ${field} = ${JSON.stringify(value)} is not supported: ${why}`,
    {
      file,
      field,
      value,
    },
  );
}

function posInt(cfg: JsonObject, field: string, file: string, fallback?: number): number {
  const v = cfg[field] ?? fallback;
  if (!Number.isSafeInteger(v) || (v as number) <= 0)
    throw bad(field, cfg[field], 'must be a positive integer', file);
  const max = limitOf(field);
  if (max !== undefined && (v as number) > max)
    throw bad(field, v, `must be at most ${max}, the engine's bound (no released model comes near it)`, file);
  return v as number;
}

function limitOf(field: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(CONFIG_LIMITS, field)
    ? CONFIG_LIMITS[field as LimitedField]
    : undefined;
}

function posNumber(cfg: JsonObject, field: string, file: string, fallback: number): number {
  const v = cfg[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw bad(field, cfg[field], 'must be a positive number', file);
  return v;
}

function bool(cfg: JsonObject, field: string, file: string, fallback: boolean): boolean {
  const v = cfg[field] ?? fallback;
  if (typeof v !== 'boolean') throw bad(field, cfg[field], 'must be a boolean', file);
  return v;
}

function tokenIds(v: unknown, field: string, file: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
    throw bad(field, v, 'must be a token id or a list of them', file);
  }
  return list as number[];
}

function parseRope(
  cfg: JsonObject,
  file: string,
  fallbackTheta: number,
): { ropeTheta: number; ropeScaling: RopeScaling } {
  // transformers ≥ 4.56 / v5 writes `rope_parameters` (theta inside); older configs use the two fields.
  const params = isObject(cfg.rope_parameters) ? cfg.rope_parameters : null;
  const scaling = params ?? (isObject(cfg.rope_scaling) ? cfg.rope_scaling : null);
  if (!params && cfg.rope_scaling !== undefined && cfg.rope_scaling !== null && !scaling) {
    throw bad('rope_scaling', cfg.rope_scaling, 'must be an object or null', file);
  }
  const ropeTheta = posNumber(
    params && params.rope_theta !== undefined ? params : cfg,
    'rope_theta',
    file,
    fallbackTheta,
  );
  if (!scaling) return { ropeTheta, ropeScaling: { type: 'default' } };
  const field = params ? 'rope_parameters' : 'rope_scaling';
  const kind = scaling.rope_type ?? scaling.type ?? 'default';
  if (scaling.partial_rotary_factor !== undefined && scaling.partial_rotary_factor !== 1) {
    throw unsupported(
      `${field}.partial_rotary_factor`,
      scaling.partial_rotary_factor,
      'only full rotary',
      file,
    );
  }
  switch (kind) {
    case 'default':
      return { ropeTheta, ropeScaling: { type: 'default' } };
    case 'linear':
      return {
        ropeTheta,
        ropeScaling: { type: 'linear', factor: posNumber(scaling, 'factor', `${file} ${field}`, NaN) },
      };
    case 'llama3': {
      const where = `${file} ${field}`;
      const lowFreqFactor = posNumber(scaling, 'low_freq_factor', where, NaN);
      const highFreqFactor = posNumber(scaling, 'high_freq_factor', where, NaN);
      if (highFreqFactor <= lowFreqFactor) {
        throw bad(`${field}.high_freq_factor`, highFreqFactor, 'must exceed low_freq_factor', file);
      }
      return {
        ropeTheta,
        ropeScaling: {
          type: 'llama3',
          factor: posNumber(scaling, 'factor', where, NaN),
          lowFreqFactor,
          highFreqFactor,
          originalMaxPositionEmbeddings: posInt(scaling, 'original_max_position_embeddings', where),
        },
      };
    }
    default:
      throw unsupported(`${field}.rope_type`, kind, 'only default, linear and llama3 RoPE are built', file);
  }
}

/**
 * Parses a config.json object. `file` only labels errors.
 *
 * Sliding-window attention (Mistral `sliding_window`, Qwen2/3 `use_sliding_window`): the engine always
 * runs full causal attention, which equals sliding-window attention exactly while the context is no
 * longer than the window. So a window smaller than `max_position_embeddings` lowers
 * `spec.maxPositionEmbeddings` to the window (and says so in `notes`) instead of being refused.
 */
export function parseConfigDetailed(config: unknown, file = 'config.json'): ParsedConfig {
  if (!isObject(config)) throw new EngineError('bad_json', `${file}: not a JSON object`, { file });
  const cfg = config;
  const notes: string[] = [];
  const mt = cfg.model_type;
  if (mt === 'gemma2' || mt === 'gemma3_text' || mt === 'gemma3') return parseGemmaConfig(cfg, file);
  if (typeof mt !== 'string' || !(MODEL_TYPES as readonly string[]).includes(mt)) {
    throw new EngineError(
      'unsupported_architecture',
      `${file}: model_type ${JSON.stringify(mt)} is not supported (supported: ${MODEL_TYPES.join(', ')}, gemma3)`,
      { file, field: 'model_type', value: mt },
    );
  }
  const modelType = mt as ModelType;
  const d = DEFAULTS[modelType];

  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish')
    throw unsupported('hidden_act', act, 'only SiLU (SwiGLU) MLPs are built', file);
  if (cfg.quantization_config !== undefined && cfg.quantization_config !== null) {
    throw unsupported('quantization_config', cfg.quantization_config, 'load an unquantized checkpoint', file);
  }

  const hiddenSize = posInt(cfg, 'hidden_size', file);
  const numHeads = posInt(cfg, 'num_attention_heads', file);
  const numKvHeads = posInt(cfg, 'num_key_value_heads', file, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw bad('num_key_value_heads', numKvHeads, `must divide num_attention_heads (${numHeads})`, file);
  }
  let headDim: number;
  if (cfg.head_dim !== undefined && cfg.head_dim !== null) {
    headDim = posInt(cfg, 'head_dim', file);
  } else if (d.headDim !== null) {
    headDim = d.headDim;
    notes.push(`head_dim absent: using the ${modelType} default ${headDim}`);
  } else {
    if (hiddenSize % numHeads !== 0) {
      throw bad(
        'num_attention_heads',
        numHeads,
        `must divide hidden_size (${hiddenSize}) when head_dim is absent`,
        file,
      );
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) throw bad('head_dim', headDim, 'must be even for rotate-half RoPE', file);

  const { ropeTheta, ropeScaling } = parseRope(cfg, file, d.ropeTheta);
  let maxPositionEmbeddings = posInt(cfg, 'max_position_embeddings', file, d.maxPositionEmbeddings);

  const window = slidingWindow(cfg, modelType, file);
  if (window !== null && window < maxPositionEmbeddings) {
    notes.push(
      `sliding_window ${window} < max_position_embeddings ${maxPositionEmbeddings}: ` +
        `context limited to ${window}, where full causal attention is exact`,
    );
    maxPositionEmbeddings = window;
  }

  let qkvBias: boolean;
  let oBias: boolean;
  let mlpBias = false;
  switch (modelType) {
    case 'llama':
      qkvBias = oBias = bool(cfg, 'attention_bias', file, false);
      mlpBias = bool(cfg, 'mlp_bias', file, false);
      break;
    case 'qwen3':
      qkvBias = oBias = bool(cfg, 'attention_bias', file, false);
      break;
    case 'qwen2':
      qkvBias = true;
      oBias = false;
      break;
    case 'mistral':
    case 'gemma2': // parsed by parseGemmaConfig; never reached
    case 'gemma3_text':
      qkvBias = oBias = false;
      break;
  }

  const bos = cfg.bos_token_id;
  if (bos !== undefined && bos !== null && !(Number.isSafeInteger(bos) && (bos as number) >= 0)) {
    throw bad('bos_token_id', bos, 'must be a token id or null', file);
  }

  const spec: ArchSpec = {
    modelType,
    vocabSize: posInt(cfg, 'vocab_size', file),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size', file),
    numLayers: posInt(cfg, 'num_hidden_layers', file),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: posNumber(cfg, 'rms_norm_eps', file, d.rmsNormEps),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings,
    tieWordEmbeddings: bool(cfg, 'tie_word_embeddings', file, false),
    qkvBias,
    oBias,
    mlpBias,
    qkNorm: modelType === 'qwen3',
    bosTokenId: (bos as number | null | undefined) ?? null,
    eosTokenIds: tokenIds(cfg.eos_token_id, 'eos_token_id', file),
  };
  return { spec, notes };
}

function slidingWindow(cfg: JsonObject, modelType: ModelType, file: string): number | null {
  const w = cfg.sliding_window;
  if (w === undefined || w === null) return null;
  if (!Number.isSafeInteger(w) || (w as number) <= 0)
    throw bad('sliding_window', w, 'must be a positive integer or null', file);
  // Qwen2/3 apply the window only when use_sliding_window is set (default false).
  if ((modelType === 'qwen2' || modelType === 'qwen3') && cfg.use_sliding_window !== true) return null;
  return w as number;
}

export function parseConfig(config: unknown, file = 'config.json'): ArchSpec {
  return parseConfigDetailed(config, file).spec;
}

// --- Gemma-2 / Gemma-3 -------------------------------------------------------------------------

/** Gemma2Config / Gemma3TextConfig defaults (transformers) for fields a config.json may omit. */
const GEMMA_DEFAULTS = {
  gemma2: {
    vocab_size: 256_000,
    final_logit_softcapping: 30.0 as number | null,
    attn_logit_softcapping: 50.0 as number | null,
  },
  gemma3_text: {
    vocab_size: 262_208,
    final_logit_softcapping: null as number | null,
    attn_logit_softcapping: null as number | null,
  },
  shared: {
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    bos_token_id: 2,
    eos_token_id: 1,
  },
} as const;

/** fp64 → the dtype's nearest value, as `torch.tensor(x, dtype=…)` stores a Python float (via fp32). */
function roundToDtype(x: number, dtype: 'float32' | 'bfloat16' | 'float16'): number {
  const f = Math.fround(x);
  if (dtype === 'float32') return f;
  const bits = new Uint32Array(Float32Array.of(f).buffer)[0];
  if (dtype === 'bfloat16') {
    // round to nearest even on the low 16 bits
    const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
    return new Float32Array(Uint32Array.of(rounded >>> 0).buffer)[0];
  }
  // float16: 10 mantissa bits; normal range only (√hidden is far inside it)
  const exp = Math.floor(Math.log2(Math.abs(f)));
  const step = 2 ** (exp - 10);
  const q = f / step;
  const fl = Math.floor(q);
  const r = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return r * step;
}

function optionalCap(cfg: JsonObject, field: string, file: string, fallback: number | null): number | null {
  const v = field in cfg ? cfg[field] : fallback;
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw bad(field, v, 'must be a positive number or null', file);
  return v;
}

/** Per layer: true = sliding (local) attention. `layer_types` when given, else the family's pattern. */
function gemmaSlidingLayers(
  cfg: JsonObject,
  type: 'gemma2' | 'gemma3_text',
  numLayers: number,
  file: string,
): boolean[] {
  const lt = cfg.layer_types;
  if (lt !== undefined && lt !== null) {
    if (!Array.isArray(lt) || lt.length !== numLayers) {
      throw bad('layer_types', lt, `must list one type per layer (${numLayers})`, file);
    }
    return lt.map((t, i) => {
      if (t === 'sliding_attention') return true;
      if (t === 'full_attention') return false;
      throw unsupported(`layer_types[${i}]`, t, 'only sliding_attention and full_attention layers', file);
    });
  }
  // Gemma-2: every other layer, starting with layer 0, is local; Gemma-3: all but every
  // `sliding_window_pattern`-th (default 6: five local, then one global)
  const pattern =
    type === 'gemma2'
      ? 2
      : posInt(
          cfg,
          cfg.sliding_window_pattern !== undefined ? 'sliding_window_pattern' : '_sliding_window_pattern',
          file,
          6,
        );
  return Array.from({ length: numLayers }, (_, i) => (i + 1) % pattern !== 0);
}

/**
 * Gemma-2 (`gemma2`), Gemma-3 text (`gemma3_text`) and the text decoder of multimodal Gemma-3 (`gemma3`,
 * fields under `text_config`). What transformers' Gemma2/Gemma3 models compute, as ArchSpec fields:
 * embeddings × √hidden rounded to the checkpoint dtype (`torch_dtype`: the model runs in fp32 here, but
 * the normaliser is the one the checkpoint was trained with), RMSNorm by (1 + w), sandwich norms, GeGLU
 * (tanh GELU), scores × query_pre_attn_scalar^-½, sliding-window layers (exact, not a context cap),
 * separate local RoPE (Gemma-3) and soft-capping. Anything else that would change the math is refused.
 */
function parseGemmaConfig(config: JsonObject, file: string): ParsedConfig {
  const notes: string[] = [];
  let cfg = config;
  let where = file;
  const multimodal = config.model_type === 'gemma3';
  if (multimodal) {
    if (!isObject(config.text_config)) {
      throw bad('text_config', config.text_config, 'must be an object (the text decoder of Gemma-3)', file);
    }
    const tmt = config.text_config.model_type;
    if (tmt !== undefined && tmt !== 'gemma3_text') {
      throw unsupported(
        'text_config.model_type',
        tmt,
        'the text decoder of gemma3 must be gemma3_text',
        file,
      );
    }
    cfg = config.text_config;
    where = `${file} text_config`;
    notes.push(
      'multimodal Gemma-3: only the text decoder is loaded (the vision tower in vision_config is not), so prompts are text only',
    );
  }
  const type: 'gemma2' | 'gemma3_text' = config.model_type === 'gemma2' ? 'gemma2' : 'gemma3_text';
  const fam = GEMMA_DEFAULTS[type];
  const sh = GEMMA_DEFAULTS.shared;
  const d = DEFAULTS[type];

  const act = cfg.hidden_activation ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') {
    throw unsupported(
      'hidden_activation',
      act,
      'only the tanh GELU (gelu_pytorch_tanh) GeGLU MLP is built',
      where,
    );
  }
  // NOTE: transformers' Gemma reads hidden_activation only; Gemma-2 configs also carry hidden_act with the
  // same value. One that disagrees leaves it unclear which activation the checkpoint was trained with.
  if (cfg.hidden_act !== undefined && cfg.hidden_act !== null && cfg.hidden_act !== act) {
    throw unsupported('hidden_act', cfg.hidden_act, `disagrees with hidden_activation (${act})`, where);
  }
  for (const c of multimodal ? [config, cfg] : [cfg]) {
    if (c.quantization_config !== undefined && c.quantization_config !== null) {
      throw unsupported('quantization_config', c.quantization_config, 'load an unquantized checkpoint', file);
    }
  }
  if (cfg.use_bidirectional_attention !== undefined && cfg.use_bidirectional_attention !== false) {
    throw unsupported(
      'use_bidirectional_attention',
      cfg.use_bidirectional_attention,
      'only causal decoders are built (this is an embedding model)',
      where,
    );
  }

  const hiddenSize = posInt(cfg, 'hidden_size', where, sh.hidden_size);
  const numLayers = posInt(cfg, 'num_hidden_layers', where, sh.num_hidden_layers);
  const numHeads = posInt(cfg, 'num_attention_heads', where, sh.num_attention_heads);
  const numKvHeads = posInt(cfg, 'num_key_value_heads', where, sh.num_key_value_heads);
  if (numHeads % numKvHeads !== 0) {
    throw bad('num_key_value_heads', numKvHeads, `must divide num_attention_heads (${numHeads})`, where);
  }
  const headDim = posInt(cfg, 'head_dim', where, d.headDim ?? undefined);
  if (headDim % 2 !== 0) throw bad('head_dim', headDim, 'must be even for rotate-half RoPE', where);

  // RoPE: Gemma-3's global layers use rope_theta (+ rope_scaling), its local ones rope_local_base_freq
  // unscaled; transformers v5 writes both as rope_parameters keyed by layer type.
  const rp = isObject(cfg.rope_parameters) ? cfg.rope_parameters : null;
  const perType = rp !== null && ('full_attention' in rp || 'sliding_attention' in rp);
  let global: { ropeTheta: number; ropeScaling: RopeScaling };
  let local: { ropeTheta: number; ropeScaling: RopeScaling } | null = null;
  if (perType) {
    const sub = (key: string, theta: number) => {
      const p = rp[key] ?? {};
      if (!isObject(p)) throw bad(`rope_parameters.${key}`, p, 'must be an object', where);
      return parseRope({ rope_parameters: p }, `${where} rope_parameters.${key}`, theta);
    };
    global = sub('full_attention', d.ropeTheta);
    if (type === 'gemma3_text') local = sub('sliding_attention', 10_000);
  } else {
    global = parseRope(cfg, where, d.ropeTheta);
    if (type === 'gemma3_text') {
      local = {
        ropeTheta: posNumber(cfg, 'rope_local_base_freq', where, 10_000),
        ropeScaling: { type: 'default' },
      };
    }
  }
  if (type === 'gemma2' && cfg.rope_local_base_freq !== undefined) {
    throw unsupported(
      'rope_local_base_freq',
      cfg.rope_local_base_freq,
      'Gemma-2 has one RoPE for all layers',
      where,
    );
  }

  const window = posInt(cfg, 'sliding_window', where, sh.sliding_window);
  const sliding = gemmaSlidingLayers(cfg, type, numLayers, where);

  const finalSoftcap = optionalCap(cfg, 'final_logit_softcapping', where, fam.final_logit_softcapping);
  const attnSoftcap = optionalCap(cfg, 'attn_logit_softcapping', where, fam.attn_logit_softcapping);
  if (type === 'gemma3_text' && attnSoftcap !== null) {
    // transformers' Gemma-3 attention never applies it, so a checkpoint that sets it is ambiguous
    throw unsupported(
      'attn_logit_softcapping',
      attnSoftcap,
      'Gemma-3 attention does not soft-cap scores',
      where,
    );
  }
  const qpas = posNumber(cfg, 'query_pre_attn_scalar', where, sh.query_pre_attn_scalar);

  const dtypeField = cfg.torch_dtype !== undefined ? 'torch_dtype' : 'dtype';
  const dtypeValue = cfg[dtypeField] ?? config.torch_dtype ?? config.dtype ?? 'float32';
  if (dtypeValue !== 'float32' && dtypeValue !== 'bfloat16' && dtypeValue !== 'float16') {
    throw unsupported(dtypeField, dtypeValue, 'Gemma weights are float32, bfloat16 or float16', where);
  }
  // NOTE: transformers multiplies the embeddings by √hidden held in the model dtype (Gemma-3 comment:
  // sqrt(3072) = 55.4256 becomes 55.5 in bf16); trained that way, so the checkpoint's dtype decides.
  const embedScale = roundToDtype(Math.sqrt(hiddenSize), dtypeValue);

  const bosRaw = cfg.bos_token_id !== undefined ? cfg.bos_token_id : (config.bos_token_id ?? sh.bos_token_id);
  if (bosRaw !== null && !(Number.isSafeInteger(bosRaw) && (bosRaw as number) >= 0)) {
    throw bad('bos_token_id', bosRaw, 'must be a token id or null', where);
  }
  const eosRaw = cfg.eos_token_id ?? config.eos_token_id ?? sh.eos_token_id;
  const attentionBias = bool(cfg, 'attention_bias', where, false);

  const spec: ArchSpec = {
    modelType: type,
    vocabSize: posInt(cfg, 'vocab_size', where, fam.vocab_size),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size', where, sh.intermediate_size),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: posNumber(cfg, 'rms_norm_eps', where, d.rmsNormEps),
    ropeTheta: global.ropeTheta,
    ropeScaling: global.ropeScaling,
    maxPositionEmbeddings: posInt(cfg, 'max_position_embeddings', where, d.maxPositionEmbeddings),
    tieWordEmbeddings: bool(
      cfg,
      'tie_word_embeddings',
      where,
      bool(config, 'tie_word_embeddings', file, true),
    ),
    qkvBias: attentionBias,
    oBias: attentionBias,
    mlpBias: false,
    qkNorm: type === 'gemma3_text',
    bosTokenId: bosRaw as number | null,
    eosTokenIds: tokenIds(eosRaw, 'eos_token_id', where),
    embedScale,
    normWeightOffset: 1,
    sandwichNorms: true,
    mlpActivation: 'gelu_tanh',
    attnScale: qpas ** -0.5,
    layerWindows: sliding.map((s) => (s ? window : null)),
  };
  if (attnSoftcap !== null) spec.attnSoftcap = attnSoftcap;
  if (finalSoftcap !== null) spec.finalSoftcap = finalSoftcap;
  if (local) spec.localRope = local;
  if (multimodal) spec.textOfMultimodal = true;
  return { spec, notes };
}
