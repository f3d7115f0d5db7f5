// Lab.lens on the fixture models (onnxruntime-node): the lens at the last site is each condition's own
// next-token distribution (as Lab.run reports it), whatever the condition does; the answer mode
// teacher-forces the finetuned model's greedy answer.
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { folderSource } from '../../hub/folder-files-node';
import { defaultSpec, type Condition, type ExperimentSpec, type ModelSource } from '../spec/experiment';
import { Lab } from './lab';

const FIX = path.resolve(__dirname, '../../../fixtures');
const local = (name: string): ModelSource => ({ kind: 'local', path: name });
const lab = new Lab({
  resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
  backend: 'node-cpu',
});
afterAll(() => lab.dispose());

function spec(conditions: Condition[]): ExperimentSpec {
  const s = defaultSpec();
  s.models = {
    base: { source: local('tiny-llama'), role: 'base' },
    finetuned: { source: local('tiny-llama'), adapter: local('tiny-llama-lora'), role: 'finetuned' },
  };
  s.conversation = { system: null, user: 'hey I feel bored', templateArgs: { date_string: '26 Jul 2024' } };
  s.conditions = conditions;
  s.generation = { maxNewTokens: 4, temperature: 0, seed: 0 };
  return s;
}

const conditions: Condition[] = [
  { id: 'base', label: 'Base', model: 'base' },
  { id: 'ft', label: 'Finetuned', model: 'finetuned' },
  {
    id: 'edit',
    label: 'Edited',
    model: 'finetuned',
    perturbation: {
      kind: 'edits',
      edits: [{ op: 'replace', segment: 'query', index: 1, token: { id: 40 } }],
    },
  },
  {
    id: 'patched',
    label: 'Prefix K/V from base',
    model: 'finetuned',
    patch: { component: 'kv', layers: 'all', positions: 'prefix', source: 'base' },
  },
];

describe('Lab.lens', () => {
  it('the lens at the last site is each condition’s own next-token distribution', async () => {
    const s = spec(conditions);
    s.lens = { topK: 5 };
    const [lens, run] = [await lab.lens(s), await lab.run(s)];
    expect(lens.sites).toEqual([0, 1, 2, 3].slice(0, lens.sites.length));
    const L = lens.sites.length - 1;
    expect(L).toBeGreaterThan(0);
    expect(lens.tracked[0].role).toBe('finetuned');
    for (const c of lens.conditions) {
      expect(c.error).toBeUndefined();
      const r = run.conditions.find((x) => x.id === c.id)!;
      const [pos] = c.positions;
      expect(c.positions).toHaveLength(1);
      expect(pos.top).toHaveLength(L + 1);
      const last = pos.top[L];
      expect(last.map((t) => t.id)).toEqual(r.nextToken.slice(0, 5).map((t) => t.id));
      last.forEach((t, i) => expect(t.prob).toBeCloseTo(r.nextToken[i].prob, 5));
      // tracked probabilities are the same numbers as the top-k where they overlap
      lens.tracked.forEach((tr, m) => {
        const inTop = pos.top[L].find((t) => t.id === tr.id);
        if (inTop) expect(pos.tracked[L][m]).toBeCloseTo(inTop.prob, 6);
      });
    }
    // the finetuned token is the finetuned condition's top-1 at the last site, and the patch is noted
    const ft = lens.conditions.find((c) => c.id === 'ft')!;
    expect(ft.positions[0].top[L][0].id).toBe(lens.tracked[0].id);
    expect(lens.conditions.find((c) => c.id === 'patched')!.note).toMatch(/K\/V/);
    // the lens differs across conditions (base vs finetuned) somewhere
    const base = lens.conditions.find((c) => c.id === 'base')!;
    expect(base.positions[0].tracked[L][0]).not.toBeCloseTo(ft.positions[0].tracked[L][0], 4);
  });

  it('answer mode: one position per answer token, teacher-forced from the finetuned greedy answer', async () => {
    const s = spec(conditions.slice(0, 2));
    s.lens = { positions: 'answer', answerTokens: 3, topK: 2, track: ['hello'] };
    const [lens, run] = [await lab.lens(s), await lab.run(s)];
    const ftRun = run.conditions.find((c) => c.id === 'ft')!;
    const ft = lens.conditions.find((c) => c.id === 'ft')!;
    const L = lens.sites.length - 1;
    const n = Math.min(3, ftRun.tokenIds.length);
    expect(ft.positions).toHaveLength(n);
    ft.positions.forEach((p, j) => {
      expect(p.next?.id).toBe(ftRun.tokenIds[j]);
      // greedy: the forced next token is the finetuned model's own top-1 at the last site
      expect(p.top[L][0].id).toBe(ftRun.tokenIds[j]);
      expect(p.position).toBe(run.prompt.tokens.length - 1 + j);
    });
    expect(lens.tracked.some((t) => t.role === 'extra')).toBe(true);
    expect(lens.mode).toBe('answer');
  });
});
