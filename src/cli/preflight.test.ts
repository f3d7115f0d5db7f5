// The CLI's memory preflight: every session of the spec planned together from configs and adapter
// headers only — a base + full finetune of the Qwen2.5-0.5B shape is refused on WASM with int8, a LoRA
// pair of it passes — and no weights file is opened.
import { describe, expect, it } from 'vitest';
import { memorySource, type FileSource } from '../engine/files';
import { writeSafetensors } from '../engine/safetensors';
import { defaultSpec, type ExperimentSpec, type ModelSource } from '../lab/spec/experiment';
import { adapterParameters, MemoryPreflightError, preflightMemory } from './preflight';

const QWEN05 = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  tie_word_embeddings: true,
  max_position_embeddings: 32768,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  torch_dtype: 'bfloat16',
};

const opened: string[] = [];
function source(id: string, files: Record<string, Uint8Array | string>): FileSource {
  const inner = memorySource(files, id);
  return {
    ...inner,
    openRandomAccess: (path) => {
      opened.push(`${id}/${path}`);
      return inner.openRandomAccess(path);
    },
  };
}

// NOTE: a header-only stand-in: two [32, 896] tensors (the preflight reads shapes, never values)
const adapterBytes = writeSafetensors(
  new Map([
    [
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
      { dtype: 'F32' as const, shape: [32, 896], data: new Float32Array(32 * 896) },
    ],
    [
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      { dtype: 'F32' as const, shape: [896, 32], data: new Float32Array(32 * 896) },
    ],
  ]),
);
const sources: Record<string, FileSource> = {
  base: source('base', { 'config.json': JSON.stringify(QWEN05) }),
  ft: source('ft', { 'config.json': JSON.stringify(QWEN05) }),
  judge: source('judge', { 'config.json': JSON.stringify(QWEN05) }),
  adapter: source('adapter', { 'adapter_model.safetensors': adapterBytes }),
};
const resolveSource = (s: ModelSource) =>
  Promise.resolve(sources[s.kind === 'local' ? s.path : 'none'] ?? sources.base);
const local = (path: string) => ({ kind: 'local' as const, path });

function spec(models: ExperimentSpec['models'], dtype: 'fp32' | 'int8' | 'q4' = 'fp32'): ExperimentSpec {
  const d = defaultSpec();
  return { ...d, models, runtime: { ...d.runtime, dtype } };
}

describe('preflightMemory', () => {
  it('refuses a base + full finetune in fp32 on WASM with int8, before any weights file is opened', async () => {
    opened.length = 0;
    const pair = spec({
      base: { source: local('base'), role: 'base' },
      finetuned: { source: local('ft'), role: 'finetuned' },
    });
    const e = await preflightMemory(pair, { resolveSource, backend: 'wasm' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MemoryPreflightError);
    expect((e as MemoryPreflightError).plan.suggestion).toBe('int8');
    expect((e as Error).message).toMatch(/sessions \(base .* \+ finetuned .*\).*Choose int8/);
    expect(opened).toEqual([]);
    await expect(
      preflightMemory(spec(pair.models, 'q4'), { resolveSource, backend: 'wasm' }),
    ).resolves.toMatchObject({ ok: true });
    // onnxruntime-node: the machine's memory, here 16 GiB
    await expect(
      preflightMemory(pair, { resolveSource, backend: 'node-cpu', budgetBytes: 16 * 2 ** 30 }),
    ).resolves.toMatchObject({ ok: true });
  });

  it('a LoRA pair is one session (the base rides on the adapter’s), counted from the adapter header', async () => {
    opened.length = 0;
    const pair = spec({
      base: { source: local('base'), role: 'base' },
      finetuned: { source: local('base'), adapter: local('adapter'), role: 'finetuned' },
    });
    const plan = await preflightMemory(pair, { resolveSource, backend: 'wasm' });
    expect(plan.estimates.map((e) => e.label)).toEqual(['base + finetuned']);
    expect(await adapterParameters(sources.adapter)).toBe(2 * 32 * 896);
    expect(opened.every((f) => f === 'adapter/adapter_model.safetensors')).toBe(true);
  });

  it('a model judge from another source is one more session, in fp32 whatever the spec’s dtype', async () => {
    const models: ExperimentSpec['models'] = {
      base: { source: local('base'), role: 'base' },
      finetuned: { source: local('base'), adapter: local('adapter'), role: 'finetuned' },
    };
    // fp32: the LoRA pair (one session) fits WASM alone, not with a 0.5B judge beside it; int8 for the
    // spec's session makes room, and the judge is still counted in fp32
    await expect(preflightMemory(spec(models), { resolveSource, backend: 'wasm' })).resolves.toMatchObject({
      ok: true,
    });
    const e = await preflightMemory(spec(models), {
      resolveSource,
      backend: 'wasm',
      judge: local('judge'),
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MemoryPreflightError);
    expect((e as Error).message).toMatch(/2 sessions \(base \+ finetuned .* \+ judge .*\).*Choose int8/);
    expect((e as MemoryPreflightError).plan.suggestion).toBe('int8');
    const withJudge = await preflightMemory(spec(models, 'int8'), {
      resolveSource,
      backend: 'wasm',
      judge: local('judge'),
    });
    expect(withJudge.estimates.map((x) => x.label)).toEqual(['base + finetuned', 'judge']);
    expect(withJudge.estimates[1].estimate.weightsBytes).toBeGreaterThan(
      3 * withJudge.estimates[0].estimate.weightsBytes,
    );
    // the spec's own plain base as the judge, in fp32: the same session, nothing added
    const plain = spec({
      base: { source: local('base'), role: 'base' },
      finetuned: { source: local('ft'), role: 'finetuned' },
    });
    const same = await preflightMemory(plain, {
      resolveSource,
      backend: 'node-cpu',
      budgetBytes: 16 * 2 ** 30,
      judge: local('base'),
    });
    expect(same.estimates.map((x) => x.label)).toEqual(['base', 'finetuned']);
  });
});
