// PEFT LoRA adapters: `adapter_config.json` + `adapter_model.safetensors` → LoraAdapter branches,
// checked against the base ArchSpec; and `mergeLora` (W + scale·scaling·B·A) for tests.
// Must never merge on load (base and finetuned share one weight copy), never accept an adapter
// feature the forward pass would silently ignore (DoRA, modules_to_save, rank_pattern, lora bias),
// never run target_modules / exclude_modules through a backtracking regex engine (peft-regex.ts), and
// never import Node APIs.

import { isObject } from '../common/json';
import { EngineError } from './errors';
import { compilePattern, PatternError, type CompiledPattern } from './peft-regex';
import { openSafetensors, type TensorStore } from './safetensors';
import type { FileSource } from './files';
import type { ArchSpec, LoraAdapter, LoraBranch, LoraTarget, Tensor, WeightMap } from './types';

export const LORA_TARGETS: readonly LoraTarget[] = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
];

const SUBMODULE: Record<LoraTarget, 'self_attn' | 'mlp'> = {
  q_proj: 'self_attn',
  k_proj: 'self_attn',
  v_proj: 'self_attn',
  o_proj: 'self_attn',
  gate_proj: 'mlp',
  up_proj: 'mlp',
  down_proj: 'mlp',
};

export function loraKey(layer: number, target: LoraTarget): string {
  return `${layer}.${target}`;
}

/** The HF weight a target adds to, e.g. `model.layers.3.self_attn.q_proj.weight`. */
export function targetWeightName(layer: number, target: LoraTarget): string {
  return `model.layers.${layer}.${SUBMODULE[target]}.${target}.weight`;
}

/** [in, out] features of a projection under the spec. */
export function projectionDims(
  spec: ArchSpec,
  target: LoraTarget,
): { inFeatures: number; outFeatures: number } {
  const h = spec.hiddenSize;
  const q = spec.numHeads * spec.headDim;
  const kv = spec.numKvHeads * spec.headDim;
  const ffn = spec.intermediateSize;
  switch (target) {
    case 'q_proj':
      return { inFeatures: h, outFeatures: q };
    case 'k_proj':
    case 'v_proj':
      return { inFeatures: h, outFeatures: kv };
    case 'o_proj':
      return { inFeatures: q, outFeatures: h };
    case 'gate_proj':
    case 'up_proj':
      return { inFeatures: h, outFeatures: ffn };
    case 'down_proj':
      return { inFeatures: ffn, outFeatures: h };
  }
}

/** adapter_config.json, reduced to what the engine uses. */
export interface LoraConfig {
  r: number;
  alpha: number;
  useRslora: boolean;
  /** decides whether the module `model.layers.{l}.{self_attn|mlp}.{target}` carries a branch */
  isTargeted: (layer: number, target: LoraTarget) => boolean;
  baseModel: string | null;
}

function unsupported(file: string, field: string, value: unknown, why: string): EngineError {
  return new EngineError('unsupported_config', `${file}: ${field} = ${JSON.stringify(value)}: ${why}`, {
    file,
    field,
    value,
  });
}

function badConfig(file: string, field: string, value: unknown, why: string): EngineError {
  return new EngineError('bad_config', `${file}: ${field} ${why} (got ${JSON.stringify(value)})`, {
    file,
    field,
    value,
  });
}

function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    (Array.isArray(v) && v.length === 0) ||
    (isObject(v) && Object.keys(v).length === 0)
  );
}

/** PEFT's module matcher: a list matches by name or `.`-suffix; a string is a full-match regex. */
function moduleMatcher(spec: unknown, field: string, file: string): ((name: string) => boolean) | null {
  if (spec === undefined || spec === null) return null;
  if (typeof spec === 'string') {
    // NOTE: never a JS RegExp: a backtracking engine takes exponential time on patterns such as
    // `(a+)+$`, once per layer × projection; compilePattern matches in linear time (peft-regex.ts).
    let re: CompiledPattern;
    try {
      re = compilePattern(spec);
    } catch (e) {
      if (!(e instanceof PatternError)) throw e;
      throw e.kind === 'syntax'
        ? badConfig(file, field, spec, `is not a valid regular expression (${e.reason})`)
        : unsupported(
            file,
            field,
            spec,
            `${e.reason} (patterns are matched in linear time, without backtracking)`,
          );
    }
    return (name) => re.fullmatch(name);
  }
  if (Array.isArray(spec) && spec.every((s) => typeof s === 'string')) {
    const list = spec as string[];
    return (name) => list.some((s) => name === s || name.endsWith(`.${s}`));
  }
  throw badConfig(file, field, spec, 'must be a list of module names or a regex string');
}

export function parseLoraConfig(json: unknown, file = 'adapter_config.json'): LoraConfig {
  if (!isObject(json)) throw new EngineError('bad_json', `${file}: not a JSON object`, { file });
  const c = json;
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') {
    throw unsupported(file, 'peft_type', c.peft_type, 'only LoRA adapters are supported');
  }
  const r = c.r;
  if (!Number.isSafeInteger(r) || (r as number) <= 0)
    throw badConfig(file, 'r', r, 'must be a positive integer');
  const alpha = c.lora_alpha ?? 8; // PEFT's default
  if (typeof alpha !== 'number' || !Number.isFinite(alpha))
    throw badConfig(file, 'lora_alpha', alpha, 'must be a number');
  const useRslora = c.use_rslora ?? false;
  if (typeof useRslora !== 'boolean') throw badConfig(file, 'use_rslora', useRslora, 'must be a boolean');
  if (c.use_dora === true) throw unsupported(file, 'use_dora', true, 'DoRA magnitude vectors are not built');
  if (c.fan_in_fan_out === true) throw unsupported(file, 'fan_in_fan_out', true, 'only nn.Linear layouts');
  if (c.bias !== undefined && c.bias !== 'none')
    throw unsupported(file, 'bias', c.bias, 'LoRA-trained biases are not built');
  for (const f of ['modules_to_save', 'rank_pattern', 'alpha_pattern', 'layer_replication'] as const) {
    if (!isEmpty(c[f])) throw unsupported(file, f, c[f], 'the engine keeps one rank and scaling per adapter');
  }

  let targetMatch: (name: string) => boolean;
  const tm = c.target_modules;
  if (tm === 'all-linear') {
    targetMatch = () => true;
  } else {
    const m = moduleMatcher(tm, 'target_modules', file);
    if (!m) throw badConfig(file, 'target_modules', tm, 'is required');
    targetMatch = m;
    if (Array.isArray(tm)) {
      for (const t of tm as string[]) {
        const last = t.split('.').pop() as string;
        if (!(LORA_TARGETS as readonly string[]).includes(last)) {
          throw unsupported(file, 'target_modules', t, `only ${LORA_TARGETS.join(', ')} carry branches`);
        }
      }
    }
  }
  const exclude = moduleMatcher(c.exclude_modules, 'exclude_modules', file);

  let layers: Set<number> | null = null;
  const ltt = c.layers_to_transform;
  if (ltt !== undefined && ltt !== null) {
    const list = Array.isArray(ltt) ? ltt : [ltt];
    if (!list.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
      throw badConfig(file, 'layers_to_transform', ltt, 'must be a layer index or a list of them');
    }
    layers = new Set(list as number[]);
  }
  const base = c.base_model_name_or_path;
  return {
    r: r as number,
    alpha,
    useRslora,
    baseModel: typeof base === 'string' ? base : null,
    isTargeted(layer, target) {
      const name = `model.layers.${layer}.${SUBMODULE[target]}.${target}`;
      if (layers && !layers.has(layer)) return false;
      if (exclude?.(name)) return false;
      return targetMatch(name);
    },
  };
}

export function loraScaling(r: number, alpha: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

const TENSOR_NAME =
  /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/;

/** Builds the adapter from a parsed config and its tensors, checking both against the base spec. */
export async function loadLoraFromStore(
  cfg: LoraConfig,
  store: TensorStore,
  spec: ArchSpec,
  file = 'adapter_model.safetensors',
): Promise<LoraAdapter> {
  const found = new Map<string, { layer: number; target: LoraTarget; a?: string; b?: string }>();
  for (const name of store.tensors.keys()) {
    const m = TENSOR_NAME.exec(name);
    const target = m?.[3] as LoraTarget | undefined;
    if (
      !m ||
      !target ||
      !(LORA_TARGETS as readonly string[]).includes(target) ||
      SUBMODULE[target] !== m[2]
    ) {
      throw new EngineError(
        'adapter_mismatch',
        `${file}: ${name} is not a LoRA A/B weight of a supported projection`,
        {
          file,
          tensor: name,
        },
      );
    }
    const layer = Number(m[1]);
    if (layer >= spec.numLayers) {
      throw new EngineError(
        'adapter_mismatch',
        `${file}: ${name} targets layer ${layer}; the base has ${spec.numLayers}`,
        {
          file,
          tensor: name,
          layer,
          numLayers: spec.numLayers,
        },
      );
    }
    if (!cfg.isTargeted(layer, target)) {
      throw new EngineError('adapter_mismatch', `${file}: ${name} is not among the config's target modules`, {
        file,
        tensor: name,
      });
    }
    const key = loraKey(layer, target);
    const entry = found.get(key) ?? { layer, target };
    if (m[4] === 'A') entry.a = name;
    else entry.b = name;
    found.set(key, entry);
  }

  for (let l = 0; l < spec.numLayers; l++) {
    for (const t of LORA_TARGETS) {
      const e = found.get(loraKey(l, t));
      if (!cfg.isTargeted(l, t)) continue;
      for (const part of ['A', 'B'] as const) {
        if (!(part === 'A' ? e?.a : e?.b)) {
          const tensor = `base_model.model.model.layers.${l}.${SUBMODULE[t]}.${t}.lora_${part}.weight`;
          throw new EngineError('missing_tensor', `${file}: lacks ${tensor}`, { file, tensor });
        }
      }
    }
  }

  const branches = new Map<string, LoraBranch>();
  for (const [key, e] of found) {
    const { inFeatures, outFeatures } = projectionDims(spec, e.target);
    const aName = e.a as string;
    const bName = e.b as string;
    const aInfo = store.tensors.get(aName);
    const bInfo = store.tensors.get(bName);
    const fits = (got: readonly number[] | undefined, want: readonly number[]): boolean =>
      !!got && got.length === 2 && got[0] === want[0] && got[1] === want[1];
    for (const [name, got, want] of [
      [aName, aInfo?.shape, [cfg.r, inFeatures]],
      [bName, bInfo?.shape, [outFeatures, cfg.r]],
    ] as const) {
      if (!fits(got, want)) {
        throw new EngineError(
          'adapter_mismatch',
          `${file}: ${name} has shape [${got?.join(',')}], the base model needs [${want.join(',')}]`,
          { file, tensor: name, expected: [...want], got: got ? [...got] : null },
        );
      }
    }
    branches.set(key, { a: await store.read(aName), b: await store.read(bName) });
  }

  return {
    r: cfg.r,
    alpha: cfg.alpha,
    useRslora: cfg.useRslora,
    scaling: loraScaling(cfg.r, cfg.alpha, cfg.useRslora),
    baseModel: cfg.baseModel,
    branches,
  };
}

/**
 * An adapter folder's parsed config and its safetensors file opened by range (header read, no tensor
 * data); refuses a folder without `adapter_config.json` or `adapter_model.safetensors`.
 */
export async function openLoraFolder(source: FileSource) {
  for (const f of ['adapter_config.json', 'adapter_model.safetensors']) {
    if (!(await source.has(f))) {
      const hint =
        f.endsWith('.safetensors') && (await source.has('adapter_model.bin'))
          ? ' (only the pickle .bin is present)'
          : '';
      throw new EngineError('missing_file', `${source.id}: no ${f}${hint}`, { file: f, source: source.id });
    }
  }
  const cfg = parseLoraConfig(
    await source.readJson('adapter_config.json'),
    `${source.id}/adapter_config.json`,
  );
  const file = await openSafetensors(
    await source.openRandomAccess('adapter_model.safetensors'),
    'adapter_model.safetensors',
  );
  return { cfg, file };
}

/** An adapter folder (`adapter_config.json` + `adapter_model.safetensors`) for the given base spec. */
export async function loadLora(source: FileSource, spec: ArchSpec): Promise<LoraAdapter> {
  const { cfg, file } = await openLoraFolder(source);
  return loadLoraFromStore(cfg, file, spec, `${source.id}/adapter_model.safetensors`);
}

/** W + scale·scaling·B·A for every branch (fp64 accumulation, one fp32 rounding). Other weights shared. */
export function mergeLora(weights: WeightMap, adapter: LoraAdapter, scale = 1): WeightMap {
  const out: WeightMap = new Map(weights);
  for (const [key, br] of adapter.branches) {
    const [layerStr, target] = key.split('.') as [string, LoraTarget];
    const name = targetWeightName(Number(layerStr), target);
    const w = weights.get(name);
    if (!w)
      throw new EngineError('missing_tensor', `no base weight ${name} for branch ${key}`, { tensor: name });
    const [outF, inF] = w.shape;
    const r = br.a.shape[0];
    if (br.a.shape[1] !== inF || br.b.shape[0] !== outF || br.b.shape[1] !== r) {
      throw new EngineError('adapter_mismatch', `branch ${key} does not fit ${name}`, {
        tensor: name,
        expected: [outF, inF],
        got: [br.b.shape[0], br.a.shape[1]],
      });
    }
    const k = scale * adapter.scaling;
    const data = new Float32Array(outF * inF);
    const row = new Float64Array(inF);
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) row[i] = w.data[o * inF + i];
      for (let j = 0; j < r; j++) {
        const bj = k * br.b.data[o * r + j];
        if (bj === 0) continue;
        for (let i = 0; i < inF; i++) row[i] += bj * br.a.data[j * inF + i];
      }
      data.set(row, o * inF);
    }
    const merged: Tensor = { shape: [outF, inF], data };
    out.set(name, merged);
  }
  return out;
}
