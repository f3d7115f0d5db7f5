import { describe, expect, it } from 'vitest';
import { defaultSpec, type ExperimentSpec } from '../lab/spec/experiment';
import { createLabStore } from './store';
import { removeCondition, renameCondition } from './spec-edit';

describe('lab store', () => {
  it('starts on the default demo with sensible targets', () => {
    const s = createLabStore().getState();
    expect(s.spec).toEqual(defaultSpec());
    expect(s.ui.editTarget).toBe('finetuned-perturbed-prefix');
    expect(s.ui.patchTarget).toBe('finetuned-kv-patched-prefix');
  });

  it('refuses an invalid spec with a notice and keeps the old one', () => {
    const store = createLabStore();
    const bad = { ...defaultSpec(), conditions: [] } as ExperimentSpec;
    expect(store.getState().setSpec(bad)).toBe(false);
    expect(store.getState().spec.conditions).toHaveLength(4);
    const n = store.getState().notices;
    expect(n).toHaveLength(1);
    expect(n[0].kind).toBe('error');
    expect(n[0].details?.join(' ')).toContain('conditions');
  });

  it('undoes edits and re-points targets at existing conditions', () => {
    const store = createLabStore();
    const st = () => store.getState();
    st().setSpec((s) => renameCondition(s, 'base', 'Base model'));
    st().setSpec((s) => removeCondition(s, 'finetuned-kv-patched-prefix'));
    expect(st().ui.patchTarget).toBeNull();
    st().setSpec((s) => removeCondition(s, 'finetuned-perturbed-prefix'));
    expect(st().ui.editTarget).toBe('finetuned');
    st().undo();
    st().undo();
    expect(st().spec.conditions).toHaveLength(4);
    expect(st().spec.conditions[0].label).toBe('Base model');
    st().undo();
    expect(st().spec).toEqual(defaultSpec());
    st().undo(); // nothing left: no-op
    expect(st().spec).toEqual(defaultSpec());
  });

  it('a spec from a link clears the undo history', () => {
    const store = createLabStore();
    store.getState().setSpec((s) => renameCondition(s, 'base', 'B'));
    store.getState().setSpec(defaultSpec(), 'link');
    expect(store.getState().past).toHaveLength(0);
    expect(store.getState().origin).toBe('link');
  });
});

describe('Teach lessons', () => {
  const lesson = (label: string) => renameCondition(defaultSpec(), 'base', label);

  it('"Back" restores the spec from before the first lesson, not the previous lesson', () => {
    const store = createLabStore();
    const st = () => store.getState();
    st().setSpec((s) => renameCondition(s, 'finetuned', 'my own finetune'));
    const mine = st().spec;
    expect(st().startLesson('perturb', lesson('lesson 2'))).toBe(true);
    expect(st().ui.teach).toBe('perturb');
    expect(st().startLesson('patch', lesson('lesson 3'))).toBe(true);
    st().setSpec((s) => renameCondition(s, 'base', 'edited in the lesson'));
    st().leaveLesson(true);
    expect(st().spec).toEqual(mine);
    expect(st().ui.teach).toBeNull();
    expect(st().lessonReturn).toBeNull();
  });

  it('"Hide" keeps the lesson spec, and the next lesson returns to it', () => {
    const store = createLabStore();
    const st = () => store.getState();
    st().startLesson('prefix', lesson('lesson 1'));
    st().leaveLesson(false);
    expect(st().spec.conditions[0].label).toBe('lesson 1');
    st().startLesson('perturb', lesson('lesson 2'));
    st().leaveLesson(true);
    expect(st().spec.conditions[0].label).toBe('lesson 1');
  });

  it('a link during a lesson leaves nothing to go back to', () => {
    const store = createLabStore();
    const st = () => store.getState();
    st().startLesson('prefix', lesson('lesson 1'));
    st().setSpec(lesson('from a link'), 'link');
    st().leaveLesson(true);
    expect(st().spec.conditions[0].label).toBe('from a link');
  });
});
