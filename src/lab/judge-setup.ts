// Model judges from what the lab can load: one of the spec's models (the base model by default, at its
// LoRA dose) or any other model source (a separate judge model from the catalog). Shared by the CLI and
// the worker. It must never load a model the lab's registry does not cache, and never touch the DOM.
import type { ExperimentSpec, ModelSource } from './experiment';
import { ModelJudge } from './judge';
import { sourceKey } from './models';
import { baseModelId, type Lab } from './runner';

/** A judge on one of the spec's models (default: the base model). */
export async function specModelJudge(lab: Lab, spec: ExperimentSpec, modelId?: string): Promise<ModelJudge> {
  const id = modelId ?? baseModelId(spec);
  const entry = Object.hasOwn(spec.models, id) ? spec.models[id] : undefined;
  if (!entry) throw new Error(`no model "${id}" in the spec (it has ${Object.keys(spec.models).join(', ')})`);
  const h = (await lab.registry.handles(spec)).get(id)!;
  const source = sourceKey(entry.source) + (entry.adapter ? `+${sourceKey(entry.adapter)}` : '');
  return new ModelJudge(
    { engine: h.model.engine, tokenizer: h.model.tokenizer, loraScale: h.loraScale },
    { id: `model:${source}@${h.loraScale}`, label: `${id} model (${source})` },
  );
}

/** A judge on any model source, loaded (and cached) by the lab's registry. */
export async function sourceModelJudge(lab: Lab, source: ModelSource): Promise<ModelJudge> {
  const entry = { source };
  const handles = await lab.registry.handles({
    version: 1,
    name: 'judge',
    models: { base: entry, finetuned: entry },
    runtime: { device: 'auto', dtype: 'fp32' },
    conversation: { system: null, user: '', templateArgs: {} },
    conditions: [{ id: 'judge', label: 'judge', model: 'base' }],
    generation: { maxNewTokens: 1, temperature: 0, seed: 0 },
    metrics: [],
  });
  const h = handles.get('base')!;
  const key = sourceKey(source);
  return new ModelJudge(
    { engine: h.model.engine, tokenizer: h.model.tokenizer, loraScale: h.loraScale },
    { id: `model:${key}@${h.loraScale}`, label: key },
  );
}
