import { describe, expect, it } from 'vitest';
import { EngineError, type EngineErrorCode } from './errors';
import { writeSafetensors, type WriteEntry } from './safetensors';
import { memorySource } from './files';
import { folderSource } from '../hub/folder-files-node';
import { tinySpec, tinyWeights } from './tiny-model';
import type { ArchSpec, Tensor, WeightMap } from './types';
import { loadModel, requiredTensors } from './weights';

/** The config.json a spec came from (enough for parseConfig to give the spec back). */
function configFor(spec: ArchSpec): Record<string, unknown> {
  return {
    model_type: spec.modelType,
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    head_dim: spec.headDim,
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    max_position_embeddings: spec.maxPositionEmbeddings,
    tie_word_embeddings: spec.tieWordEmbeddings,
    attention_bias: spec.qkvBias,
    bos_token_id: spec.bosTokenId,
    eos_token_id: spec.eosTokenIds,
  };
}

function entries(weights: WeightMap, dtype: 'F32' | 'BF16' = 'F32'): Map<string, WriteEntry> {
  return new Map([...weights].map(([k, t]) => [k, { dtype, shape: t.shape, data: t.data }]));
}

async function expectCode(p: Promise<unknown>, code: EngineErrorCode): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error(`expected EngineError ${code}`);
}

const spec = tinySpec();
const weights = tinyWeights(spec, 5);
const config = JSON.stringify(configFor(spec));

describe('requiredTensors', () => {
  it('lists what each architecture reads', () => {
    const base = requiredTensors(spec);
    expect(base).toHaveLength(1 + spec.numLayers * 9 + 2);
    expect(base[0]).toEqual({ name: 'model.embed_tokens.weight', shape: [37, 16] });
    expect(base.find((t) => t.name === 'model.layers.1.self_attn.k_proj.weight')?.shape).toEqual([8, 16]);
    expect(base.find((t) => t.name === 'model.layers.0.self_attn.o_proj.weight')?.shape).toEqual([16, 16]);
    expect(base.find((t) => t.name === 'model.layers.0.mlp.down_proj.weight')?.shape).toEqual([16, 24]);
    expect(base.at(-1)).toEqual({ name: 'lm_head.weight', shape: [37, 16] });
    const tied = requiredTensors(tinySpec({ tieWordEmbeddings: true }));
    expect(tied.some((t) => t.name === 'lm_head.weight')).toBe(false);
    const q2 = requiredTensors(tinySpec({ modelType: 'qwen2', qkvBias: true })).map((t) => t.name);
    expect(q2).toContain('model.layers.0.self_attn.v_proj.bias');
    expect(q2).not.toContain('model.layers.0.self_attn.o_proj.bias');
    const q3 = requiredTensors(tinySpec({ modelType: 'qwen3', qkNorm: true, headDim: 6 }));
    expect(q3.find((t) => t.name === 'model.layers.0.self_attn.k_norm.weight')?.shape).toEqual([6]);
    expect(q3.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([24, 16]);
    const mlpB = requiredTensors(tinySpec({ mlpBias: true, oBias: true })).map((t) => t.name);
    expect(mlpB).toContain('model.layers.1.mlp.down_proj.bias');
    expect(mlpB).toContain('model.layers.1.self_attn.o_proj.bias');
  });
});

describe('loadModel from memory', () => {
  it('loads a single-file model with its configs', async () => {
    const src = memorySource({
      'config.json': config,
      'generation_config.json': JSON.stringify({ eos_token_id: [2, 9], temperature: 0.6 }),
      'model.safetensors': writeSafetensors(entries(weights)),
    });
    const m = await loadModel(src);
    expect(m.spec).toEqual({ ...spec, eosTokenIds: [2, 9] });
    expect(m.generationConfig).toMatchObject({ temperature: 0.6 });
    expect(m.config.model_type).toBe('llama');
    expect([...m.weights.keys()].sort()).toEqual([...weights.keys()].sort());
    for (const [k, t] of weights) expect(m.weights.get(k)?.data).toEqual(t.data);
  });

  it('loads shards through the index', async () => {
    const names = [...weights.keys()];
    const half = Math.floor(names.length / 2);
    const part = (ns: string[]): Uint8Array =>
      writeSafetensors(entries(new Map(ns.map((n) => [n, weights.get(n) as Tensor]))));
    const weightMap: Record<string, string> = {};
    names.forEach((n, i) => (weightMap[n] = i < half ? 'a.safetensors' : 'b.safetensors'));
    const src = memorySource({
      'config.json': config,
      'model.safetensors.index.json': JSON.stringify({ metadata: {}, weight_map: weightMap }),
      'a.safetensors': part(names.slice(0, half)),
      'b.safetensors': part(names.slice(half)),
    });
    const m = await loadModel(src);
    for (const [k, t] of weights) expect(m.weights.get(k)?.data).toEqual(t.data);
    const { ['b.safetensors']: _drop, ...rest } = {
      'config.json': config,
      'model.safetensors.index.json': JSON.stringify({ weight_map: weightMap }),
      'a.safetensors': part(names.slice(0, half)),
      'b.safetensors': new Uint8Array(0),
    };
    const e = await expectCode(loadModel(memorySource(rest)), 'missing_file');
    expect(e.details.file).toBe('b.safetensors');
  });

  it('tied embeddings need no lm_head, and an extra one is ignored', async () => {
    const tied = tinySpec({ tieWordEmbeddings: true });
    const w = tinyWeights(tied, 6);
    const withHead = new Map(w);
    withHead.set('lm_head.weight', w.get('model.embed_tokens.weight') as Tensor);
    for (const ws of [w, withHead]) {
      const m = await loadModel(
        memorySource({
          'config.json': JSON.stringify(configFor(tied)),
          'model.safetensors': writeSafetensors(entries(ws)),
        }),
      );
      expect(m.weights.has('lm_head.weight')).toBe(false);
      expect(m.spec.tieWordEmbeddings).toBe(true);
    }
  });

  it('missing tensor names it', async () => {
    const w = new Map(weights);
    w.delete('model.layers.1.post_attention_layernorm.weight');
    const e = await expectCode(
      loadModel(memorySource({ 'config.json': config, 'model.safetensors': writeSafetensors(entries(w)) })),
      'missing_tensor',
    );
    expect(e.details.tensor).toBe('model.layers.1.post_attention_layernorm.weight');
    const noHead = new Map(weights);
    noHead.delete('lm_head.weight');
    const e2 = await expectCode(
      loadModel(
        memorySource({ 'config.json': config, 'model.safetensors': writeSafetensors(entries(noHead)) }),
      ),
      'missing_tensor',
    );
    expect(e2.details.tensor).toBe('lm_head.weight');
  });

  it('shape disagreeing with the config names tensor, expected and got', async () => {
    const wrong = JSON.stringify({ ...configFor(spec), intermediate_size: 20 });
    const e = await expectCode(
      loadModel(
        memorySource({ 'config.json': wrong, 'model.safetensors': writeSafetensors(entries(weights)) }),
      ),
      'shape_mismatch',
    );
    expect(e.details).toMatchObject({
      tensor: 'model.layers.0.mlp.gate_proj.weight',
      expected: [20, 16],
      got: [24, 16],
    });
  });

  it('missing files', async () => {
    await expectCode(loadModel(memorySource({})), 'missing_file');
    const e = await expectCode(loadModel(memorySource({ 'config.json': config })), 'missing_file');
    expect(e.details.file).toBe('model.safetensors');
    await expectCode(loadModel(memorySource({ 'config.json': '{"model_type": ' })), 'bad_json');
    await expectCode(
      loadModel(memorySource({ 'config.json': JSON.stringify({ ...configFor(spec), model_type: 'gpt2' }) })),
      'unsupported_architecture',
    );
  });
});

const FIXTURES = new URL('../../fixtures/', import.meta.url).pathname;

describe('fixture folders', () => {
  it('tiny-llama, its finetune and its sharded copy', async () => {
    const base = await loadModel(folderSource(`${FIXTURES}tiny-llama`));
    expect(base.spec).toMatchObject({ modelType: 'llama', hiddenSize: 64, numKvHeads: 2, headDim: 16 });
    expect(base.spec.ropeScaling.type).toBe('llama3');
    expect(base.spec.eosTokenIds).toEqual(expect.arrayContaining([506, 509, 510]));
    const sharded = await loadModel(folderSource(`${FIXTURES}tiny-llama-sharded`));
    expect(sharded.spec).toEqual(base.spec);
    for (const [k, t] of base.weights) expect(sharded.weights.get(k)?.data).toEqual(t.data);
    const ft = await loadModel(folderSource(`${FIXTURES}tiny-llama-ft`));
    expect(ft.spec).toEqual(base.spec);
    const q = 'model.layers.0.self_attn.q_proj.weight';
    expect(ft.weights.get(q)?.data).not.toEqual(base.weights.get(q)?.data);
  });

  it('tiny-qwen2 (bf16, tied) and tiny-qwen3 (f16, q/k norm)', async () => {
    const q2 = await loadModel(folderSource(`${FIXTURES}tiny-qwen2`));
    expect(q2.spec).toMatchObject({ modelType: 'qwen2', qkvBias: true, tieWordEmbeddings: true });
    expect(q2.weights.has('lm_head.weight')).toBe(false);
    expect(q2.weights.get('model.layers.1.self_attn.q_proj.bias')?.shape).toEqual([64]);
    const q3 = await loadModel(folderSource(`${FIXTURES}tiny-qwen3`));
    expect(q3.spec).toMatchObject({ modelType: 'qwen3', qkNorm: true, headDim: 32 });
    expect(q3.weights.get('model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([128, 64]);
  });
});
