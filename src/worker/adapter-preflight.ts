// Before the weights of a spec's models are downloaded: for each model with a LoRA adapter, read the
// adapter's config and tensors (small) and only the base's config.json, map the adapter's declared
// base (a mirror such as `unsloth/…`) to the base being loaded with a message to confirm, and check
// the adapter's shapes fit that base (lora.ts's checks); for each model, plan its memory in the
// spec's dtype against the backend's limits (memory.ts) and suggest q4 when it does not fit.
// Must never read a base model's weights, never touch ORT, the DOM or React, and never hold tokens.

import { errorMessage } from '../common/errors';
import { parseConfigDetailed } from '../engine/config';
import { loadLoraFromStore, openLoraFolder } from '../engine/lora';
import type { TensorStore } from '../engine/safetensors';
import { planMemory, type PlanResult, type WasmTarget, type WebGpuTarget } from '../engine/memory';
import type { FileSource } from '../engine/files';
import type { ArchSpec } from '../engine/types';
import { mapAdapterBase, type BaseMapping, type MirrorGroups } from '../lab/run/catalog';
import type { ExperimentSpec, ModelSource } from '../lab/spec/experiment';

export interface AdapterFit {
  declaredBase: string | null;
  mapping: BaseMapping;
  r: number;
  alpha: number;
  scaling: number;
  /** number of LoRA branches (layer × projection) */
  branches: number;
  /** LoRA parameters */
  parameters: number;
}

/** Where a source points, in words (the repo for Hub sources). */
export function sourceLabel(s: ModelSource): string {
  switch (s.kind) {
    case 'hub':
      return s.revision && s.revision !== 'main' ? `${s.repo}@${s.revision}` : s.repo;
    case 'url':
      return s.url;
    case 'local':
      return s.path;
    case 'demo':
      return `demo:${s.name}`;
  }
}

/** The base's architecture from its config.json alone (no weights read). */
async function baseSpecOf(base: FileSource): Promise<{ spec: ArchSpec; notes: string[] }> {
  return parseConfigDetailed(await base.readJson('config.json'), `${base.id}/config.json`);
}

/**
 * lora.ts's `loadLora` checks without reading the adapter's tensors: the config and the safetensors
 * header only (a few KB of a 70 MB file), so the load that follows is the adapter's one download. The
 * branches it returns have their shapes and empty data.
 */
async function loadLoraShapes(source: FileSource, spec: ArchSpec) {
  const { cfg, file } = await openLoraFolder(source);
  const shapesOnly: TensorStore = {
    tensors: file.tensors,
    metadata: file.metadata,
    read: (name) => {
      const t = file.tensors.get(name);
      return Promise.resolve({ shape: t ? [...t.shape] : [], data: new Float32Array(0) });
    },
    readF16: file.readF16.bind(file),
    readBytes: file.readBytes.bind(file),
  };
  return loadLoraFromStore(cfg, shapesOnly, spec, `${source.id}/adapter_model.safetensors`);
}

/**
 * Checks an adapter against a base before the base's weights are fetched: throws `adapter_mismatch`
 * / `missing_tensor` from lora.ts when it does not fit. `baseRepo`: the Hub repo of the base, if any.
 */
export async function checkAdapterFitsBase(
  adapter: FileSource,
  base: FileSource,
  baseRepo?: string,
  mirrors: MirrorGroups = [],
): Promise<AdapterFit & { spec: ArchSpec }> {
  const { spec } = await baseSpecOf(base);
  const lora = await loadLoraShapes(adapter, spec);
  let mapping: BaseMapping;
  if (baseRepo) mapping = mapAdapterBase(lora.baseModel, baseRepo, mirrors);
  else {
    // NOTE: a base given as a folder or URL was chosen by hand; say what the adapter names, ask nothing.
    mapping = {
      declared: lora.baseModel,
      base: base.id,
      kind: 'different',
      needsConfirmation: false,
      message: `the adapter names ${lora.baseModel ?? 'no base'}; using the base at ${base.id} (shapes fit)`,
    };
  }
  let parameters = 0;
  for (const b of lora.branches.values()) {
    parameters += b.a.shape[0] * b.a.shape[1] + b.b.shape[0] * b.b.shape[1];
  }
  return {
    spec,
    declaredBase: lora.baseModel,
    mapping,
    r: lora.r,
    alpha: lora.alpha,
    scaling: lora.scaling,
    branches: lora.branches.size,
    parameters,
  };
}

export interface ModelPreflight {
  /** the spec's model key */
  id: string;
  base: string;
  adapter: (AdapterFit & { source: string }) | null;
  memory: PlanResult | null;
  /** the base's architecture (from config.json) and the adapter's parameters, for the spec-wide plan */
  arch: ArchSpec | null;
  loraParams: number;
  /** a mapping the user should confirm before the download starts */
  confirm: BaseMapping | null;
  /** problems that stop the load (shapes, memory), in words */
  errors: string[];
  /** the error thrown while reading the model or adapter (a Hub error keeps its reason), if any */
  failure: unknown;
}

export interface PreflightOptions {
  resolveSource: (s: ModelSource) => FileSource | Promise<FileSource>;
  /** where it will run; omitted: no memory check */
  target?: WebGpuTarget | WasmTarget;
  /** tokens a row can reach; default 1024 (the worker's graph size) */
  contextLength?: number;
  mirrors?: MirrorGroups;
}

/** Checks every model of the spec; never throws for a model's own problem (they land in `errors`). */
export async function preflightSpec(spec: ExperimentSpec, opts: PreflightOptions): Promise<ModelPreflight[]> {
  const out: ModelPreflight[] = [];
  const dtype = spec.runtime.dtype;
  for (const [id, entry] of Object.entries(spec.models)) {
    const base = sourceLabel(entry.source);
    const r: ModelPreflight = {
      id,
      base,
      adapter: null,
      memory: null,
      arch: null,
      loraParams: 0,
      confirm: null,
      errors: [],
      failure: null,
    };
    out.push(r);
    try {
      const baseSrc = await opts.resolveSource(entry.source);
      let spec0: ArchSpec;
      let loraParams = 0;
      if (entry.adapter) {
        const adapterSrc = await opts.resolveSource(entry.adapter);
        const fit = await checkAdapterFitsBase(
          adapterSrc,
          baseSrc,
          entry.source.kind === 'hub' ? entry.source.repo : undefined,
          opts.mirrors,
        );
        const { spec: s, ...rest } = fit;
        spec0 = s;
        loraParams = fit.parameters;
        r.adapter = { ...rest, source: sourceLabel(entry.adapter) };
        if (fit.mapping.needsConfirmation) r.confirm = fit.mapping;
      } else {
        spec0 = (await baseSpecOf(baseSrc)).spec;
      }
      r.arch = spec0;
      r.loraParams = loraParams;
      if (opts.target) {
        r.memory = planMemory(
          spec0,
          { dtype, contextLength: opts.contextLength ?? 1024, loraParams },
          opts.target,
          base,
        );
        if (!r.memory.ok && r.memory.message) r.errors.push(r.memory.message);
      }
    } catch (e) {
      r.failure = e;
      r.errors.push(errorMessage(e));
    }
  }
  return out;
}
