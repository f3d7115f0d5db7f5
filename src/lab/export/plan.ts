// The export plan: everything the lab can resolve about a spec, as plain data, so that a Python script
// (script.ts) can run the same experiment at a scale the browser cannot without re-implementing any lab
// logic — the rendered prompt and its ids, the prefix / query / postfix ranges, every perturbation
// trial (positions and neighbour ranks from the lab's seeded RNG, and the replacement ids when the
// host had the embedding), each patch's component, sites and positions, the LoRA doses, the generation
// settings, the stop ids, the judge prompts and thresholds, and the same for every evaluation question.
// It needs tokenizers and configs only (never the weights): `resolve.ts` gathers them from loaded
// models (browser, `Lab`) or from the model files (CLI). Pure: it must never load a model, fetch,
// read the clock beyond what the chat template does, or hold a key or token.

import type { ChatMessage } from '../prompt/template';
import type { LabTokenizer } from '../prompt/tokenizer';
import { conversationMessages } from '../prompt/template';
import {
  nearestNeighbours,
  randomPerturbations,
  applyEdits,
  segmentsOf,
  type EmbeddingMatrix,
  type SegmentedPrompt,
} from '../interventions/perturb';
import { resolveLayers, resolvePositions } from '../interventions/patch';
import {
  specHash,
  type Condition,
  type ExperimentSpec,
  type GenerationSettings,
  type JudgePrompts,
  type MetricName,
  type ModelSource,
  type PatchComponent,
  type SegmentName,
} from '../spec/experiment';
import type { PromptView } from '../spec/results';
import { baseModelId, finetunedModelId, patchSummary, promptView, renderSpecPrompt } from '../run/lab';
import { DEMO_MODELS } from '../run/demo';
import { planEvaluation, sampleSeed, type QuestionSet } from '../eval/eval-table';
import { THRESHOLDS, type Thresholds } from '../eval/em-data';

export const EXPORT_PLAN_KIND = 'piggyback-lab/export-plan';
export const EXPORT_PLAN_VERSION = 1;

/** Where a script loads weights from: a Hub repo at a revision, a folder, or (refused by the script) a URL. */
export type PlanSource =
  | { kind: 'hub'; repo: string; revision: string }
  /**
   * A folder: relative paths are under the script's --root; `demo` names an embedded model (path
   * relative to the repo); `written` is a local source's path as the spec wrote it, when the exporting
   * host resolved it (the CLI: against the spec file's folder).
   */
  | { kind: 'folder'; path: string; demo?: string; written?: string }
  | { kind: 'url'; url: string };

/** One set of weights the script loads, with the PEFT adapters that go on top of it. */
export interface PlanWeights {
  key: string;
  source: PlanSource;
  /** adapter name (the spec's model id) → where it is */
  adapters: { name: string; source: PlanSource }[];
}

/** A model of the spec as the script runs it: weights, the active adapter and its dose (LoRA scale). */
export interface PlanModel {
  weights: string;
  /** null: no adapter active (a full model; a base that shares weights with an adapter runs at dose 0) */
  adapter: string | null;
  /** the LoRA dose this model id stands for (1 = the finetune, 0 = its base) */
  dose: number;
  numLayers: number;
  hiddenSize: number;
  /** numKvHeads × headDim: the width of k_proj / v_proj outputs */
  kvWidth: number;
  /** rows of the input embedding (config vocab_size) */
  embeddingRows: number;
  /** config.json's eos ids extended by generation_config.json's */
  stopTokenIds: number[];
}

export interface PlanReplacement {
  position: number;
  /** the original token */
  from: number;
  /** which of `from`'s n nearest neighbours (0 = nearest) the lab's RNG picked */
  rank: number;
  /** the replacement id, when the exporting host had the embedding (the script checks its own lookup) */
  to?: number;
  /** its display text, with `to` */
  text?: string;
}

export interface PlanTrial {
  index: number;
  /** deriveSeed(spec seed, index): the stream the positions and ranks came from */
  seed: number;
  replacements: PlanReplacement[];
}

export interface PlanTrials {
  segment: SegmentName;
  /** neighbours considered per token */
  n: number;
  /** neighbours are searched among ids < this (the tokenizer's vocabulary; padded rows never) */
  allowedBelow: number;
  items: PlanTrial[];
  /** appended to the patch summary for the shown trial: `{k}` = 1-based trial, `{n}` = trial count */
  note: string;
}

export interface PlanPatch {
  component: PatchComponent;
  /** the model the values come from, and its dose */
  source: string;
  sourceDose: number;
  /** K/V: layers 0..L−1 (k_proj / v_proj outputs); residual: 0..L (L = after the last layer) */
  sites: number[];
  /** absolute token positions of the condition's prompt */
  positions: number[];
  requested: number;
  matched: boolean;
  /** `patchSummary` as the lab writes it (without the shown trial's note) */
  summary: string;
}

export interface PlanCondition {
  id: string;
  label: string;
  model: string;
  /** the LoRA dose this condition runs at */
  dose: number;
  /** a hand-edited prompt (edits perturbation); otherwise the run's prompt */
  prompt?: PromptView;
  trials?: PlanTrials;
  patch?: PlanPatch;
}

export interface PlanRun {
  /** 'main', or `${set}:${question}` for an evaluation question */
  key: string;
  question?: { set: QuestionSet; id: string; text: string };
  /** sample → its generation seed (evaluation runs; greedy answers are the same for every sample) */
  samples: { sample: number; seed: number }[];
  /** what apply_chat_template gets */
  messages: ChatMessage[];
  templateArgs: Record<string, string | number | boolean>;
  prompt: PromptView;
  conditions: PlanCondition[];
  /** compute the reference margin (the spec's own run only, as `piggyback eval` leaves it out) */
  referenceMargin: boolean;
}

export interface ExportPlan {
  kind: typeof EXPORT_PLAN_KIND;
  version: typeof EXPORT_PLAN_VERSION;
  spec: ExperimentSpec;
  specHash: string;
  baseModel: string;
  finetunedModel: string;
  /** the model whose tokenizer rendered the prompts (the finetuned one; an adapter's is its base's) */
  tokenizerModel: string;
  weights: PlanWeights[];
  models: Record<string, PlanModel>;
  generation: GenerationSettings;
  metrics: MetricName[];
  /** the spec's reference answers, encoded */
  references?: { aligned: { text: string; ids: number[] }[]; misaligned: { text: string; ids: number[] }[] };
  /** runs[0] is the spec's own conversation; the rest are evaluation questions */
  runs: PlanRun[];
  judge: { prompts: JudgePrompts; thresholds: Thresholds; topLogprobs: number; nextTokenK: number };
}

/** What the plan needs of each model of the spec (from loaded models or from config + tokenizer files). */
export interface PlanModelInput {
  numLayers: number;
  hiddenSize: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  eosTokenIds: number[];
  tokenizer: LabTokenizer;
  /** the LoRA dose this model id stands for (as the lab's ModelRegistry gives it) */
  loraScale: number;
  /** the input embedding, when the host has it: trials then carry their replacement ids */
  embedding?: EmbeddingMatrix;
}

export interface BuildPlanOptions {
  /** include the spec's evaluation questions as runs (default: when the spec has an evaluation) */
  evaluation?: boolean;
  /** revision for hub sources without one (default 'main') */
  defaultRevision?: string;
  /** where a local source's folder is on the exporting host (the CLI resolves it against the spec file) */
  resolveLocalPath?: (path: string) => string;
}

const NEXT_TOKEN_K = 8;
const TOP_LOGPROBS = 20;

/** The lab's note for the shown trial (`RunContext.runCondition`), with `{k}` and `{n}` to fill in. */
export const TRIAL_NOTE = ' · trial {k} of {n} (best)';

function planSource(s: ModelSource, opts: BuildPlanOptions): PlanSource {
  const defaultRevision = opts.defaultRevision ?? 'main';
  switch (s.kind) {
    case 'hub':
      return { kind: 'hub', repo: s.repo, revision: s.revision ?? defaultRevision };
    case 'demo':
      return { kind: 'folder', path: DEMO_MODELS[s.name].folder, demo: s.name };
    case 'local': {
      const path = opts.resolveLocalPath?.(s.path) ?? s.path;
      return path === s.path ? { kind: 'folder', path } : { kind: 'folder', path, written: s.path };
    }
    case 'url':
      return { kind: 'url', url: s.url };
  }
}

const sourceKey = (s: ModelSource): string => JSON.stringify(s, Object.keys(s).sort());

/**
 * Which weights each model id runs on, as the lab's ModelRegistry does: an adapter entry is its base's
 * weights with that adapter; a base that some adapter entry builds on is the same weights at dose 0.
 */
function planWeights(
  spec: ExperimentSpec,
  opts: BuildPlanOptions,
): { weights: PlanWeights[]; of: Map<string, { weights: string; adapter: string | null }> } {
  const weights: PlanWeights[] = [];
  const byKey = new Map<string, PlanWeights>();
  const of = new Map<string, { weights: string; adapter: string | null }>();
  const group = (s: ModelSource): PlanWeights => {
    const k = sourceKey(s);
    let g = byKey.get(k);
    if (!g) {
      g = { key: `w${weights.length}`, source: planSource(s, opts), adapters: [] };
      byKey.set(k, g);
      weights.push(g);
    }
    return g;
  };
  const entries = Object.entries(spec.models);
  for (const [id, entry] of entries) {
    const g = group(entry.source);
    if (entry.adapter) {
      g.adapters.push({ name: id, source: planSource(entry.adapter, opts) });
      of.set(id, { weights: g.key, adapter: id });
    } else {
      // NOTE: as ModelRegistry.handles: this base runs as the first adapter entry on it, at dose 0.
      const adapted = entries.find(([, e]) => e.adapter && sourceKey(e.source) === sourceKey(entry.source));
      of.set(id, { weights: g.key, adapter: adapted ? adapted[0] : null });
    }
  }
  return { weights, of };
}

/** k replaced positions and neighbour ranks per trial, from the lab's own code and RNG, without any embedding. */
export function perturbationRanks(
  prompt: SegmentedPrompt,
  pert: { segment: SegmentName; k: number; n: number; trials: number; seed: number },
  embeddingRows: number,
  allowedBelow: number,
): PlanTrial[] {
  // NOTE: the RNG's draws depend on the embedding only through how many candidates a token has (n,
  // or fewer in a tiny vocabulary). A one-dimensional embedding with row v = v + 1 has exactly the
  // same candidate counts and ranks every id by its value, so running the lab's randomPerturbations
  // on it gives the real positions, and each replacement's rank among the real neighbours.
  const data = new Float32Array(embeddingRows);
  for (let v = 0; v < embeddingRows; v++) data[v] = v + 1;
  const rankEmbedding: EmbeddingMatrix = { data, vocab: embeddingRows, hidden: 1 };
  const allowed = (id: number) => id < allowedBelow;
  const trials = randomPerturbations(prompt, pert, rankEmbedding, { allowed });
  const ranked = new Map<number, number[]>();
  const ranksOf = (id: number) => {
    let r = ranked.get(id);
    if (!r) {
      r = nearestNeighbours(data, embeddingRows, 1, id, pert.n, allowed).ids;
      ranked.set(id, r);
    }
    return r;
  };
  return trials.map((t) => ({
    index: t.trial,
    seed: t.seed,
    replacements: t.replacements.map((r) => {
      const rank = ranksOf(r.from).indexOf(r.to);
      if (rank < 0) throw new Error(`internal: replacement ${r.to} of ${r.from} is not a ranked neighbour`);
      return { position: r.position, from: r.from, rank };
    }),
  }));
}

function planTrials(
  cond: Condition & { perturbation: { kind: 'random' } },
  prompt: SegmentedPrompt,
  model: PlanModelInput,
  tokenizer: LabTokenizer,
): PlanTrials {
  const pert = cond.perturbation;
  const allowedBelow = tokenizer.vocabSize;
  const items = perturbationRanks(prompt, pert, model.vocabSize, allowedBelow);
  if (model.embedding) {
    // The host has the embedding: the lab's own trials, so the script can check its neighbour lookup.
    const real = randomPerturbations(prompt, pert, model.embedding, { allowed: (id) => id < allowedBelow });
    real.forEach((t, i) => {
      const planned = items[i].replacements;
      if (
        t.replacements.length !== planned.length ||
        t.replacements.some((r, j) => r.position !== planned[j].position || r.from !== planned[j].from)
      )
        throw new Error(`internal: trial ${i} of "${cond.id}" picks other positions with the real embedding`);
      t.replacements.forEach((r, j) => {
        planned[j].to = r.to;
        planned[j].text = tokenizer.idToText(r.to);
      });
    });
  }
  return { segment: pert.segment, n: pert.n, allowedBelow, items, note: TRIAL_NOTE };
}

function planPatch(
  cond: Condition,
  p: SegmentedPrompt,
  models: Record<string, PlanModelInput>,
): PlanPatch | undefined {
  if (!cond.patch) return undefined;
  const target = models[cond.model];
  const source = models[cond.patch.source];
  if (!target || !source) throw new Error(`condition "${cond.id}": unknown model`);
  // NOTE: the Python runtime patches whole K/V rows; a per-head patch would silently become all heads
  if (cond.patch.heads)
    throw new Error(
      `condition "${cond.id}": per-head K/V patches (patch.heads) are not exported to Python yet; remove the condition to export`,
    );
  const sites = resolveLayers(cond.patch.layers, cond.patch.component, target.numLayers);
  const pos = resolvePositions(cond.patch.positions, p.segments, p.tokens.length);
  let summary = patchSummary(cond.patch, target.numLayers, pos.positions.length);
  if (!pos.matched) summary += ` (asked for ${pos.requested}, the query has only ${pos.positions.length})`;
  return {
    component: cond.patch.component,
    source: cond.patch.source,
    sourceDose: source.loraScale,
    sites,
    positions: pos.positions,
    requested: pos.requested,
    matched: pos.matched,
    summary,
  };
}

function planRun(
  key: string,
  spec: ExperimentSpec,
  models: Record<string, PlanModelInput>,
  tokenizer: LabTokenizer,
  extra: Pick<PlanRun, 'question' | 'samples' | 'referenceMargin'>,
): PlanRun {
  const { prompt, view } = renderSpecPrompt(tokenizer, spec);
  const codec = {
    encode: (t: string) => tokenizer.encode(t),
    decode: (id: number) => tokenizer.idToText(id),
  };
  const conditions = spec.conditions.map((cond): PlanCondition => {
    const model = models[cond.model];
    if (!model) throw new Error(`condition "${cond.id}": no model "${cond.model}"`);
    const out: PlanCondition = {
      id: cond.id,
      label: cond.label,
      model: cond.model,
      dose: cond.loraScale ?? model.loraScale,
    };
    let p: SegmentedPrompt = prompt;
    const pert = cond.perturbation;
    if (pert?.kind === 'edits') {
      const edited = applyEdits(prompt, pert.edits, codec);
      p = { tokens: edited.tokens, segments: segmentsOf(edited.tokens) };
      out.prompt = promptView(p, view.templateArgs);
    } else if (pert?.kind === 'random') {
      out.trials = planTrials({ ...cond, perturbation: pert }, prompt, model, tokenizer);
    }
    // NOTE: a random replacement is one-for-one, so every trial has the run's segments and positions.
    const patch = planPatch(cond, p, models);
    if (patch) out.patch = patch;
    return out;
  });
  return {
    key,
    ...extra,
    messages: conversationMessages({ system: spec.conversation.system, user: spec.conversation.user }),
    templateArgs: view.templateArgs,
    prompt: view,
    conditions,
  };
}

/**
 * Resolves a (parsed) spec into an export plan. `models` has one entry per model id of the spec;
 * `tokenizer` is the finetuned model's (the one `Lab.prepare` renders with).
 */
export function buildExportPlan(
  spec: ExperimentSpec,
  models: Record<string, PlanModelInput>,
  options: BuildPlanOptions = {},
): ExportPlan {
  for (const id of Object.keys(spec.models))
    if (!models[id]) throw new Error(`no tokenizer/config for model "${id}"`);
  const vocab = new Set(Object.values(models).map((m) => m.vocabSize));
  if (vocab.size > 1)
    throw new Error(
      `the models have different vocabularies (${[...vocab].join(' vs ')}): patching needs one tokenizer`,
    );
  const ftId = finetunedModelId(spec);
  const tokenizer = models[ftId].tokenizer;
  const { weights, of } = planWeights(spec, options);
  const planModels: Record<string, PlanModel> = {};
  for (const [id, m] of Object.entries(models)) {
    const w = of.get(id)!;
    planModels[id] = {
      weights: w.weights,
      adapter: w.adapter,
      dose: m.loraScale,
      numLayers: m.numLayers,
      hiddenSize: m.hiddenSize,
      kvWidth: m.numKvHeads * m.headDim,
      embeddingRows: m.vocabSize,
      stopTokenIds: [...m.eosTokenIds],
    };
  }

  const runs: PlanRun[] = [
    planRun('main', spec, models, tokenizer, {
      samples: [{ sample: 0, seed: spec.generation.seed }],
      referenceMargin: spec.metrics.includes('reference_margin') && !!spec.references,
    }),
  ];
  const evalPlan = planEvaluation(spec);
  if (options.evaluation ?? !!spec.evaluation) {
    const items: [QuestionSet, { id: string; text: string }][] = [
      ...evalPlan.questions.map((q): [QuestionSet, typeof q] => ['general', q]),
      ...evalPlan.inDomain.map((q): [QuestionSet, typeof q] => ['in-domain', q]),
    ];
    for (const [set, q] of items) {
      // NOTE: as evaluate(): greedy answers do not depend on the seed, so only sample 0 is run and
      // the script copies it to the other samples with their seeds.
      const samples = Array.from({ length: evalPlan.samples }, (_, s) => ({
        sample: s,
        seed: sampleSeed(spec.generation.seed, set, q.id, s),
      }));
      const itemSpec: ExperimentSpec = { ...spec, conversation: { ...spec.conversation, user: q.text } };
      runs.push(
        planRun(`${set}:${q.id}`, itemSpec, models, tokenizer, {
          question: { set, id: q.id, text: q.text },
          samples,
          referenceMargin: false,
        }),
      );
    }
  }

  const refs = spec.references;
  return {
    kind: EXPORT_PLAN_KIND,
    version: EXPORT_PLAN_VERSION,
    spec,
    specHash: specHash(spec),
    baseModel: baseModelId(spec),
    finetunedModel: ftId,
    tokenizerModel: ftId,
    weights,
    models: planModels,
    generation: spec.generation,
    metrics: spec.metrics,
    ...(refs
      ? {
          references: {
            aligned: refs.aligned.map((text) => ({ text, ids: tokenizer.encode(text) })),
            misaligned: refs.misaligned.map((text) => ({ text, ids: tokenizer.encode(text) })),
          },
        }
      : {}),
    runs,
    judge: {
      prompts: evalPlan.prompts,
      thresholds: { ...THRESHOLDS },
      topLogprobs: TOP_LOGPROBS,
      nextTokenK: NEXT_TOKEN_K,
    },
  };
}
