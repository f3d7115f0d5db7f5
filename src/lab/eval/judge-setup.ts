// Model judges from what the lab can load: one of the spec's models (the base model by default, at its
// LoRA dose) or any other model source (a separate judge model from the catalog). Shared by the CLI and
// the worker. It must never load a model the lab's registry does not cache, and never touch the DOM.
import type { ExperimentSpec, ModelSource } from '../spec/experiment';
import { ModelJudge } from './judge';
import { JUDGE_DTYPE, sourceKey } from '../run/models';
import { baseModelId, type Lab } from '../run/lab';

function specEntry(spec: ExperimentSpec, modelId?: string) {
  const id = modelId ?? baseModelId(spec);
  const entry = Object.hasOwn(spec.models, id) ? spec.models[id] : undefined;
  if (!entry) throw new Error(`no model "${id}" in the spec (it has ${Object.keys(spec.models).join(', ')})`);
  const source = sourceKey(entry.source) + (entry.adapter ? `+${sourceKey(entry.adapter)}` : '');
  // NOTE: as the registry does: a base that another entry adapts runs at LoRA dose 0 of that session.
  const adapted =
    !entry.adapter &&
    Object.values(spec.models).some((e) => e.adapter && sourceKey(e.source) === sourceKey(entry.source));
  return { id, source, loraScale: adapted ? 0 : 1 };
}

/** The id and label `specModelJudge` gives, without loading anything (to find kept rows). */
export function specModelJudgeIdentity(
  spec: ExperimentSpec,
  modelId?: string,
): { id: string; label: string } {
  const e = specEntry(spec, modelId);
  return { id: `model:${e.source}@${e.loraScale}`, label: `${e.id} model (${e.source})` };
}

/** The id and label `sourceModelJudge` gives, without loading anything. */
export function sourceModelJudgeIdentity(source: ModelSource): { id: string; label: string } {
  return { id: `model:${sourceKey(source)}@1`, label: sourceKey(source) };
}

/** A judge on one of the spec's models (default: the base model). */
export async function specModelJudge(lab: Lab, spec: ExperimentSpec, modelId?: string): Promise<ModelJudge> {
  const e = specEntry(spec, modelId);
  const h = (await lab.registry.handles(spec)).get(e.id)!;
  if (h.loraScale !== e.loraScale)
    throw new Error(`judge "${e.id}": LoRA dose ${h.loraScale}, expected ${e.loraScale}`);
  return new ModelJudge(
    { engine: h.model.engine, tokenizer: h.model.tokenizer, loraScale: h.loraScale },
    specModelJudgeIdentity(spec, modelId),
  );
}

/** A judge on any model source, loaded (and cached) by the lab's registry. */
export async function sourceModelJudge(lab: Lab, source: ModelSource): Promise<ModelJudge> {
  const entry = { source };
  const handles = await lab.registry.handles({
    version: 1,
    name: 'judge',
    models: { base: entry, finetuned: entry },
    runtime: { device: 'auto', dtype: JUDGE_DTYPE },
    conversation: { system: null, user: '', templateArgs: {} },
    conditions: [{ id: 'judge', label: 'judge', model: 'base' }],
    generation: { maxNewTokens: 1, temperature: 0, seed: 0 },
    metrics: [],
  });
  const h = handles.get('base')!;
  return new ModelJudge(
    { engine: h.model.engine, tokenizer: h.model.tokenizer, loraScale: h.loraScale },
    sourceModelJudgeIdentity(source),
  );
}
