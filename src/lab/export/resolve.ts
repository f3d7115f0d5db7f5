// Where an export plan's inputs come from: the models a `Lab` has loaded (the browser worker: the
// same tokenizer, sizes, stop ids and embedding its runs use), or only the small files of each model —
// config.json, generation_config.json, tokenizer.json, tokenizer_config.json — through a FileSource
// (the CLI: the paper's 8B model exports without downloading its weights). Both give the same plan
// (resolve.test.ts). Must never read a weights file, fetch by itself (sources are handed in), or
// touch Node APIs, the DOM or ORT.

import type { FileSource } from '../../engine/files';
import { parseConfigDetailed } from '../../engine/config';
import { isObject } from '../../common/json';
import { loadTokenizer } from '../prompt/tokenizer';
import type { ExperimentSpec, ModelEntry, ModelSource } from '../spec/experiment';
import type { Lab } from '../run/lab';
import { buildExportPlan, type BuildPlanOptions, type ExportPlan, type PlanModelInput } from './plan';

/** The plan from a Lab's models (loads them if they are not loaded yet), embedding included. */
export async function exportPlanFromLab(
  lab: Lab,
  spec: ExperimentSpec,
  options: BuildPlanOptions = {},
): Promise<ExportPlan> {
  const handles = await lab.registry.handles(spec);
  // NOTE: the embedding is read (0.5–1 GB) only for a model a random perturbation runs on
  const perturbed = new Set(
    spec.conditions.filter((c) => c.perturbation?.kind === 'random').map((c) => c.model),
  );
  const models: Record<string, PlanModelInput> = {};
  for (const [id, h] of handles) {
    const a = h.model.arch;
    models[id] = {
      numLayers: a.numLayers,
      hiddenSize: a.hiddenSize,
      numKvHeads: a.numKvHeads,
      headDim: a.headDim,
      vocabSize: a.vocabSize,
      eosTokenIds: a.eosTokenIds,
      tokenizer: h.model.tokenizer,
      loraScale: h.loraScale,
      ...(perturbed.has(id) ? { embedding: await h.model.embedding() } : {}),
    };
  }
  return buildExportPlan(spec, models, options);
}

const sameSource = (a: ModelSource, b: ModelSource) =>
  JSON.stringify(a, Object.keys(a).sort()) === JSON.stringify(b, Object.keys(b).sort());

/** The dose a model id stands for, as ModelRegistry.handles gives it. */
function registryDose(spec: ExperimentSpec, entry: ModelEntry): number {
  if (entry.adapter) return 1;
  const adapted = Object.values(spec.models).some((e) => e.adapter && sameSource(e.source, entry.source));
  return adapted ? 0 : 1;
}

/** What the plan needs of a model that config.json and the tokenizer files alone give. */
type SmallFiles = Omit<PlanModelInput, 'loraScale' | 'embedding'>;

async function readSmallFiles(source: FileSource): Promise<SmallFiles> {
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
    if (!(await source.has(f))) throw new Error(`${source.id}: no ${f} (an export needs it)`);
  const { spec } = parseConfigDetailed(await source.readJson('config.json'), `${source.id}/config.json`);
  const eos = [...spec.eosTokenIds];
  // NOTE: the same rule as engine/weights.ts loadModel: generation_config.json's eos ids join the list.
  if (await source.has('generation_config.json')) {
    const g = await source.readJson('generation_config.json');
    const extra = isObject(g) ? g.eos_token_id : undefined;
    for (const id of Array.isArray(extra) ? extra : [extra])
      if (Number.isSafeInteger(id) && (id as number) >= 0 && !eos.includes(id as number))
        eos.push(id as number);
  }
  const tokenizer = loadTokenizer(
    await source.readJson('tokenizer.json'),
    await source.readJson('tokenizer_config.json'),
  );
  return {
    numLayers: spec.numLayers,
    hiddenSize: spec.hiddenSize,
    numKvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    vocabSize: spec.vocabSize,
    eosTokenIds: eos,
    tokenizer,
  };
}

/**
 * The plan from the models' small files only (config, generation config, tokenizer): no weights are
 * read, so no embedding either — trials carry positions and neighbour ranks, and the script looks the
 * neighbours up in the embedding it loads. An adapter's tokenizer and config are its base's.
 */
export async function exportPlanFromFiles(
  spec: ExperimentSpec,
  resolveSource: (s: ModelSource) => Promise<FileSource> | FileSource,
  options: BuildPlanOptions = {},
): Promise<ExportPlan> {
  const cache = new Map<string, Promise<SmallFiles>>();
  const models: Record<string, PlanModelInput> = {};
  for (const [id, entry] of Object.entries(spec.models)) {
    const key = JSON.stringify(entry.source, Object.keys(entry.source).sort());
    let files = cache.get(key);
    if (!files) {
      files = Promise.resolve(resolveSource(entry.source)).then(readSmallFiles);
      cache.set(key, files);
    }
    models[id] = { ...(await files), loraScale: registryDose(spec, entry) };
  }
  return buildExportPlan(spec, models, options);
}
