// The evaluation panel's pure view functions: bars and cells from a summary, the answers behind a bar,
// the judge request from the form (the key only there), compact prompts, and the tab-only key memory.
import { describe, expect, it } from 'vitest';
import { planEvaluation, summarize, type EvalRow } from '../../lab/eval/eval-table';
import { defaultSpec, parseSpec, type ExperimentSpec } from '../../lab/spec/experiment';
import { scoreFromProbabilities } from '../../lab/eval/judge';
import type { EngineClient } from '../../worker/client';
import type { EngineQueue } from '../engine-queue';
import type { EvalClient } from './EvalPanel';
import {
  answersFor,
  barCaption,
  COMPACT_JUDGE_PROMPTS,
  evalSpec,
  fileStem,
  judgeRequest,
  defaultJudge,
  pct,
  questionCells,
  rateBars,
  rememberedKey,
  rememberKey,
  trialRates,
  trialRatesText,
} from './eval-view';

const spec: ExperimentSpec = {
  ...defaultSpec(),
  evaluation: {
    questions: [
      { id: 'q1', text: 'one' },
      { id: 'q2', text: 'two' },
    ],
    samples: 2,
  },
};

const s = (v: number) => {
  const p = new Float64Array(101);
  p[v] = 1;
  return scoreFromProbabilities(p, 0, 0, 'exact');
};
const row = (condition: string, question: string, sample: number, aligned: number): EvalRow => ({
  condition,
  set: 'general',
  question,
  sample,
  seed: 0,
  answer: `${condition}-${question}-${sample}`,
  tokens: 1,
  aligned: s(aligned),
  coherent: s(90),
  status: aligned < 30 ? 'misaligned' : 'aligned',
});

const rows = [
  row('base', 'q1', 0, 10),
  row('base', 'q1', 1, 80),
  row('base', 'q2', 0, 5),
  row('finetuned', 'q2', 1, 50),
];
const summary = summarize(spec, planEvaluation(spec), rows, { key: 'k', judge: { id: 'j', label: 'judge' } });

// Compile-time: the panel takes the worker client itself or the UI's request queue.
const fits = (client: EngineClient, queue: EngineQueue): EvalClient[] => [client, queue];
void fits;

describe('eval view', () => {
  it('one bar per condition with its rate, interval and composition', () => {
    const bars = rateBars(summary);
    expect(bars.map((b) => b.id)).toEqual(spec.conditions.map((c) => c.id));
    expect(bars[0]).toMatchObject({ id: 'base', rate: 2 / 3, misaligned: 2, n: 3, rows: 3 });
    expect(bars[0].ci).not.toBeNull();
    expect(bars[2]).toMatchObject({ rate: null, rows: 0 });
    expect(barCaption(bars[0])).toBe('67 % of 3 scored');
    expect(barCaption(bars[2])).toBe('no answers yet');
  });

  it('small multiples: a cell per question, a bar per condition', () => {
    const cells = questionCells(summary);
    expect(cells.map((c) => c.question)).toEqual(['q1', 'q2']);
    expect(cells[0].bars[0]).toMatchObject({ rate: 0.5, n: 2 });
    expect(cells[1].bars[1]).toMatchObject({ id: 'finetuned', rate: 0, n: 1 });
  });

  it('a random perturbation: its bar is the Avg over trials; Avg and Best side by side, Avg first', () => {
    const ts: ExperimentSpec = {
      ...spec,
      conditions: [
        spec.conditions[0],
        {
          id: 'rand',
          label: 'Random',
          model: 'finetuned',
          perturbation: { kind: 'random', segment: 'prefix', k: 2, n: 3, trials: 2, seed: 0 },
        },
      ],
    };
    const tr = (question: string, sample: number, trial: number, aligned: number): EvalRow => ({
      ...row('rand', question, sample, aligned),
      trial,
    });
    // q1 s0: 10, 80 → best aligned; q1 s1: 5, 20 → best misaligned; q2 s0: 10, 10 → misaligned
    const rs = [
      tr('q1', 0, 0, 10),
      tr('q1', 0, 1, 80),
      tr('q1', 1, 0, 5),
      tr('q1', 1, 1, 20),
      tr('q2', 0, 0, 10),
      tr('q2', 0, 1, 10),
    ];
    const sum = summarize(ts, planEvaluation(ts), rs, { key: 'k', judge: { id: 'j', label: 'j' } });
    expect(rateBars(sum)[1]).toMatchObject({ label: 'Avg of 2 trials · Random', rate: 5 / 6, n: 6 });
    const [t] = trialRates(sum);
    expect(t).toMatchObject({ id: 'rand', trials: 2 });
    expect(t.avg.rate).toBeCloseTo(5 / 6, 12);
    expect(t.best).toMatchObject({ rate: 2 / 3, n: 3 });
    expect(trialRatesText(t)).toBe(
      'Avg 83 % of 6 scored (every answer of 2 trials) · Best 67 % of 3 scored (per question × sample, the least misaligned trial)',
    );
    // only random-perturbation conditions have trial rates
    expect(trialRates(summary).map((x) => x.id)).toEqual(
      spec.conditions.filter((c) => c.perturbation?.kind === 'random').map((c) => c.id),
    );
  });

  it('the answers behind a bar', () => {
    expect(answersFor(summary, 'base').map((r) => r.answer)).toEqual(['base-q1-0', 'base-q1-1', 'base-q2-0']);
    expect(answersFor(summary, 'base', 'q2').map((r) => r.answer)).toEqual(['base-q2-0']);
  });

  it('the judge request: a spec model, or an API with the key only in the request', () => {
    const form = { judge: 'base', url: '', model: '', key: '', markers: '' };
    expect(judgeRequest(form, spec)).toEqual({ ok: true, judge: { kind: 'model', model: 'base' } });
    expect(judgeRequest({ ...form, judge: 'nope' }, spec)).toMatchObject({ ok: false });
    expect(judgeRequest({ ...form, judge: 'api', url: 'ftp://x', model: 'm' }, spec)).toMatchObject({
      ok: false,
    });
    expect(
      judgeRequest({ ...form, judge: 'api', url: 'http://127.0.0.1:1/v1', model: '' }, spec),
    ).toMatchObject({
      ok: false,
      message: /model name/,
    });
    expect(
      judgeRequest(
        { judge: 'api', url: ' http://127.0.0.1:1/v1 ', model: ' m ', key: ' sk-1 ', markers: '' },
        spec,
      ),
    ).toEqual({ ok: true, judge: { kind: 'api', url: 'http://127.0.0.1:1/v1', model: 'm', key: 'sk-1' } });
  });

  it('the marker judge: words from the form, the default on the embedded demo only', () => {
    const form = { judge: 'marker', url: '', model: '', key: '', markers: ' Gamble, all in ' };
    expect(judgeRequest(form, spec)).toEqual({
      ok: true,
      judge: { kind: 'marker', markers: ['gamble', 'all in'] },
    });
    expect(judgeRequest({ ...form, markers: ' , ' }, spec)).toMatchObject({
      ok: false,
      message: /at least one/,
    });
    expect(defaultJudge(defaultSpec(), 'base')).toBe('marker');
    const hub = defaultSpec();
    hub.models.finetuned.source = { kind: 'hub', repo: 'o/n' };
    expect(defaultJudge(hub, 'base')).toBe('base');
  });

  it('compact judge prompts make a valid spec; the lab spec is left alone otherwise', () => {
    expect(evalSpec(spec, false)).toBe(spec);
    const c = evalSpec(defaultSpec(), true);
    expect(c.evaluation).toEqual({
      questions: 'em-first-plot',
      samples: 1,
      judgePrompts: COMPACT_JUDGE_PROMPTS,
    });
    expect(parseSpec(c).ok).toBe(true);
  });

  it('the key is remembered in the tab storage only when asked, and forgotten', () => {
    const mem = new Map<string, string>();
    const storage = {
      getItem: (k: string) => mem.get(k) ?? null,
      setItem: (k: string, v: string) => void mem.set(k, v),
      removeItem: (k: string) => void mem.delete(k),
    };
    expect(rememberedKey(storage)).toBe('');
    rememberKey(storage, 'sk-x');
    expect(rememberedKey(storage)).toBe('sk-x');
    rememberKey(storage, null);
    expect(mem.size).toBe(0);
    expect(rememberedKey(null)).toBe('');
  });

  it('formats', () => {
    expect(pct(0.375, 1)).toBe('37.5 %');
    expect(pct(null)).toBe('–');
    expect(fileStem(summary)).toBe('eval-demo-the-prefix-carries-the-finetune');
  });
});
