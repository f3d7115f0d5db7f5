// Pure edits of the experiment spec that the UI performs: conversation fields, conditions (add, remove,
// rename, patch, perturb), token edits from the strip, perturbation presets and heatmap-cell patches.
// Each returns a new spec and never mutates its input; it must never run a model or touch the DOM.
// The store validates the result with parseSpec before it becomes the current spec.
import type {
  Condition,
  ExperimentSpec,
  PatchComponent,
  PatchSettings,
  Perturbation,
  SegmentName,
  TokenEdit,
} from '../lab/spec/experiment';

import { settingsLabel } from './describe';

export type RandomParams = Extract<Perturbation, { kind: 'random' }>;

export function setUser(spec: ExperimentSpec, user: string): ExperimentSpec {
  return { ...spec, conversation: { ...spec.conversation, user } };
}

/** null = no system message (the template's default applies); '' = an explicitly empty one. */
export function setSystem(spec: ExperimentSpec, system: string | null): ExperimentSpec {
  return { ...spec, conversation: { ...spec.conversation, system } };
}

/** Sets (or, with undefined / '', removes) one template argument. */
export function setTemplateArg(
  spec: ExperimentSpec,
  key: string,
  value: string | number | boolean | undefined,
): ExperimentSpec {
  const templateArgs = { ...spec.conversation.templateArgs };
  if (value === undefined || value === '') delete templateArgs[key];
  else templateArgs[key] = value;
  return { ...spec, conversation: { ...spec.conversation, templateArgs } };
}

function updateCondition(spec: ExperimentSpec, id: string, fn: (c: Condition) => Condition): ExperimentSpec {
  return { ...spec, conditions: spec.conditions.map((c) => (c.id === id ? fn(c) : c)) };
}

/** A change of a condition's settings: a title that was its settings' title follows them; a typed one stays. */
function updateSettings(spec: ExperimentSpec, id: string, fn: (c: Condition) => Condition): ExperimentSpec {
  return updateCondition(spec, id, (c) => {
    const next = fn(c);
    return c.label === settingsLabel(c, spec) ? { ...next, label: settingsLabel(next, spec) } : next;
  });
}

/** A slug not yet used by a condition: `stem`, `stem-2`, `stem-3`… */
export function uniqueConditionId(spec: ExperimentSpec, stem: string): string {
  const base =
    stem
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 56) || 'condition';
  const used = new Set(spec.conditions.map((c) => c.id));
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** Appends a condition (its id made unique); returns the new spec and the id it got. */
export function addCondition(
  spec: ExperimentSpec,
  partial: Omit<Condition, 'id'> & { id?: string },
): { spec: ExperimentSpec; id: string } {
  const id = uniqueConditionId(spec, partial.id ?? partial.label);
  return { spec: { ...spec, conditions: [...spec.conditions, { ...partial, id }] }, id };
}

/** A copy of a condition, labelled "… (copy)". */
export function duplicateCondition(spec: ExperimentSpec, id: string): { spec: ExperimentSpec; id: string } {
  const c = spec.conditions.find((x) => x.id === id);
  if (!c) return { spec, id };
  const label = `${c.label} (copy)`.slice(0, 80);
  return addCondition(spec, { ...structuredClone(c), id: `${c.id}-copy`, label });
}

/** Removes a condition; the spec keeps at least one. */
export function removeCondition(spec: ExperimentSpec, id: string): ExperimentSpec {
  if (spec.conditions.length <= 1) return spec;
  return { ...spec, conditions: spec.conditions.filter((c) => c.id !== id) };
}

export function renameCondition(spec: ExperimentSpec, id: string, label: string): ExperimentSpec {
  const clean = label.trim().slice(0, 80);
  if (!clean) return spec;
  return updateCondition(spec, id, (c) => ({ ...c, label: clean }));
}

export function setPatch(spec: ExperimentSpec, id: string, patch: PatchSettings | undefined): ExperimentSpec {
  return updateSettings(spec, id, (c) => {
    const next = { ...c };
    if (patch) next.patch = patch;
    else delete next.patch;
    return next;
  });
}

export function setPerturbation(
  spec: ExperimentSpec,
  id: string,
  p: Perturbation | undefined,
): ExperimentSpec {
  return updateSettings(spec, id, (c) => {
    const next = { ...c };
    if (p) next.perturbation = p;
    else delete next.perturbation;
    return next;
  });
}

export function setLoraScale(spec: ExperimentSpec, id: string, scale: number | undefined): ExperimentSpec {
  return updateSettings(spec, id, (c) => {
    const next = { ...c };
    if (scale === undefined) delete next.loraScale;
    else next.loraScale = Math.min(1, Math.max(0, Math.round(scale * 100) / 100));
    return next;
  });
}

/** Two edits clash when both replace/delete the same unedited token (perturb.ts refuses that). */
function clashes(a: TokenEdit, b: TokenEdit): boolean {
  return a.op !== 'insert' && b.op !== 'insert' && a.segment === b.segment && a.index === b.index;
}

/**
 * Adds a token edit to a condition. A replace/delete of a token already replaced/deleted supersedes the
 * old edit; a random perturbation gives way to the edit list (the strip shows one set of edits).
 */
export function addTokenEdit(spec: ExperimentSpec, id: string, edit: TokenEdit): ExperimentSpec {
  return updateSettings(spec, id, (c) => {
    const old = c.perturbation?.kind === 'edits' ? c.perturbation.edits : [];
    const edits = [...old.filter((e) => !clashes(e, edit)), edit];
    return { ...c, perturbation: { kind: 'edits', edits } };
  });
}

/** Adds several edits (a preset) to a condition, replacing clashing ones. */
export function addTokenEdits(spec: ExperimentSpec, id: string, edits: readonly TokenEdit[]): ExperimentSpec {
  return edits.reduce((s, e) => addTokenEdit(s, id, e), spec);
}

/** Removes edit `index` of a condition's edit list; an empty list removes the perturbation. */
export function removeTokenEdit(spec: ExperimentSpec, id: string, index: number): ExperimentSpec {
  return updateSettings(spec, id, (c) => {
    if (c.perturbation?.kind !== 'edits') return c;
    const edits = c.perturbation.edits.filter((_e, i) => i !== index);
    const next = { ...c };
    if (edits.length) next.perturbation = { kind: 'edits', edits };
    else delete next.perturbation;
    return next;
  });
}

/** Edits on the unedited token at absolute position `pos`, as indexes into the condition's edit list. */
export function editsAt(c: Condition | undefined, segment: SegmentName, indexInSegment: number): number[] {
  if (c?.perturbation?.kind !== 'edits') return [];
  const out: number[] = [];
  c.perturbation.edits.forEach((e, i) => {
    if (e.segment === segment && e.index === indexInSegment) out.push(i);
  });
  return out;
}

/**
 * The condition that token edits and perturbation presets apply to by default: the first with a
 * perturbation, else the first finetuned condition without a patch, else the last condition.
 */
export function defaultEditTarget(spec: ExperimentSpec): string {
  const withP = spec.conditions.find((c) => c.perturbation);
  if (withP) return withP.id;
  const ft = spec.conditions.find((c) => c.model !== 'base' && !c.patch);
  return (ft ?? spec.conditions[spec.conditions.length - 1]).id;
}

/** The condition the patch controls apply to by default: the first with a patch. */
export function defaultPatchTarget(spec: ExperimentSpec): string | null {
  return spec.conditions.find((c) => c.patch)?.id ?? null;
}

/** The model key that plays the finetuned role (for new conditions). */
export function finetunedKey(spec: ExperimentSpec): string {
  if (spec.models.finetuned) return 'finetuned';
  return Object.keys(spec.models).find((k) => k !== 'base') ?? 'base';
}

/** A heatmap cell click: a new condition patching one layer at one position from base. */
export function addCellPatchCondition(
  spec: ExperimentSpec,
  cell: { component: PatchComponent; layer: number; position: number; tokenText: string },
): { spec: ExperimentSpec; id: string } {
  const comp = cell.component === 'kv' ? 'K/V' : 'resid';
  const tok = cell.tokenText.length > 14 ? `${cell.tokenText.slice(0, 13)}…` : cell.tokenText;
  return addCondition(spec, {
    id: `${cell.component}-l${cell.layer}-p${cell.position}`,
    label: `Finetuned, ${comp} L${cell.layer} @ ${cell.position} ${JSON.stringify(tok)}`.slice(0, 80),
    model: finetunedKey(spec),
    patch: {
      component: cell.component,
      layers: [cell.layer],
      positions: { explicit: [cell.position] },
      source: spec.models.base ? 'base' : Object.keys(spec.models)[0],
    },
  });
}

/** A per-head sweep cell click: a new condition patching one KV head at one layer, prefix, from base. */
export function addHeadPatchCondition(
  spec: ExperimentSpec,
  cell: { layer: number; head: number },
): { spec: ExperimentSpec; id: string } {
  return addCondition(spec, {
    id: `kv-l${cell.layer}-h${cell.head}`,
    label: `Finetuned, K/V L${cell.layer} head ${cell.head} @ prefix`,
    model: finetunedKey(spec),
    patch: {
      component: 'kv',
      layers: [cell.layer],
      positions: 'prefix',
      source: spec.models.base ? 'base' : Object.keys(spec.models)[0],
      heads: [cell.head],
    },
  });
}

export const DEFAULT_RANDOM: RandomParams = {
  kind: 'random',
  segment: 'prefix',
  k: 10,
  n: 5,
  trials: 10,
  seed: 0,
};

/** The paper's random perturbation on a condition (k tokens of a segment → top-n neighbours, over trials). */
export function setRandomPerturbation(
  spec: ExperimentSpec,
  id: string,
  params: Partial<RandomParams>,
): ExperimentSpec {
  return setPerturbation(spec, id, { ...DEFAULT_RANDOM, ...params, kind: 'random' });
}

/**
 * The spec with a new models section (and template arguments merged in): conditions that name a model
 * (or patch source) no longer present are dropped, a LoRA dose is kept only on a model with an
 * adapter, and when nothing is left the spec compares its base and finetuned models plainly.
 */
export function replaceModels(
  spec: ExperimentSpec,
  models: ExperimentSpec['models'],
  templateArgs?: Record<string, string | number | boolean>,
): { spec: ExperimentSpec; dropped: string[] } {
  const has = (k: string) => Object.hasOwn(models, k);
  const dropped: string[] = [];
  const conditions: Condition[] = [];
  for (const c of spec.conditions) {
    if (!has(c.model) || (c.patch && !has(c.patch.source))) {
      dropped.push(c.label);
      continue;
    }
    if (c.loraScale !== undefined && !models[c.model].adapter) {
      const { loraScale: _dose, ...rest } = c;
      conditions.push(rest);
    } else conditions.push(c);
  }
  if (conditions.length === 0) {
    for (const [key, m] of Object.entries(models)) {
      const label = m.role === 'base' ? 'Base' : m.role === 'finetuned' ? 'Finetuned' : key;
      conditions.push({ id: key, label, model: key });
    }
  }
  const conversation = templateArgs
    ? { ...spec.conversation, templateArgs: { ...spec.conversation.templateArgs, ...templateArgs } }
    : spec.conversation;
  return { spec: { ...spec, models: { ...models }, conditions, conversation }, dropped };
}
