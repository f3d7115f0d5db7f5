// Loads a model's weights into a WeightMap keyed by Hugging Face names, checking every tensor the
// ArchSpec requires is present with the shape it implies; and `loadModel`, which does the whole
// folder (config.json, generation_config.json, single or sharded safetensors).
// Must never accept a checkpoint whose shapes disagree with its config, and never import Node APIs.

import { isObject } from '../common/json';
import { parseConfigDetailed } from './config';
import { EngineError } from './errors';
import type { WeightProvider } from './graph/decoder';
import { decodeF32Into, openSafetensors, openShardedSafetensors, type TensorStore } from './safetensors';
import type { FileSource } from './files';
import type { ArchSpec, Tensor, WeightMap } from './types';

export interface RequiredTensor {
  name: string;
  shape: number[];
}

/** Every tensor the forward pass reads, in a stable order, with the shape the spec implies. */
export function requiredTensors(spec: ArchSpec): RequiredTensor[] {
  const { hiddenSize: h, intermediateSize: ffn, numHeads, numKvHeads, headDim: hd, vocabSize: v } = spec;
  const q = numHeads * hd;
  const kv = numKvHeads * hd;
  const out: RequiredTensor[] = [{ name: 'model.embed_tokens.weight', shape: [v, h] }];
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [h] });
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [q, h] });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kv, h] });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kv, h] });
    if (spec.qkvBias) {
      out.push({ name: `${p}.self_attn.q_proj.bias`, shape: [q] });
      out.push({ name: `${p}.self_attn.k_proj.bias`, shape: [kv] });
      out.push({ name: `${p}.self_attn.v_proj.bias`, shape: [kv] });
    }
    if (spec.qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [hd] });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [hd] });
    }
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [h, q] });
    if (spec.oBias) out.push({ name: `${p}.self_attn.o_proj.bias`, shape: [h] });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [h] });
    if (spec.sandwichNorms) {
      out.push({ name: `${p}.pre_feedforward_layernorm.weight`, shape: [h] });
      out.push({ name: `${p}.post_feedforward_layernorm.weight`, shape: [h] });
    }
    out.push({ name: `${p}.mlp.gate_proj.weight`, shape: [ffn, h] });
    out.push({ name: `${p}.mlp.up_proj.weight`, shape: [ffn, h] });
    out.push({ name: `${p}.mlp.down_proj.weight`, shape: [h, ffn] });
    if (spec.mlpBias) {
      out.push({ name: `${p}.mlp.gate_proj.bias`, shape: [ffn] });
      out.push({ name: `${p}.mlp.up_proj.bias`, shape: [ffn] });
      out.push({ name: `${p}.mlp.down_proj.bias`, shape: [h] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [h] });
  if (!spec.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [v, h] });
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The checkpoint's name for a required tensor: itself, or for the text part of a multimodal Gemma-3 the
 * name under its language model (`language_model.model.X` before transformers 4.52, then
 * `model.language_model.X`; the head `language_model.lm_head.weight` or `lm_head.weight`).
 */
export function storedTensorName(spec: ArchSpec, store: Pick<TensorStore, 'tensors'>, name: string): string {
  if (!spec.textOfMultimodal) return name;
  const candidates = name.startsWith('model.')
    ? [`language_model.${name}`, `model.language_model.${name.slice('model.'.length)}`]
    : [`language_model.${name}`, name];
  return candidates.find((c) => store.tensors.has(c)) ?? candidates[0];
}

/** Throws `missing_tensor` / `shape_mismatch` for the first required tensor the store lacks or misshapes. */
export function checkTensors(spec: ArchSpec, store: Pick<TensorStore, 'tensors'>): RequiredTensor[] {
  const req = requiredTensors(spec);
  for (const r of req) {
    const stored = storedTensorName(spec, store, r.name);
    const t = store.tensors.get(stored);
    if (!t)
      throw new EngineError('missing_tensor', `checkpoint lacks ${stored}`, {
        tensor: stored,
        expected: r.shape,
      });
    if (!sameShape(t.shape, r.shape)) {
      throw new EngineError(
        'shape_mismatch',
        `${stored} has shape [${t.shape.join(',')}], config implies [${r.shape.join(',')}]`,
        { tensor: stored, file: t.file, expected: r.shape, got: [...t.shape] },
      );
    }
  }
  return req;
}

export interface LoadWeightsOptions {
  /** after each tensor read: tensors done of total, its name, its size in bytes as loaded (fp32) */
  onProgress?: (done: number, total: number, name: string, bytes: number) => void;
}

/** Reads the required tensors (fp32) after checking all of them, so a bad file fails before any big read. */
export async function loadWeights(
  spec: ArchSpec,
  store: TensorStore,
  opts: LoadWeightsOptions = {},
): Promise<WeightMap> {
  const req = checkTensors(spec, store);
  const weights: WeightMap = new Map();
  for (let i = 0; i < req.length; i++) {
    const stored = storedTensorName(spec, store, req[i].name);
    const t = await store.read(stored, { expectShape: req[i].shape });
    weights.set(req[i].name, t);
    opts.onProgress?.(i + 1, req.length, req[i].name, t.data.byteLength);
  }
  return weights;
}

/** Reused decode buffers up to this many values; a larger tensor (an embedding) gets its own, dropped after. */
const SCRATCH_VALUES = 16 * 1024 * 1024;

/** A model's tensors read on demand: the graph's weights one at a time, and single tensors to keep. */
export interface StoreWeights extends WeightProvider {
  /** one required tensor as a fresh fp32 Tensor (for what outlives the graph: the embedding, …); not counted in onProgress */
  read(name: string): Promise<Tensor>;
  /** the values of the required tensors, counted as fp32 (what the old full WeightMap held) */
  readonly fp32Bytes: number;
  /** drops the reused scratch memory */
  release(): void;
}

/**
 * The required tensors of `store` (checked first, so a bad file fails before any big read), read only
 * when asked for: `values` decodes into one reused scratch buffer (valid until the next call), `valuesInto`
 * straight into the caller's memory — so building a graph from it never holds a second copy of the model.
 */
export function storeWeights(
  spec: ArchSpec,
  store: TensorStore,
  opts: LoadWeightsOptions = {},
): StoreWeights {
  const req = checkTensors(spec, store);
  const shapes = new Map(req.map((r) => [r.name, r.shape]));
  let scratch: Float32Array | null = null;
  let done = 0;
  const raw = async (name: string) => {
    const stored = storedTensorName(spec, store, name);
    const info = store.tensors.get(stored);
    if (!info || !shapes.has(name))
      throw new EngineError('missing_tensor', `checkpoint lacks ${stored}`, { tensor: stored });
    return { info, bytes: await store.readBytes(stored) };
  };
  const decoded = async (
    name: string,
    out: (n: number) => Float32Array,
    report = true,
  ): Promise<Float32Array> => {
    const { info, bytes } = await raw(name);
    const n = (shapes.get(name) as number[]).reduce((a, d) => a * d, 1);
    const values = decodeF32Into(info, bytes, out(n));
    if (report) opts.onProgress?.(Math.min(++done, req.length), req.length, name, n * 4);
    return values;
  };
  let fp32Bytes = 0;
  for (const r of req) fp32Bytes += r.shape.reduce((a, d) => a * d, 1) * 4;
  return {
    fp32Bytes,
    shape: (name) => shapes.get(name),
    values: (name) =>
      decoded(name, (n) => {
        if (n > SCRATCH_VALUES) return new Float32Array(n);
        if (!scratch || scratch.length < n) scratch = new Float32Array(Math.max(n, scratch?.length ?? 0));
        return scratch.subarray(0, n);
      }),
    valuesInto: async (name, dst) => {
      await decoded(name, () => dst);
    },
    read: async (name) => ({
      shape: [...(shapes.get(name) ?? [])],
      data: await decoded(name, (n) => new Float32Array(n), false),
    }),
    release: () => {
      scratch = null;
    },
  };
}

/** `model.safetensors`, or the shards listed by `model.safetensors.index.json`. */
export async function openModelTensors(source: FileSource): Promise<TensorStore> {
  if (await source.has('model.safetensors')) {
    return openSafetensors(await source.openRandomAccess('model.safetensors'), 'model.safetensors');
  }
  if (await source.has('model.safetensors.index.json')) {
    const index = await source.readJson('model.safetensors.index.json');
    return openShardedSafetensors(index, async (file) => {
      if (!(await source.has(file))) {
        throw new EngineError('missing_file', `${source.id}: shard ${file} listed in the index is missing`, {
          file,
          source: source.id,
        });
      }
      return source.openRandomAccess(file);
    });
  }
  throw new EngineError(
    'missing_file',
    `${source.id}: neither model.safetensors nor model.safetensors.index.json`,
    {
      file: 'model.safetensors',
      source: source.id,
    },
  );
}

export interface LoadedModel {
  spec: ArchSpec;
  weights: WeightMap;
  /** config.json as read */
  config: Record<string, unknown>;
  /** generation_config.json as read, or null when the folder has none */
  generationConfig: Record<string, unknown> | null;
  /** remarks from config parsing (e.g. a sliding window that limits the context) */
  notes: string[];
}

/** A model folder opened without reading its weights: `storeWeights` / `loadWeights` read them. */
export interface OpenedModel extends Omit<LoadedModel, 'weights'> {
  store: TensorStore;
}

/**
 * A whole model folder → spec + fp32 weights. `spec.eosTokenIds` is config.json's list extended by
 * generation_config.json's `eos_token_id`.
 */
export async function loadModel(source: FileSource, opts: LoadWeightsOptions = {}): Promise<LoadedModel> {
  const { store, ...rest } = await openModel(source);
  return { ...rest, weights: await loadWeights(rest.spec, store, opts) };
}

/** config.json, generation_config.json and the safetensors headers of a model folder (no tensor read). */
export async function openModel(source: FileSource): Promise<OpenedModel> {
  if (!(await source.has('config.json'))) {
    throw new EngineError('missing_file', `${source.id}: no config.json`, {
      file: 'config.json',
      source: source.id,
    });
  }
  const config = (await source.readJson('config.json')) as Record<string, unknown>;
  const { spec, notes } = parseConfigDetailed(config, `${source.id}/config.json`);
  let generationConfig: Record<string, unknown> | null = null;
  if (await source.has('generation_config.json')) {
    const g = await source.readJson('generation_config.json');
    if (isObject(g)) generationConfig = g;
  }
  // NOTE: chat models often list more stop tokens in generation_config.json (Llama-3: <|eot_id|>,
  // <|eom_id|>); decoding must stop on any of them, so they join the spec's list.
  const extraEos = generationConfig?.eos_token_id;
  for (const id of Array.isArray(extraEos) ? extraEos : [extraEos]) {
    if (Number.isSafeInteger(id) && (id as number) >= 0 && !spec.eosTokenIds.includes(id as number)) {
      spec.eosTokenIds.push(id as number);
    }
  }
  const store = await openModelTensors(source);
  return { spec, store, config, generationConfig, notes };
}
