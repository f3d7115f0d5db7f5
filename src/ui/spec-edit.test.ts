import { describe, expect, it } from 'vitest';
import { defaultSpec, parseSpec, type ExperimentSpec } from '../lab/spec/experiment';
import { settingsLabel } from './describe';
import {
  addCellPatchCondition,
  addCondition,
  addTokenEdit,
  defaultEditTarget,
  defaultPatchTarget,
  duplicateCondition,
  removeCondition,
  removeTokenEdit,
  renameCondition,
  replaceModels,
  setPatch,
  setRandomPerturbation,
  setSystem,
  setTemplateArg,
  uniqueConditionId,
} from './spec-edit';

const spec = defaultSpec();
const valid = (s: unknown) => {
  const r = parseSpec(s);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.spec;
};

describe('spec edits', () => {
  it('never mutates the input and keeps the spec valid', () => {
    const before = JSON.stringify(spec);
    const s1 = addTokenEdit(spec, 'finetuned-perturbed-prefix', {
      op: 'replace',
      segment: 'prefix',
      index: 2,
      token: { text: 'Hello' },
    });
    const s2 = setTemplateArg(setSystem(s1, ''), 'date_string', '1 Jan 2030');
    expect(JSON.stringify(spec)).toBe(before);
    const parsed = valid(s2);
    expect(parsed.conversation.templateArgs.date_string).toBe('1 Jan 2030');
    expect(parsed.conversation.system).toBe('');
    expect(setTemplateArg(s2, 'date_string', '').conversation.templateArgs).toEqual({});
  });

  it('token edits replace a random perturbation and supersede clashing edits', () => {
    const id = 'finetuned-perturbed-prefix';
    let s = addTokenEdit(spec, id, { op: 'replace', segment: 'prefix', index: 1, token: { id: 5 } });
    s = addTokenEdit(s, id, { op: 'insert', segment: 'prefix', index: 1, token: { text: 'x' } });
    s = addTokenEdit(s, id, { op: 'delete', segment: 'prefix', index: 1 });
    const p = s.conditions.find((c) => c.id === id)?.perturbation;
    expect(p?.kind).toBe('edits');
    if (p?.kind !== 'edits') return;
    expect(p.edits.map((e) => e.op)).toEqual(['insert', 'delete']);
    valid(s);
    s = removeTokenEdit(s, id, 0);
    s = removeTokenEdit(s, id, 0);
    expect(s.conditions.find((c) => c.id === id)?.perturbation).toBeUndefined();
    valid(s);
    s = setRandomPerturbation(s, id, { k: 3, seed: 9 });
    expect(s.conditions.find((c) => c.id === id)?.perturbation).toEqual({
      kind: 'random',
      segment: 'prefix',
      k: 3,
      n: 5,
      trials: 10,
      seed: 9,
    });
  });

  it('adds, duplicates, renames and removes conditions with unique ids', () => {
    expect(uniqueConditionId(spec, 'Base')).toBe('base-2');
    expect(uniqueConditionId(spec, '  Hello World! ')).toBe('hello-world');
    const { spec: s1, id } = addCondition(spec, { label: 'Finetuned', model: 'finetuned' });
    expect(id).toBe('finetuned-2');
    const { spec: s2, id: copy } = duplicateCondition(s1, 'finetuned-kv-patched-prefix');
    expect(copy).toBe('finetuned-kv-patched-prefix-copy');
    const s3 = renameCondition(s2, copy, '  My patch  ');
    expect(s3.conditions.find((c) => c.id === copy)?.label).toBe('My patch');
    expect(renameCondition(s3, copy, '   ')).toBe(s3);
    valid(s3);
    let s4 = s3;
    for (const c of s3.conditions) s4 = removeCondition(s4, c.id);
    expect(s4.conditions).toHaveLength(1);
  });

  it('turns a heatmap cell into a one-layer one-position patch condition', () => {
    const { spec: s, id } = addCellPatchCondition(spec, {
      component: 'kv',
      layer: 3,
      position: 5,
      tokenText: 'user',
    });
    expect(id).toBe('kv-l3-p5');
    const c = valid(s).conditions.find((x) => x.id === id);
    expect(c?.patch).toEqual({ component: 'kv', layers: [3], positions: { explicit: [5] }, source: 'base' });
    expect(c?.model).toBe('finetuned');
  });

  it('chooses default targets', () => {
    expect(defaultEditTarget(spec)).toBe('finetuned-perturbed-prefix');
    expect(defaultPatchTarget(spec)).toBe('finetuned-kv-patched-prefix');
  });
});

describe('replaceModels', () => {
  const hub = (repo: string) => ({ kind: 'hub' as const, repo });
  it('keeps the conditions that still have their models; drops the rest; merges template arguments', () => {
    const spec = defaultSpec();
    const withOther = {
      ...spec,
      models: { ...spec.models, treft: { source: { kind: 'demo' as const, name: 'demo-treft' as const } } },
      conditions: [...spec.conditions, { id: 'treft', label: 'TReFT', model: 'treft' }],
    };
    const models = {
      base: { source: hub('a/base'), role: 'base' as const },
      finetuned: { source: hub('a/base'), adapter: hub('a/lora'), role: 'finetuned' as const },
    };
    const r = replaceModels(withOther, models, { date_string: '26 Jul 2024' });
    expect(r.dropped).toEqual(['TReFT']);
    expect(r.spec.conditions.map((c) => c.id)).toEqual(spec.conditions.map((c) => c.id));
    expect(r.spec.conversation.templateArgs).toEqual({ date_string: '26 Jul 2024' });
    expect(parseSpec(r.spec).ok).toBe(true);
  });

  it('drops a LoRA dose on a model without an adapter; with nothing left, compares base and finetuned', () => {
    const spec = {
      ...defaultSpec(),
      conditions: [{ id: 'x', label: 'X', model: 'finetuned', loraScale: 0.5 }],
    };
    const full = {
      base: { source: hub('a/base'), role: 'base' as const },
      finetuned: { source: hub('a/ft'), role: 'finetuned' as const },
    };
    expect(replaceModels(spec, full).spec.conditions).toEqual([{ id: 'x', label: 'X', model: 'finetuned' }]);
    const only = { ...defaultSpec(), conditions: [{ id: 'y', label: 'Y', model: 'gone' }] };
    const r = replaceModels(only, full);
    expect(r.spec.conditions).toEqual([
      { id: 'base', label: 'Base', model: 'base' },
      { id: 'finetuned', label: 'Finetuned', model: 'finetuned' },
    ]);
    expect(parseSpec(r.spec).ok).toBe(true);
  });
});

describe('condition titles follow their settings until renamed', () => {
  const patchOf = (s: ExperimentSpec) => s.conditions.find((c) => c.id === 'finetuned-kv-patched-prefix')!;

  it("the default titles are their settings' titles", () => {
    const s = defaultSpec();
    for (const c of s.conditions) expect(c.label).toBe(settingsLabel(c, s));
  });

  it('a patch change retitles an untouched card', () => {
    const s0 = defaultSpec();
    const p = patchOf(s0).patch!;
    const s1 = setPatch(s0, 'finetuned-kv-patched-prefix', {
      ...p,
      component: 'resid',
      layers: { from: 0, to: 1 },
    });
    expect(patchOf(s1).label).toBe('Finetuned, prefix residual (layers 0–1) from base');
    const s2 = setPatch(s1, 'finetuned-kv-patched-prefix', { ...p, positions: 'query-control' });
    expect(patchOf(s2).label).toBe('Finetuned, query control K/V from base');
    const s3 = addTokenEdit(s2, 'finetuned-kv-patched-prefix', { op: 'delete', segment: 'prefix', index: 3 });
    expect(patchOf(s3).label).toBe('Finetuned, 1 token edit, query control K/V from base');
  });

  it('a title the user typed stays', () => {
    const s0 = renameCondition(defaultSpec(), 'finetuned-kv-patched-prefix', 'my patch');
    const p = patchOf(s0).patch!;
    const s1 = setPatch(s0, 'finetuned-kv-patched-prefix', { ...p, component: 'resid' });
    expect(patchOf(s1).label).toBe('my patch');
    expect(patchOf(s1).patch?.component).toBe('resid');
  });
});
