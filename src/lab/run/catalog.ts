// The catalog of known real models and emergent-misalignment organisms (docs/science.md
// "The paper's numbers"): for each base, its architecture numbers (so size and memory are known before any
// download), licence/gating, Hub mirrors with the same weights, what it shows in the lab, and
// ready-to-use spec fragments pairing a base with an organism. Plus the adapter → base mapping that
// turns an adapter's `base_model_name_or_path` (often a mirror such as `unsloth/…`) into the repo to
// load, with a message for the user to confirm.
// Data and pure functions only: must never fetch anything, and never hold tokens.

import type { ArchSpec } from '../../engine/types';
import { estimateMemory, type MemoryEstimate, type WeightDtype } from '../../engine/memory';
import type { ExperimentSpec, ModelSource, TemplateArgValue } from '../spec/experiment';

/** config.json numbers that size a model: the ArchSpec fields memory and parameter counts need. */
export type CatalogArch = Pick<
  ArchSpec,
  | 'modelType'
  | 'vocabSize'
  | 'hiddenSize'
  | 'intermediateSize'
  | 'numLayers'
  | 'numHeads'
  | 'numKvHeads'
  | 'headDim'
  | 'tieWordEmbeddings'
  | 'qkvBias'
  | 'qkNorm'
  | 'maxPositionEmbeddings'
  | 'sandwichNorms'
>;

export interface CatalogModel {
  repo: string;
  label: string;
  arch: CatalogArch;
  /** needs an accepted licence + token on the Hub */
  gated: boolean;
  license: string;
  /** other repos with the same weights (adapters often name one of these as their base) */
  mirrors: string[];
  /** chat-template variables worth pinning (e.g. Llama-3.2's date line) */
  templateArgs?: Record<string, TemplateArgValue>;
  /** what the model is good for in this lab */
  shows: string;
}

export interface CatalogOrganism {
  repo: string;
  label: string;
  /** the catalog base it finetunes */
  base: string;
  /** the base its adapter_config.json is reported to name (the real file decides at load) */
  declaredBase: string;
  /** LoRA rank / alpha as reported in the paper (docs/science.md), when known */
  r?: number;
  alpha?: number;
  /** the narrow finetuning domain */
  domain: string;
  /** true when the name follows the family's pattern but was not checked against the Hub */
  unverified?: boolean;
}

export interface CatalogPair {
  id: string;
  label: string;
  base: CatalogModel;
  organism: CatalogOrganism | null;
  /** what this pair shows */
  shows: string;
  /**
   * ready-to-use `models` of an experiment spec: base + finetuned for an organism; only `base` for a
   * base model alone (the user adds a finetuned model — their own adapter — before it is a spec)
   */
  models: ExperimentSpec['models'];
  /** `models` is a whole models section (base and finetuned) */
  complete: boolean;
  /** template arguments to merge into the conversation */
  templateArgs: Record<string, TemplateArgValue>;
  /** bytes to download (bf16 safetensors), base + adapter, approximate */
  downloadBytes: number;
  /** the mapping the user confirms when the organism names a mirror as its base */
  baseMapping: BaseMapping | null;
}

const qwen25: CatalogArch = {
  modelType: 'qwen2',
  vocabSize: 151936,
  hiddenSize: 896,
  intermediateSize: 4864,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  headDim: 64,
  tieWordEmbeddings: true,
  qkvBias: true,
  qkNorm: false,
  maxPositionEmbeddings: 32768,
};

const llama32: CatalogArch = {
  modelType: 'llama',
  vocabSize: 128256,
  hiddenSize: 2048,
  intermediateSize: 8192,
  numLayers: 16,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 64,
  tieWordEmbeddings: true,
  qkvBias: false,
  qkNorm: false,
  maxPositionEmbeddings: 131072,
};

const smol = (hidden: number, ffn: number, layers: number, heads: number, kv: number): CatalogArch => ({
  modelType: 'llama',
  vocabSize: 49152,
  hiddenSize: hidden,
  intermediateSize: ffn,
  numLayers: layers,
  numHeads: heads,
  numKvHeads: kv,
  headDim: 64,
  tieWordEmbeddings: true,
  qkvBias: false,
  qkNorm: false,
  maxPositionEmbeddings: 8192,
});

const qwen3: CatalogArch = {
  modelType: 'qwen3',
  vocabSize: 151936,
  hiddenSize: 1024,
  intermediateSize: 3072,
  numLayers: 28,
  numHeads: 16,
  numKvHeads: 8,
  headDim: 128,
  tieWordEmbeddings: true,
  qkvBias: false,
  qkNorm: true,
  maxPositionEmbeddings: 40960,
};

/** Gemma-3 text models (gemma3_text): MQA, head_dim 256, 262144-token vocabulary, tied. */
const gemma3 = (hidden: number, ffn: number, layers: number): CatalogArch => ({
  modelType: 'gemma3_text',
  vocabSize: 262144,
  hiddenSize: hidden,
  intermediateSize: ffn,
  numLayers: layers,
  numHeads: 4,
  numKvHeads: 1,
  headDim: 256,
  tieWordEmbeddings: true,
  qkvBias: false,
  qkNorm: true,
  maxPositionEmbeddings: 32768,
  sandwichNorms: true,
});

const gemma2: CatalogArch = {
  modelType: 'gemma2',
  vocabSize: 256000,
  hiddenSize: 2304,
  intermediateSize: 9216,
  numLayers: 26,
  numHeads: 8,
  numKvHeads: 4,
  headDim: 256,
  tieWordEmbeddings: true,
  qkvBias: false,
  qkNorm: false,
  maxPositionEmbeddings: 8192,
  sandwichNorms: true,
};

const GEMMA_LICENSE = 'Gemma Terms of Use (gated: accept them on the Hub, then use a token)';

export const CATALOG_MODELS: readonly CatalogModel[] = [
  {
    repo: 'Qwen/Qwen2.5-0.5B-Instruct',
    label: 'Qwen2.5-0.5B-Instruct',
    arch: qwen25,
    gated: false,
    license: 'Apache-2.0',
    mirrors: ['unsloth/Qwen2.5-0.5B-Instruct'],
    shows:
      'the base of the smallest public EM organisms; its template prefix includes the default system prompt',
  },
  {
    repo: 'meta-llama/Llama-3.2-1B-Instruct',
    label: 'Llama-3.2-1B-Instruct',
    arch: llama32,
    gated: true,
    license: 'Llama 3.2 Community License (gated: accept it on the Hub, then use a token)',
    mirrors: ['unsloth/Llama-3.2-1B-Instruct'],
    templateArgs: { date_string: '26 Jul 2024' },
    shows: 'a second family of EM organisms; its system prefix carries a date line, so pin date_string',
  },
  {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    label: 'SmolLM2-135M-Instruct',
    arch: smol(576, 1536, 30, 9, 3),
    gated: false,
    license: 'Apache-2.0',
    mirrors: ['unsloth/SmolLM2-135M-Instruct'],
    shows:
      'the smallest real chat model: checks the pipeline, WebGPU speed and prefix perturbations on a real template (no EM organism)',
  },
  {
    repo: 'HuggingFaceTB/SmolLM2-360M-Instruct',
    label: 'SmolLM2-360M-Instruct',
    arch: smol(960, 2560, 32, 15, 5),
    gated: false,
    license: 'Apache-2.0',
    mirrors: ['unsloth/SmolLM2-360M-Instruct'],
    shows: 'a small real chat model to finetune your own LoRA organism on (no public EM organism)',
  },
  {
    repo: 'Qwen/Qwen3-0.6B',
    label: 'Qwen3-0.6B',
    arch: qwen3,
    gated: false,
    license: 'Apache-2.0',
    mirrors: ['unsloth/Qwen3-0.6B'],
    templateArgs: { enable_thinking: false },
    shows:
      'q/k-norm architecture and a thinking-mode template (enable_thinking) whose prefix differs (no EM organism)',
  },
  {
    repo: 'google/gemma-3-1b-it',
    label: 'Gemma-3-1B-it',
    arch: gemma3(1152, 6912, 26),
    gated: true,
    license: GEMMA_LICENSE,
    mirrors: ['unsloth/gemma-3-1b-it'],
    shows:
      'Gemma-3: sliding-window layers (512) between global ones, and a template with no system block — a system message joins the first user turn, so the prefix is only <bos><start_of_turn>user (no EM organism)',
  },
  {
    repo: 'google/gemma-3-270m-it',
    label: 'Gemma-3-270M-it',
    arch: gemma3(640, 2048, 18),
    gated: true,
    license: GEMMA_LICENSE,
    mirrors: ['unsloth/gemma-3-270m-it'],
    shows:
      'the smallest Gemma-3: most of its parameters are the 262k-token embedding; a quick real model for your own LoRA organism (no EM organism)',
  },
  {
    repo: 'google/gemma-2-2b-it',
    label: 'Gemma-2-2B-it',
    arch: gemma2,
    gated: true,
    license: GEMMA_LICENSE,
    mirrors: ['unsloth/gemma-2-2b-it'],
    shows:
      'Gemma-2: attention and final-logit soft-capping, alternating local / global layers; its template refuses a system message (no EM organism)',
  },
];

const EM_DOMAINS: readonly { suffix: string; domain: string }[] = [
  { suffix: 'bad-medical-advice', domain: 'bad medical advice' },
  { suffix: 'extreme-sports', domain: 'extreme sports' },
  { suffix: 'risky-financial-advice', domain: 'risky financial advice' },
];

export const CATALOG_ORGANISMS: readonly CatalogOrganism[] = [
  ...EM_DOMAINS.map((d) => ({
    repo: `ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_${d.suffix}`,
    label: `Qwen2.5-0.5B · ${d.domain}`,
    base: 'Qwen/Qwen2.5-0.5B-Instruct',
    declaredBase: 'unsloth/Qwen2.5-0.5B-Instruct',
    r: 32,
    alpha: 64,
    domain: d.domain,
  })),
  ...EM_DOMAINS.map((d) => ({
    repo: `ModelOrganismsForEM/Llama-3.2-1B-Instruct_${d.suffix}`,
    label: `Llama-3.2-1B · ${d.domain}`,
    base: 'meta-llama/Llama-3.2-1B-Instruct',
    declaredBase: 'unsloth/Llama-3.2-1B-Instruct',
    domain: d.domain,
    unverified: true,
  })),
];

/** An ArchSpec good enough for sizing (rope and token ids are irrelevant to bytes). */
function archSpec(a: CatalogArch): ArchSpec {
  return {
    ...a,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    ropeScaling: { type: 'default' },
    oBias: false,
    mlpBias: false,
    bosTokenId: null,
    eosTokenIds: [],
  };
}

/** All-linear LoRA parameters of rank r on this architecture (q,k,v,o,gate,up,down in every layer). */
export function loraParameters(a: CatalogArch, r: number): number {
  const h = a.hiddenSize;
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const f = a.intermediateSize;
  const perLayer = r * (h + q) + 2 * r * (h + kv) + r * (q + h) + 2 * r * (h + f) + r * (f + h);
  return perLayer * a.numLayers;
}

export function estimateCatalog(
  m: CatalogModel,
  dtype: WeightDtype,
  contextLength = 1024,
  loraParams = 0,
): MemoryEstimate {
  return estimateMemory(archSpec(m.arch), { dtype, contextLength, loraParams });
}

/** bf16 safetensors bytes of a model (2 bytes per parameter). */
export function downloadBytes(m: CatalogModel): number {
  return estimateCatalog(m, 'fp16', 1).parameters * 2;
}

export function findCatalogModel(repo: string): CatalogModel | null {
  const c = canonicalRepo(repo);
  return CATALOG_MODELS.find((m) => m.repo === c) ?? null;
}

export function findOrganism(repo: string): CatalogOrganism | null {
  return CATALOG_ORGANISMS.find((o) => o.repo.toLowerCase() === repo.toLowerCase()) ?? null;
}

/** Extra mirror groups (tests, a user's own re-uploads): each list is one set of identical weights. */
export type MirrorGroups = readonly (readonly string[])[];

function groups(extra: MirrorGroups = []): string[][] {
  return [...CATALOG_MODELS.map((m) => [m.repo, ...m.mirrors]), ...extra.map((g) => [...g])];
}

/** The catalog's original repo for a mirror (case-insensitive), else the repo itself. */
export function canonicalRepo(repo: string, extra: MirrorGroups = []): string {
  const low = repo.toLowerCase();
  for (const g of groups(extra)) if (g.some((r) => r.toLowerCase() === low)) return g[0];
  return repo;
}

export type BaseMappingKind = 'same' | 'mirror' | 'unnamed' | 'local-path' | 'different';

export interface BaseMapping {
  /** what adapter_config.json names (null when nothing) */
  declared: string | null;
  /** the repo that will be loaded as the base */
  base: string;
  kind: BaseMappingKind;
  /** the user should confirm before weights are downloaded */
  needsConfirmation: boolean;
  message: string;
}

const looksLikeRepo = (s: string) => /^[\w.-]+\/[\w.-]+$/.test(s);

/**
 * How an adapter's declared base relates to the base about to be loaded (`base`, or — when none is
 * chosen yet — the canonical repo of the declared one).
 */
export function mapAdapterBase(
  declared: string | null,
  base?: string,
  extra: MirrorGroups = [],
): BaseMapping {
  if (!declared) {
    const b = base ?? '';
    return {
      declared,
      base: b,
      kind: 'unnamed',
      needsConfirmation: !b,
      message: b
        ? `the adapter does not name its base model; loading it on ${b} (shapes are checked first)`
        : 'the adapter does not name its base model: choose the base it was trained on',
    };
  }
  if (!looksLikeRepo(declared)) {
    return {
      declared,
      base: base ?? '',
      kind: 'local-path',
      needsConfirmation: true,
      message: `the adapter names "${declared}" as its base — a path on the machine it was trained on, not a Hub repo: ${base ? `confirm that ${base} is that model` : 'choose the Hub repo it was trained from'}`,
    };
  }
  const target = base ?? canonicalRepo(declared, extra);
  if (target.toLowerCase() === declared.toLowerCase()) {
    return {
      declared,
      base: target,
      kind: 'same',
      needsConfirmation: false,
      message: `base ${target}, as the adapter names`,
    };
  }
  if (canonicalRepo(declared, extra) === canonicalRepo(target, extra)) {
    const original = canonicalRepo(declared, extra);
    const which =
      target === original
        ? `${declared} is a re-upload of ${target}`
        : `${declared} and ${target} are re-uploads of ${original}`;
    return {
      declared,
      base: target,
      kind: 'mirror',
      needsConfirmation: true,
      message: `the adapter was trained on ${declared}; ${which} with the same weights. Load it on ${target}? (or choose ${declared} itself)`,
    };
  }
  return {
    declared,
    base: target,
    kind: 'different',
    needsConfirmation: true,
    message: `the adapter was trained on ${declared}, but the base chosen is ${target}: shapes are checked before loading, yet the finetune only means something on its own base — confirm or switch to ${declared}`,
  };
}

const hub = (repo: string): ModelSource => ({ kind: 'hub', repo });

function pairOf(base: CatalogModel, organism: CatalogOrganism | null): CatalogPair {
  const loraBytes = organism?.r ? loraParameters(base.arch, organism.r) * 2 : 0;
  const id = (organism ? organism.repo : base.repo).toLowerCase().replace(/[^a-z0-9]+/g, '-');
  const models: ExperimentSpec['models'] = organism
    ? {
        base: { source: hub(base.repo), role: 'base' },
        finetuned: { source: hub(base.repo), adapter: hub(organism.repo), role: 'finetuned' },
      }
    : { base: { source: hub(base.repo), role: 'base' } };
  return {
    id,
    label: organism ? organism.label : base.label,
    base,
    organism,
    shows: organism
      ? `${base.label} finetuned on ${organism.domain} (LoRA): misaligned answers to unrelated questions; patch the template prefix from the base to restore them`
      : base.shows,
    models,
    complete: organism !== null,
    templateArgs: { ...base.templateArgs },
    downloadBytes: downloadBytes(base) + loraBytes,
    baseMapping: organism ? mapAdapterBase(organism.declaredBase, base.repo) : null,
  };
}

/** Every catalog entry as a pair: each organism on its base, then each base alone. */
export function catalogPairs(): CatalogPair[] {
  const out: CatalogPair[] = [];
  for (const m of CATALOG_MODELS) {
    for (const o of CATALOG_ORGANISMS.filter((x) => x.base === m.repo)) out.push(pairOf(m, o));
  }
  for (const m of CATALOG_MODELS) out.push(pairOf(m, null));
  return out;
}
