// Hugging Face `config.json` → ArchSpec for the decoders the engine builds (Llama, Mistral, Qwen2,
// Qwen3), with the defaults transformers applies when a field is absent.
// Must never guess silently: an unknown architecture or an unsupported field value is an EngineError
// naming it, and anything that changes the math but is ignored is reported in `notes`. Must never let
// a size field past its bound (CONFIG_LIMITS): a config.json is untrusted input, and every later
// allocation (tensor names per layer, RoPE tables, the graph) is sized from these fields.

import { isObject, type JsonObject } from '../common/json';
import { EngineError } from './errors';
import type { ArchSpec, ModelType, RopeScaling } from './types';

const MODEL_TYPES: readonly ModelType[] = ['llama', 'mistral', 'qwen2', 'qwen3'];

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
  if (typeof mt !== 'string' || !(MODEL_TYPES as readonly string[]).includes(mt)) {
    throw new EngineError(
      'unsupported_architecture',
      `${file}: model_type ${JSON.stringify(mt)} is not supported (supported: ${MODEL_TYPES.join(', ')})`,
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
