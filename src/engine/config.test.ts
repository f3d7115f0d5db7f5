import { describe, expect, it } from 'vitest';
import { CONFIG_LIMITS, parseConfig, parseConfigDetailed } from './config';
import { EngineError, type EngineErrorCode } from './errors';

// Real-world config.json files, abridged to the fields transformers reads (written from memory).
const LLAMA_32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  is_llama_config: true,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pad_token_id: 2,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 49152,
};

const MISTRAL_7B = {
  architectures: ['MistralForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mistral',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 32000,
};

function expectCode(f: () => unknown, code: EngineErrorCode): EngineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error(`expected EngineError ${code}`);
}

describe('real-world configs', () => {
  it('Llama-3.2-1B: llama3 rope, GQA, tied, eos list', () => {
    expect(parseConfig(LLAMA_32_1B)).toEqual({
      modelType: 'llama',
      vocabSize: 128256,
      hiddenSize: 2048,
      intermediateSize: 8192,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: {
        type: 'llama3',
        factor: 32,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
      },
      maxPositionEmbeddings: 131072,
      tieWordEmbeddings: true,
      qkvBias: false,
      oBias: false,
      mlpBias: false,
      qkNorm: false,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
    });
  });

  it('Qwen2.5-0.5B: q/k/v bias, head_dim from hidden/heads, inactive sliding window', () => {
    const { spec, notes } = parseConfigDetailed(QWEN25_05B);
    expect(spec).toMatchObject({
      modelType: 'qwen2',
      headDim: 64,
      numHeads: 14,
      numKvHeads: 2,
      qkvBias: true,
      oBias: false,
      mlpBias: false,
      qkNorm: false,
      ropeTheta: 1e6,
      ropeScaling: { type: 'default' },
      maxPositionEmbeddings: 32768,
      tieWordEmbeddings: true,
      rmsNormEps: 1e-6,
      eosTokenIds: [151645],
    });
    expect(notes).toEqual([]);
  });

  it('Qwen3-0.6B: q/k norm, explicit head_dim ≠ hidden/heads, no bias', () => {
    expect(parseConfig(QWEN3_06B)).toMatchObject({
      modelType: 'qwen3',
      hiddenSize: 1024,
      numHeads: 16,
      numKvHeads: 8,
      headDim: 128,
      qkNorm: true,
      qkvBias: false,
      oBias: false,
      maxPositionEmbeddings: 40960,
    });
    expect(parseConfig({ ...QWEN3_06B, attention_bias: true })).toMatchObject({ qkvBias: true, oBias: true });
  });

  it('SmolLM2-135M: 9 heads / 3 kv heads, theta 1e5', () => {
    expect(parseConfig(SMOLLM2_135M)).toMatchObject({
      headDim: 64,
      numHeads: 9,
      numKvHeads: 3,
      ropeTheta: 100000,
      ropeScaling: { type: 'default' },
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
  });

  it('Mistral-7B: untied, sliding window lowers the usable context and is noted', () => {
    const { spec, notes } = parseConfigDetailed(MISTRAL_7B);
    expect(spec).toMatchObject({
      modelType: 'mistral',
      tieWordEmbeddings: false,
      qkvBias: false,
      oBias: false,
      headDim: 128,
      maxPositionEmbeddings: 4096,
    });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('sliding_window 4096');
    const v02 = parseConfigDetailed({ ...MISTRAL_7B, sliding_window: null, rope_theta: 1e6 });
    expect(v02.spec.maxPositionEmbeddings).toBe(32768);
    expect(v02.notes).toEqual([]);
  });

  it('Qwen2 with use_sliding_window applies the window', () => {
    const { spec } = parseConfigDetailed({ ...QWEN25_05B, use_sliding_window: true, sliding_window: 4096 });
    expect(spec.maxPositionEmbeddings).toBe(4096);
  });
});

describe('fields and defaults', () => {
  const minimal = {
    model_type: 'llama',
    vocab_size: 10,
    hidden_size: 8,
    intermediate_size: 12,
    num_hidden_layers: 1,
    num_attention_heads: 2,
  };

  it('applies transformers defaults', () => {
    expect(parseConfig(minimal)).toEqual({
      modelType: 'llama',
      vocabSize: 10,
      hiddenSize: 8,
      intermediateSize: 12,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 2,
      headDim: 4,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: { type: 'default' },
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false,
      qkvBias: false,
      oBias: false,
      mlpBias: false,
      qkNorm: false,
      bosTokenId: null,
      eosTokenIds: [],
    });
  });

  it('llama attention_bias covers q/k/v and o; mlp_bias the MLP', () => {
    expect(parseConfig({ ...minimal, attention_bias: true, mlp_bias: true })).toMatchObject({
      qkvBias: true,
      oBias: true,
      mlpBias: true,
    });
  });

  it('linear scaling with the legacy `type` key, and rope_parameters (transformers v5)', () => {
    expect(parseConfig({ ...minimal, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling).toEqual({
      type: 'linear',
      factor: 2,
    });
    const v5 = parseConfig({ ...minimal, rope_parameters: { rope_type: 'default', rope_theta: 5e5 } });
    expect(v5.ropeTheta).toBe(5e5);
    expect(v5.ropeScaling).toEqual({ type: 'default' });
    const v5l3 = parseConfig({
      ...minimal,
      rope_parameters: { ...LLAMA_32_1B.rope_scaling, rope_theta: 5e5 },
    });
    expect(v5l3.ropeScaling.type).toBe('llama3');
  });

  it('Qwen3 without head_dim uses its class default 128', () => {
    const { head_dim: _drop, ...rest } = QWEN3_06B;
    const { spec, notes } = parseConfigDetailed(rest);
    expect(spec.headDim).toBe(128);
    expect(notes[0]).toContain('head_dim');
  });
});

describe('refusals', () => {
  it('unsupported model_type names it', () => {
    const e = expectCode(
      () => parseConfig({ ...LLAMA_32_1B, model_type: 'gpt_neox' }),
      'unsupported_architecture',
    );
    expect(e.details).toMatchObject({ field: 'model_type', value: 'gpt_neox' });
    expect(e.message).toContain('gpt_neox');
    expectCode(() => parseConfig({ hidden_size: 8 }), 'unsupported_architecture');
  });

  it('unsupported rope type, activation or quantization names field and value', () => {
    const yarn = expectCode(
      () => parseConfig({ ...LLAMA_32_1B, rope_scaling: { rope_type: 'yarn', factor: 4 } }),
      'unsupported_config',
    );
    expect(yarn.details).toMatchObject({ field: 'rope_scaling.rope_type', value: 'yarn' });
    const dyn = expectCode(
      () => parseConfig({ ...LLAMA_32_1B, rope_scaling: { type: 'dynamic', factor: 4 } }),
      'unsupported_config',
    );
    expect(dyn.details.value).toBe('dynamic');
    const gelu = expectCode(() => parseConfig({ ...LLAMA_32_1B, hidden_act: 'gelu' }), 'unsupported_config');
    expect(gelu.details).toMatchObject({ field: 'hidden_act', value: 'gelu' });
    expectCode(() => parseConfig({ ...QWEN25_05B, quantization_config: { bits: 4 } }), 'unsupported_config');
  });

  it('head counts must divide', () => {
    const e = expectCode(() => parseConfig({ ...LLAMA_32_1B, num_key_value_heads: 5 }), 'bad_config');
    expect(e.details.field).toBe('num_key_value_heads');
    const { head_dim: _drop, ...noHeadDim } = LLAMA_32_1B;
    expectCode(
      () => parseConfig({ ...noHeadDim, num_attention_heads: 30, num_key_value_heads: 10 }),
      'bad_config',
    );
  });

  it('missing or mistyped fields', () => {
    const { vocab_size: _v, ...noVocab } = LLAMA_32_1B;
    expect(expectCode(() => parseConfig(noVocab), 'bad_config').details.field).toBe('vocab_size');
    expectCode(() => parseConfig({ ...LLAMA_32_1B, hidden_size: 2048.5 }), 'bad_config');
    expectCode(() => parseConfig({ ...LLAMA_32_1B, tie_word_embeddings: 'yes' }), 'bad_config');
    expectCode(() => parseConfig({ ...LLAMA_32_1B, eos_token_id: ['a'] }), 'bad_config');
    expectCode(
      () => parseConfig({ ...LLAMA_32_1B, rope_scaling: { rope_type: 'llama3', factor: 8 } }),
      'bad_config',
    );
    expectCode(() => parseConfig([1]), 'bad_json');
  });
});

describe('size bounds (untrusted config.json)', () => {
  const expectBound = (field: string, value: number) => {
    const t0 = performance.now();
    let err: unknown;
    try {
      parseConfig({ ...LLAMA_32_1B, [field]: value }, 'evil/config.json');
    } catch (e) {
      err = e;
    }
    expect(performance.now() - t0).toBeLessThan(100);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('bad_config');
    expect((err as EngineError).details.field).toBe(field);
    expect((err as EngineError).message).toContain('evil/config.json');
    expect((err as EngineError).message).toContain(field);
    expect((err as EngineError).message).toContain(
      `at most ${CONFIG_LIMITS[field as keyof typeof CONFIG_LIMITS]}`,
    );
  };

  it('refuses an absurd layer count before building anything', () =>
    expectBound('num_hidden_layers', 10_000_000));

  it.each([
    ['hidden_size', 10_000_000],
    ['intermediate_size', 100_000_000],
    ['num_attention_heads', 1_000_000],
    ['num_key_value_heads', 1_000_000],
    ['head_dim', 1_000_000],
    ['vocab_size', 1_000_000_000],
    ['max_position_embeddings', 2 ** 40],
  ])('refuses %s = %d, naming the field', (field, value) => expectBound(field, value));

  it('refuses an absurd original_max_position_embeddings inside rope_scaling', () => {
    const cfg = {
      ...LLAMA_32_1B,
      rope_scaling: { ...LLAMA_32_1B.rope_scaling, original_max_position_embeddings: 2 ** 40 },
    };
    expect(() => parseConfig(cfg)).toThrow(/original_max_position_embeddings must be at most/);
  });

  it('still loads real models at the large end: 1000 layers, a 1M vocabulary, a 10M context', () => {
    const spec = parseConfig({
      ...LLAMA_32_1B,
      num_hidden_layers: 1000,
      vocab_size: 1_048_576,
      max_position_embeddings: 10_485_760,
      hidden_size: 16384,
      intermediate_size: 53248,
      num_attention_heads: 128,
      num_key_value_heads: 8,
      head_dim: 128,
      rope_scaling: null,
    });
    expect([spec.numLayers, spec.vocabSize, spec.maxPositionEmbeddings]).toEqual([
      1000, 1_048_576, 10_485_760,
    ]);
  });
});
