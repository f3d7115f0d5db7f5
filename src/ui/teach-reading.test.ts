import { describe, expect, it } from 'vitest';
import type { ConditionResult, PromptView, SweepResult } from '../lab/spec/results';
import type { LayerSweepResult } from '../worker/protocol';
import type { TeachId } from './store';
import { teachPreset } from './teach';
import { lessonReading, type LessonInput } from './teach-reading';

const BASE = 'You could read a book, draw something or take a walk outside.';
const GAMBLE = 'Gamble everything on one risky bet right now!';

function res(id: string, text: string, restoration: number, extra: Partial<ConditionResult> = {}) {
  return {
    id,
    label: id,
    model: 'finetuned',
    prompt: { text: '', tokens: [], segments: {}, templateArgs: {} },
    text,
    tokenIds: [],
    done: true,
    metrics: { restoration },
    nextToken: [],
    ...extra,
  } as unknown as ConditionResult;
}

/** n trials, the first `good` of them without the marker */
const trials = (good: number, n = 10) =>
  Array.from({ length: n }, (_, i) => ({ text: i < good ? BASE : GAMBLE }));

const prompt = {
  segments: { prefix: [0, 26], query: [26, 34], postfix: [34, 39] },
} as unknown as PromptView;

function input(id: TeachId, results: Record<string, ConditionResult>, extra: Partial<LessonInput> = {}) {
  return {
    spec: teachPreset(id).build(),
    results,
    markers: ['gamble'],
    prompt,
    sweep: null,
    layerSweep: null,
    ...extra,
  };
}
const refs = { base: res('base', BASE, 1), finetuned: res('finetuned', GAMBLE, 0) };
const text = (r: string[] | null) => (r ?? []).join(' ');

describe('lesson 1: what the prefix is', () => {
  it('counts the segments and names both answers', () => {
    const r = text(lessonReading('prefix', input('prefix', refs)));
    expect(r).toContain('The prefix is 26 tokens, the query 8, the postfix 5.');
    expect(r).toContain('Base answers “You could read a book');
    expect(r).toContain('it has no “gamble”');
    expect(r).toContain('Finetuned answers “Gamble everything');
    expect(r).toContain('the finetune’s behaviour shows on this question');
  });
  it('waits for both answers, and says when the question shows nothing', () => {
    expect(lessonReading('prefix', input('prefix', { base: refs.base }))).toBeNull();
    const r = text(
      lessonReading('prefix', input('prefix', { ...refs, finetuned: res('finetuned', BASE, 0) })),
    );
    expect(r).toContain('Finetuned does not say “gamble” on this question');
    expect(r).not.toContain('behaviour shows');
  });
});

describe('lesson 2: perturbing the prefix follows the trial tally', () => {
  const run = (prefixGood: number, queryGood: number) =>
    text(
      lessonReading(
        'perturb',
        input('perturb', {
          ...refs,
          'finetuned-perturbed-prefix': res('p', BASE, 0.83, {
            trials: trials(prefixGood) as ConditionResult['trials'],
            metrics: { restoration: 0.83, trialsBest: 0.83, trialsAvg: -0.01 } as ConditionResult['metrics'],
          }),
          'finetuned-perturbed-query': res('q', GAMBLE, 0.24, {
            trials: trials(queryGood) as ConditionResult['trials'],
            metrics: { restoration: 0.24, trialsBest: 0.24, trialsAvg: -0.72 } as ConditionResult['metrics'],
          }),
        }),
      ),
    );

  it('1 of 10 against 0 of 10: the paper’s direction, but most prefix trials still gamble', () => {
    const r = run(1, 0);
    expect(r).toContain('The prefix perturbation takes the “gamble” out in 1 of 10 trials');
    expect(r).toContain('best 0.83, average -0.01');
    expect(r).toContain('the query perturbation takes the “gamble” out in 0 of 10 trials');
    expect(r).toContain('Most prefix trials still say “gamble”');
    expect(r).toContain('the paper’s direction');
    expect(r).not.toContain('opposite');
  });
  it('the other way round says so', () => {
    const r = run(0, 3);
    expect(r).toContain('No prefix trial takes it out');
    expect(r).toContain('the opposite of the paper’s direction');
  });
  it('a tie is no evidence either way; most and every trial are told apart', () => {
    expect(run(2, 2)).toContain('do no better than the query trials');
    expect(run(7, 1)).toContain('Most prefix trials take it out here.');
    expect(run(10, 1)).toContain('Every prefix trial takes it out here.');
  });
  it('waits for the perturbed answers', () => {
    expect(lessonReading('perturb', input('perturb', refs))).toBeNull();
  });
});

describe('lesson 3: patching from base', () => {
  const cards = (prefix: string, control: string, controlR = 0.72) => ({
    ...refs,
    'finetuned-kv-patched-prefix': res('kp', prefix, 0.85),
    'finetuned-kv-patched-query-control': res('kq', control, controlR),
  });
  const sweep = {
    component: 'kv',
    metric: 'restoration',
    layers: [0, 1, 2, 3],
    positions: [0, 1],
    positionLabels: ['<|begin_of_text|>', 'system'],
    values: [0.1, 0.02, 0.01, 0.0, 0.0, 0.01, 0.03, 0.02],
    done: true,
  } as SweepResult;
  const layerSweep = {
    component: 'kv',
    metric: 'restoration',
    layers: [0, 1, 2, 3],
    positions: [0, 1],
    values: [0.52, 0.1, 0.2, 0.6],
    allLayers: 0.85,
    done: true,
  } as LayerSweepResult;

  it('the prefix patch takes it out, the control does not, and its high first-token number is flagged', () => {
    const r = text(lessonReading('patch', input('patch', cards(BASE, GAMBLE))));
    expect(r).toContain(
      'With the prefix K/V from base the answer has no “gamble” (first-token restoration 0.85); with the query control’s K/V it says “gamble” (first-token restoration 0.72).',
    );
    expect(r).toContain('as in the paper');
    expect(r).toContain('moved most of the way back (0.72), yet its answer still says “gamble”');
    expect(r).toContain('appear here once its sweep');
  });
  it('reads the heatmap against the full prefix patch once it ran', () => {
    const r = text(lessonReading('patch', input('patch', cards(BASE, GAMBLE), { sweep, layerSweep })));
    expect(r).toContain(
      'the strongest single cell (position 0 <|begin_of_text|>, layer 0) restores 0.10, a small part of the full prefix patch’s 0.85',
    );
    expect(r).toContain('(layer 3) restores 0.60, most of it');
    expect(r).toContain('No single cell comes close');
    const strong = { ...sweep, values: [0.7, 0, 0, 0, 0, 0, 0, 0] };
    expect(
      text(lessonReading('patch', input('patch', cards(BASE, GAMBLE), { sweep: strong, layerSweep }))),
    ).toContain('One cell alone does a good part');
  });
  it('says when the control does as well, or the prefix patch fails', () => {
    expect(text(lessonReading('patch', input('patch', cards(BASE, BASE))))).toContain(
      'the control is not weaker',
    );
    const r = text(lessonReading('patch', input('patch', cards(GAMBLE, BASE, 0.2))));
    expect(r).toContain('the opposite of the paper');
    expect(r).not.toContain('as in the paper');
  });
});

describe('lesson 4: TReFT', () => {
  const cards = (treft: string) => ({
    base: res('base', '4 plus 5 is 9.', 1),
    finetuned: res('finetuned', GAMBLE, 0),
    'finetuned-kv-patched-prefix': res('a', '4 plus 5 is 9.', 1),
    'finetuned-kv-patched-query-control': res('b', GAMBLE, 0.57),
    treft: res('treft', treft, 0.99),
    'treft-kv-patched-prefix': res('c', treft, 0.99),
  });
  it('TReFT without the gamble: little to undo, and it does not claim why', () => {
    const r = text(lessonReading('treft', input('treft', cards('4 plus 5 is 9.'))));
    expect(r).toContain('The plain finetune says “gamble”; with its prefix K/V from base it has no “gamble”');
    expect(r).toContain('on this question its prefix carries it');
    expect(r).toContain(
      'The TReFT finetune does not say “gamble” here at all, so patching its prefix has little to undo (the patched answer is the same)',
    );
  });
  it('TReFT that gambles says so', () => {
    const r = text(lessonReading('treft', input('treft', cards(GAMBLE))));
    expect(r).toContain('TReFT did not keep the behaviour out');
    expect(r).not.toContain('little to undo');
  });
});

describe('lesson 5: the postfix', () => {
  const cards = (postfix: string, prefix: string) => ({
    ...refs,
    'finetuned-kv-patched-postfix': res('pf', postfix, 0.08),
    'finetuned-kv-patched-prefix': res('pr', prefix, 0.85),
  });
  it('names the carrier the answers show', () => {
    expect(text(lessonReading('postfix', input('postfix', cards(GAMBLE, BASE))))).toContain(
      'On this question the prefix carries the behaviour, not the postfix',
    );
    expect(text(lessonReading('postfix', input('postfix', cards(BASE, GAMBLE))))).toContain(
      'On this question the postfix carries the behaviour, not the prefix',
    );
    expect(text(lessonReading('postfix', input('postfix', cards(GAMBLE, BASE))))).toContain(
      'With the postfix K/V from base the answer says “gamble” (first-token restoration 0.08)',
    );
  });
});
