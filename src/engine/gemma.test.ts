// Gemma-2 / Gemma-3: config.json → ArchSpec on the real checkpoints' configs (and each refusal), the
// reference's Gemma semantics (sliding windows, soft-caps, √hidden), the ONNX graph against the reference on
// tiny random Gemma specs (prefill with every tap, left padding, patches, LoRA dose, decode across the
// window, on both Node backends), and the text decoder of a multimodal Gemma-3 checkpoint loading from its
// language-model tensor names.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, parseConfigDetailed } from './config';
import { EngineError, type EngineErrorCode } from './errors';
import { memorySource } from './files';
import { relError } from './graph/compare';
import { EngineModel } from './model';
import { referenceForward, referenceForward64 } from './reference';
import { writeSafetensors, type WriteEntry } from './safetensors';
import { configureOrt } from './session';
import { loadLora } from './lora';
import { FIXTURE_CASES, fixturePath, spreadIds, stepDecodeWorstError } from './test-fixtures';
import { tinyLora, tinySpec, tinyTokens, tinyWeights } from './tiny-model';
import type { ArchSpec, ForwardInput, LoraAdapter, WeightMap } from './types';
import { loadModel } from './weights';
import { folderSource } from '../hub/folder-files-node';

configureOrt({ numThreads: 1 });

/** google/gemma-3-1b-it config.json (transformers 4.50). */
const GEMMA3_1B = {
  architectures: ['Gemma3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  cache_implementation: 'hybrid',
  eos_token_id: [1, 106],
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 1152,
  initializer_range: 0.02,
  intermediate_size: 6912,
  max_position_embeddings: 32768,
  model_type: 'gemma3_text',
  num_attention_heads: 4,
  num_hidden_layers: 26,
  num_key_value_heads: 1,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: 512,
  sliding_window_pattern: 6,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 262144,
};

const layerTypes = (n: number, every: number) =>
  Array.from({ length: n }, (_, i) => ((i + 1) % every === 0 ? 'full_attention' : 'sliding_attention'));

/** google/gemma-3-270m-it config.json (transformers 4.55: layer_types). */
const GEMMA3_270M = {
  _sliding_window_pattern: 6,
  architectures: ['Gemma3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: 1,
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 640,
  initializer_range: 0.02,
  intermediate_size: 2048,
  layer_types: layerTypes(18, 6),
  max_position_embeddings: 32768,
  model_type: 'gemma3_text',
  num_attention_heads: 4,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000.0,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 512,
  torch_dtype: 'bfloat16',
  use_bidirectional_attention: false,
  use_cache: true,
  vocab_size: 262144,
};

/** google/gemma-2-2b-it config.json (transformers 4.42). */
const GEMMA2_2B = {
  architectures: ['Gemma2ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: 50.0,
  bos_token_id: 2,
  cache_implementation: 'hybrid',
  eos_token_id: [1, 107],
  final_logit_softcapping: 30.0,
  head_dim: 256,
  hidden_act: 'gelu_pytorch_tanh',
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 2304,
  initializer_range: 0.02,
  intermediate_size: 9216,
  max_position_embeddings: 8192,
  model_type: 'gemma2',
  num_attention_heads: 8,
  num_hidden_layers: 26,
  num_key_value_heads: 4,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  sliding_window: 4096,
  torch_dtype: 'float32',
  use_cache: true,
  vocab_size: 256000,
};

/** google/gemma-3-4b-it config.json: multimodal, a sparse text_config over Gemma3TextConfig's defaults. */
const GEMMA3_4B = {
  architectures: ['Gemma3ForConditionalGeneration'],
  boi_token_index: 255999,
  eoi_token_index: 256000,
  eos_token_id: [1, 106],
  image_token_index: 262144,
  initializer_range: 0.02,
  mm_tokens_per_image: 256,
  model_type: 'gemma3',
  text_config: {
    hidden_size: 2560,
    intermediate_size: 10240,
    model_type: 'gemma3_text',
    num_hidden_layers: 34,
    rope_scaling: { factor: 8.0, rope_type: 'linear' },
    sliding_window: 1024,
  },
  torch_dtype: 'bfloat16',
  vision_config: {
    hidden_size: 1152,
    image_size: 896,
    intermediate_size: 4304,
    model_type: 'siglip_vision_model',
    num_attention_heads: 16,
    num_hidden_layers: 27,
    patch_size: 14,
    vision_use_head: false,
  },
};

function expectCode(f: () => unknown, code: EngineErrorCode, field?: string): EngineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    if (field !== undefined) expect((e as EngineError).details).toMatchObject({ field });
    return e as EngineError;
  }
  throw new Error(`expected ${code}`);
}

describe('Gemma config.json → ArchSpec', () => {
  it('gemma-3-1b-it: MQA, q/k norm, five local layers per global one, local RoPE, bf16 √hidden', () => {
    const { spec, notes } = parseConfigDetailed(GEMMA3_1B);
    expect(spec).toMatchObject({
      modelType: 'gemma3_text',
      vocabSize: 262144,
      hiddenSize: 1152,
      intermediateSize: 6912,
      numLayers: 26,
      numHeads: 4,
      numKvHeads: 1,
      headDim: 256,
      qkNorm: true,
      qkvBias: false,
      tieWordEmbeddings: true,
      // √1152 = 33.94…, 34 in bf16
      embedScale: 34,
      normWeightOffset: 1,
      sandwichNorms: true,
      mlpActivation: 'gelu_tanh',
      attnScale: 1 / 16,
      ropeTheta: 1e6,
      ropeScaling: { type: 'default' },
      localRope: { ropeTheta: 10000, ropeScaling: { type: 'default' } },
      // the windows are built exactly: no context cap
      maxPositionEmbeddings: 32768,
      bosTokenId: 2,
      eosTokenIds: [1, 106],
    });
    expect(spec.attnSoftcap).toBeUndefined();
    expect(spec.finalSoftcap).toBeUndefined();
    expect(spec.textOfMultimodal).toBeUndefined();
    expect(spec.layerWindows).toHaveLength(26);
    expect(spec.layerWindows!.map((w, i) => [i, w]).filter(([, w]) => w === null)).toEqual([
      [5, null],
      [11, null],
      [17, null],
      [23, null],
    ]);
    expect(spec.layerWindows!.filter((w) => w === 512)).toHaveLength(22);
    expect(notes).toEqual([]);
  });

  it('gemma-3-270m-it: layer_types decides the local layers; √640 → 25.25 in bf16', () => {
    const spec = parseConfig(GEMMA3_270M);
    expect(spec.layerWindows).toEqual(
      GEMMA3_270M.layer_types.map((t) => (t === 'full_attention' ? null : 512)),
    );
    expect(spec).toMatchObject({ hiddenSize: 640, numLayers: 18, embedScale: 25.25, eosTokenIds: [1] });
    // layer_types wins over the pattern, as in transformers
    const custom = ['full_attention', ...layerTypes(17, 6)];
    expect(parseConfig({ ...GEMMA3_270M, layer_types: custom }).layerWindows![0]).toBeNull();
  });

  it('gemma-2-2b-it: even layers local, soft-caps, one RoPE, fp32 √hidden', () => {
    const spec = parseConfig(GEMMA2_2B);
    expect(spec).toMatchObject({
      modelType: 'gemma2',
      vocabSize: 256000,
      hiddenSize: 2304,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 256,
      qkNorm: false,
      attnSoftcap: 50,
      finalSoftcap: 30,
      embedScale: 48,
      attnScale: 1 / 16,
      ropeTheta: 10000,
      maxPositionEmbeddings: 8192,
      eosTokenIds: [1, 107],
    });
    expect(spec.localRope).toBeUndefined();
    expect(spec.layerWindows).toEqual(Array.from({ length: 26 }, (_, i) => (i % 2 === 0 ? 4096 : null)));
    // transformers' defaults: 50 and 30 when the fields are absent, none when null
    const { attn_logit_softcapping: _a, final_logit_softcapping: _f, ...bare } = GEMMA2_2B;
    expect(parseConfig(bare)).toMatchObject({ attnSoftcap: 50, finalSoftcap: 30 });
    const uncapped = parseConfig({
      ...GEMMA2_2B,
      attn_logit_softcapping: null,
      final_logit_softcapping: null,
    });
    expect(uncapped.attnSoftcap).toBeUndefined();
    expect(uncapped.finalSoftcap).toBeUndefined();
  });

  it('gemma-3-4b-it (multimodal): the text_config over Gemma3TextConfig defaults, linear global RoPE', () => {
    const { spec, notes } = parseConfigDetailed(GEMMA3_4B);
    expect(spec).toMatchObject({
      modelType: 'gemma3_text',
      vocabSize: 262208,
      hiddenSize: 2560,
      intermediateSize: 10240,
      numLayers: 34,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 256,
      // √2560 = 50.596…, 50.5 in bf16 (torch_dtype from the top level)
      embedScale: 50.5,
      ropeTheta: 1e6,
      ropeScaling: { type: 'linear', factor: 8 },
      localRope: { ropeTheta: 10000, ropeScaling: { type: 'default' } },
      maxPositionEmbeddings: 131072,
      eosTokenIds: [1, 106],
      bosTokenId: 2,
      tieWordEmbeddings: true,
      textOfMultimodal: true,
    });
    expect(spec.layerWindows!.filter((w) => w === 1024)).toHaveLength(34 - 5);
    expect(notes.join()).toMatch(/vision tower/);
  });

  it("transformers v5 rope_parameters keyed by layer type, and float16's √hidden", () => {
    const { rope_theta: _t, rope_local_base_freq: _l, rope_scaling: _s, ...rest } = GEMMA3_1B;
    const spec = parseConfig({
      ...rest,
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
        sliding_attention: { rope_type: 'default', rope_theta: 10000 },
      },
      torch_dtype: 'float16',
    });
    expect(spec).toMatchObject({
      ropeTheta: 1e6,
      ropeScaling: { type: 'linear', factor: 8 },
      localRope: { ropeTheta: 10000, ropeScaling: { type: 'default' } },
      // √1152 = 33.941…: the float16 grid there is 1/32
      embedScale: 33.9375,
    });
  });

  it('refuses what the graph would ignore, naming the field', () => {
    expectCode(
      () => parseConfig({ ...GEMMA3_1B, hidden_activation: 'gelu' }),
      'unsupported_config',
      'hidden_activation',
    );
    expectCode(() => parseConfig({ ...GEMMA2_2B, hidden_act: 'silu' }), 'unsupported_config', 'hidden_act');
    expectCode(
      () => parseConfig({ ...GEMMA3_270M, use_bidirectional_attention: true }),
      'unsupported_config',
      'use_bidirectional_attention',
    );
    expectCode(
      () => parseConfig({ ...GEMMA3_1B, attn_logit_softcapping: 50 }),
      'unsupported_config',
      'attn_logit_softcapping',
    );
    expectCode(
      () => parseConfig({ ...GEMMA2_2B, final_logit_softcapping: -1 }),
      'bad_config',
      'final_logit_softcapping',
    );
    expectCode(
      () => parseConfig({ ...GEMMA2_2B, rope_local_base_freq: 1e4 }),
      'unsupported_config',
      'rope_local_base_freq',
    );
    expectCode(
      () => parseConfig({ ...GEMMA3_270M, layer_types: layerTypes(17, 6) }),
      'bad_config',
      'layer_types',
    );
    expectCode(
      () => parseConfig({ ...GEMMA3_270M, layer_types: ['chunked_attention', ...layerTypes(17, 6)] }),
      'unsupported_config',
      'layer_types[0]',
    );
    expectCode(
      () => parseConfig({ ...GEMMA3_1B, torch_dtype: 'float64' }),
      'unsupported_config',
      'torch_dtype',
    );
    expectCode(() => parseConfig({ ...GEMMA3_1B, sliding_window: 0 }), 'bad_config', 'sliding_window');
    expectCode(() => parseConfig({ ...GEMMA3_1B, head_dim: 255 }), 'bad_config', 'head_dim');
    expectCode(
      () => parseConfig({ ...GEMMA3_1B, num_hidden_layers: 1e7 }),
      'bad_config',
      'num_hidden_layers',
    );
    expectCode(
      () => parseConfig({ ...GEMMA3_1B, quantization_config: { quant_method: 'gptq' } }),
      'unsupported_config',
      'quantization_config',
    );
    expectCode(
      () => parseConfig({ ...GEMMA3_1B, rope_scaling: { rope_type: 'yarn', factor: 4 } }),
      'unsupported_config',
      'rope_scaling.rope_type',
    );
    const { text_config: _tc, ...noText } = GEMMA3_4B;
    expectCode(() => parseConfig(noText), 'bad_config', 'text_config');
    expectCode(
      () => parseConfig({ ...GEMMA3_4B, text_config: { ...GEMMA3_4B.text_config, model_type: 'llama' } }),
      'unsupported_config',
      'text_config.model_type',
    );
  });
});

/** A Gemma-3-like tiny spec: q/k norm, MQA, two local layers (window 3) with their own RoPE, one global. */
const gemma3Spec = (over: Partial<ArchSpec> = {}): ArchSpec =>
  tinySpec({
    modelType: 'gemma3_text',
    numLayers: 3,
    numKvHeads: 1,
    headDim: 6,
    qkNorm: true,
    tieWordEmbeddings: true,
    embedScale: 4,
    normWeightOffset: 1,
    sandwichNorms: true,
    mlpActivation: 'gelu_tanh',
    attnScale: 0.3,
    layerWindows: [3, 3, null],
    ropeTheta: 1e6,
    ropeScaling: { type: 'linear', factor: 8 },
    localRope: { ropeTheta: 100, ropeScaling: { type: 'default' } },
    ...over,
  });

/** A Gemma-2-like tiny spec: alternating windows, attention and final soft-caps small enough to bite. */
const gemma2Spec = (over: Partial<ArchSpec> = {}): ArchSpec =>
  tinySpec({
    modelType: 'gemma2',
    numLayers: 2,
    headDim: 8,
    tieWordEmbeddings: true,
    embedScale: 4,
    normWeightOffset: 1,
    sandwichNorms: true,
    mlpActivation: 'gelu_tanh',
    attnScale: 0.5,
    attnSoftcap: 1.5,
    finalSoftcap: 2,
    layerWindows: [3, null],
    ...over,
  });

describe('reference.ts Gemma semantics', () => {
  it('a local layer sees only the last `window` slots: the receptive field ends there', () => {
    // two local layers of window 3: position t depends on tokens t−4 … t only
    const spec = gemma3Spec({ layerWindows: [3, 3, 3] });
    const w = tinyWeights(spec, 4);
    const ids = tinyTokens(spec, 1, 8, 5);
    const changed = [[(ids[0][0] + 1) % spec.vocabSize, ...ids[0].slice(1)]];
    const a = referenceForward64(spec, w, { inputIds: ids }).logits.data;
    const b = referenceForward64(spec, w, { inputIds: changed }).logits.data;
    const V = spec.vocabSize;
    const row = (x: Float64Array, t: number) => Array.from(x.subarray(t * V, (t + 1) * V));
    for (let t = 0; t < 8; t++) {
      if (t <= 6) expect(row(a, t), `position ${t}`).not.toEqual(row(b, t));
      // 3 layers × (window − 1) = 6: position 7 no longer sees token 0
      else expect(row(a, t), `position ${t}`).toEqual(row(b, t));
    }
    // with a global layer the change reaches every position
    const g = gemma3Spec();
    const ga = referenceForward64(g, w, { inputIds: ids }).logits.data;
    const gb = referenceForward64(g, w, { inputIds: changed }).logits.data;
    expect(row(ga, 7)).not.toEqual(row(gb, 7));
  });

  it('the window counts slots through the cache: prefill then steps equals the full run', () => {
    const spec = gemma3Spec();
    const w = tinyWeights(spec, 6);
    const ids = tinyTokens(spec, 2, 9, 7);
    const full = referenceForward(spec, w, { inputIds: ids }).logits.data;
    let r = referenceForward(spec, w, { inputIds: ids.map((x) => x.slice(0, 2)) });
    const V = spec.vocabSize;
    for (let t = 2; t < 9; t++) {
      r = referenceForward(spec, w, { inputIds: ids.map((x) => [x[t]]) }, { past: r.present });
      for (let b = 0; b < 2; b++) {
        const want = full.subarray((b * 9 + t) * V, (b * 9 + t + 1) * V);
        expect(relError(r.logits.data.subarray(b * V, (b + 1) * V), want)).toBeLessThan(1e-6);
      }
    }
  });

  it('resid site 0 is the embedding row × embedScale; the final soft-cap bounds the logits', () => {
    const spec = gemma2Spec();
    const w = tinyWeights(spec, 8);
    const ids = tinyTokens(spec, 1, 5, 9);
    const r = referenceForward64(spec, w, { inputIds: ids, taps: { resid: [0] } });
    const E = w.get('model.embed_tokens.weight')!;
    const H = spec.hiddenSize;
    const want = ids[0].flatMap((id) => Array.from(E.data.subarray(id * H, (id + 1) * H), (v) => v * 4));
    expect(Array.from(r.resid.get(0)!.data)).toEqual(want);
    const uncapped = referenceForward64({ ...spec, finalSoftcap: undefined }, w, { inputIds: ids });
    let over = 0;
    r.logits.data.forEach((z, i) => {
      const u = uncapped.logits.data[i];
      expect(z).toBeCloseTo(Math.tanh(u / 2) * 2, 12);
      expect(Math.abs(z)).toBeLessThan(2);
      if (Math.abs(u) > 2) over++;
    });
    expect(over).toBeGreaterThan(0); // the cap really bent some logits
  });
});

const TOL = 1e-5;

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`Gemma graph on ${backend} against the reference`, () => {
    for (const [name, spec] of [
      ['gemma3-like', gemma3Spec()],
      ['gemma2-like', gemma2Spec()],
    ] as const) {
      describe(name, () => {
        let weights: WeightMap;
        let lora: LoraAdapter;
        let model: EngineModel;
        beforeAll(async () => {
          weights = tinyWeights(spec, 12);
          lora = tinyLora(spec, 13);
          model = await EngineModel.create(spec, weights, { backend, lora });
        });
        afterAll(async () => {
          await model.dispose();
        });
        const L = spec.numLayers;
        const all = Array.from({ length: L }, (_, i) => i);
        const taps = { resid: [...all, L], kv: all, attn: all };

        it('prefill longer than the window: logits and every tap, per-row LoRA dose', async () => {
          const input: ForwardInput = { inputIds: tinyTokens(spec, 2, 9, 14), taps, loraScale: [1, 0.5] };
          const got = await model.forward(input);
          const want = referenceForward(spec, weights, input, { lora });
          got.present.dispose();
          expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
          for (const kind of ['resid', 'k', 'v', 'attn'] as const) {
            for (const [site, t] of want[kind]) {
              expect(relError(got[kind].get(site)!.data, t.data), `${kind}.${site}`).toBeLessThan(TOL);
            }
          }
          // the local layers' attention really stops at the window: query 8 gives keys ≤ 5 nothing
          const p0 = got.attn.get(0)!.data; // [B, heads, T, S]
          const S = 9;
          const q8 = p0.subarray(8 * S, 9 * S);
          expect(Array.from(q8.subarray(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
        });

        it('left padding: masked slots, shifted positions', async () => {
          const ids = tinyTokens(spec, 2, 8, 15);
          const input: ForwardInput = {
            inputIds: ids,
            attentionMask: [new Array<number>(8).fill(1), [0, 0, 0, 1, 1, 1, 1, 1]],
            positionIds: [
              [0, 1, 2, 3, 4, 5, 6, 7],
              [0, 0, 0, 0, 1, 2, 3, 4],
            ],
            taps: { attn: [0] },
            loraScale: [0, 1],
          };
          const got = await model.forward(input);
          const want = referenceForward(spec, weights, input, { lora });
          got.present.dispose();
          expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
          expect(relError(got.attn.get(0)!.data, want.attn.get(0)!.data)).toBeLessThan(TOL);
        });

        it('residual patch at site 0 (after √hidden) and a K/V patch', async () => {
          const B = 2;
          const T = 6;
          const H = spec.hiddenSize;
          const kvDim = spec.numKvHeads * spec.headDim;
          const mask = Float32Array.from([1, 0, 0.5, 0, 0, 1, 0, 1, 1, 0, 0, 0]);
          const patches = {
            resid: new Map([
              [0, { mask, value: Float32Array.from({ length: B * T * H }, (_, i) => Math.sin(i) * 3) }],
            ]),
            kv: new Map([
              [
                L - 1,
                {
                  mask,
                  k: Float32Array.from({ length: B * T * kvDim }, (_, i) => Math.cos(i)),
                  v: Float32Array.from({ length: B * T * kvDim }, (_, i) => Math.sin(2 * i)),
                },
              ],
            ]),
          };
          const input: ForwardInput = {
            inputIds: tinyTokens(spec, B, T, 16),
            patches,
            taps: { resid: [0, 1], kv: [L - 1] },
          };
          const got = await model.forward(input);
          const want = referenceForward(spec, weights, input, { lora });
          got.present.dispose();
          expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
          for (const kind of ['resid', 'k', 'v'] as const) {
            for (const [site, t] of want[kind]) {
              expect(relError(got[kind].get(site)!.data, t.data), `${kind}.${site}`).toBeLessThan(TOL);
            }
          }
        });

        it('step-by-step decode through the cache, across the window', async () => {
          const all2 = tinyTokens(spec, 2, 10, 17);
          const full = referenceForward(spec, weights, { inputIds: all2 }, { lora });
          const worst = await stepDecodeWorstError(model, all2, 2, full.logits.data, spec.vocabSize);
          console.log(`[${backend}] ${name} decode rel err ${worst.toExponential(2)}`);
          expect(worst).toBeLessThan(TOL);
        });
      });
    }
  });
}

// The shared fixture suites (model.fixtures / model.dtype) hold every architecture to 1e-4; the Gemma
// fixtures are held to 1e-5 here, patches and taps included.
describe.each(FIXTURE_CASES.filter((c) => c.folder.startsWith('tiny-gemma')))(
  '$name on node-cpu: 1e-5 against the reference',
  (c) => {
    let spec: ArchSpec;
    let weights: WeightMap;
    let lora: LoraAdapter | undefined;
    let model: EngineModel;
    beforeAll(async () => {
      ({ spec, weights } = await loadModel(folderSource(fixturePath(c.folder))));
      lora = c.lora ? await loadLora(folderSource(fixturePath(c.lora)), spec) : undefined;
      model = await EngineModel.create(spec, weights, { backend: 'node-cpu', lora });
    });
    afterAll(async () => {
      await model.dispose();
    });

    it('prefill with patches (resid 0, K/V of a local layer), every tap; then decode', async () => {
      const L = spec.numLayers;
      const T = 10;
      const H = spec.hiddenSize;
      const kvDim = spec.numKvHeads * spec.headDim;
      const mask = Float32Array.from({ length: 2 * T }, (_, i) => (i % 3 === 0 ? 1 : i % 5 === 0 ? 0.5 : 0));
      const input: ForwardInput = {
        inputIds: spreadIds(spec, 2, T, 4),
        loraScale: [1, 0.5],
        patches: {
          resid: new Map([
            [0, { mask, value: Float32Array.from({ length: 2 * T * H }, (_, i) => Math.sin(i)) }],
          ]),
          kv: new Map([
            [
              0,
              {
                mask,
                k: Float32Array.from({ length: 2 * T * kvDim }, (_, i) => Math.cos(0.3 * i)),
                v: Float32Array.from({ length: 2 * T * kvDim }, (_, i) => Math.sin(0.7 * i)),
              },
            ],
          ]),
        },
        taps: {
          resid: Array.from({ length: L + 1 }, (_, i) => i),
          kv: Array.from({ length: L }, (_, i) => i),
          attn: Array.from({ length: L }, (_, i) => i),
        },
      };
      const got = await model.forward(input);
      got.present.dispose();
      const want = referenceForward(spec, weights, input, { lora });
      const err = relError(got.logits.data, want.logits.data);
      expect(err).toBeLessThan(TOL);
      for (const kind of ['resid', 'k', 'v', 'attn'] as const) {
        for (const [site, t] of want[kind]) {
          expect(relError(got[kind].get(site)!.data, t.data), `${kind}.${site}`).toBeLessThan(TOL);
        }
      }
      const all = spreadIds(spec, 2, T, 5);
      const full = referenceForward(spec, weights, { inputIds: all }, { lora });
      const decode = await stepDecodeWorstError(model, all, 3, full.logits.data, spec.vocabSize);
      console.log(
        `${c.name}: patched prefill rel err ${err.toExponential(2)}, decode ${decode.toExponential(2)}`,
      );
      expect(decode).toBeLessThan(TOL);
    });
  },
);

describe('multimodal Gemma-3: the text decoder loads from its language-model names', () => {
  const config = JSON.parse(readFileSync(`${fixturePath('tiny-gemma3')}/config.json`, 'utf8')) as Record<
    string,
    unknown
  >;
  const { torch_dtype: dtype, ...textConfig } = config;
  const multimodal = {
    architectures: ['Gemma3ForConditionalGeneration'],
    model_type: 'gemma3',
    text_config: textConfig,
    torch_dtype: dtype,
    vision_config: { model_type: 'siglip_vision_model', hidden_size: 8 },
  };

  async function repacked(rename: (name: string) => string, drop?: string) {
    const plain = await loadModel(folderSource(fixturePath('tiny-gemma3')));
    const entries = new Map<string, WriteEntry>();
    for (const [name, t] of plain.weights) {
      if (name !== drop) entries.set(rename(name), { dtype: 'F32', shape: t.shape, data: t.data });
    }
    entries.set('vision_tower.vision_model.post_layernorm.weight', {
      dtype: 'F32',
      shape: [8],
      data: new Float32Array(8).fill(1),
    });
    const source = memorySource({
      'config.json': JSON.stringify(multimodal),
      'model.safetensors': writeSafetensors(entries),
    });
    return { plain, source };
  }

  it.each([
    ['language_model.model.* (transformers < 4.52)', (n: string) => `language_model.${n}`],
    [
      'model.language_model.* (transformers ≥ 4.52)',
      (n: string) => n.replace(/^model\./, 'model.language_model.'),
    ],
  ])('%s', async (_label, rename) => {
    const { plain, source } = await repacked(rename);
    const mm = await loadModel(source);
    expect(mm.spec.textOfMultimodal).toBe(true);
    expect(mm.spec.embedScale).toBe(plain.spec.embedScale);
    expect([...mm.weights.keys()].sort()).toEqual([...plain.weights.keys()].sort());
    const input = { inputIds: [[509, 510, 40, 41, 511]] };
    expect(referenceForward64(mm.spec, mm.weights, input).logits.data).toEqual(
      referenceForward64(plain.spec, plain.weights, input).logits.data,
    );
  });

  it('a missing tensor is named as the checkpoint would hold it', async () => {
    const { source } = await repacked(
      (n) => `language_model.${n}`,
      'model.layers.1.pre_feedforward_layernorm.weight',
    );
    const e = await loadModel(source).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe('missing_tensor');
    expect((e as EngineError).message).toContain(
      'language_model.model.layers.1.pre_feedforward_layernorm.weight',
    );
  });
});
