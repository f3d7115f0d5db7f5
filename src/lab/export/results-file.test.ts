// Results files: a lab run's file reads back as written; files from elsewhere are checked field by
// field (a wrong kind, an export plan, a non-integer token id, a spec that no longer validates);
// compare finds the first differing answer token, a missing condition, differing trials and prompts.
import { describe, expect, it } from 'vitest';
import { defaultSpec, specHash } from '../spec/experiment';
import type { ConditionResult, RunResult } from '../spec/results';
import { compareResults, comparisonText } from './compare';
import {
  parseResultsFile,
  parseResultsText,
  resultsFileJson,
  resultsFileOf,
  type ResultsFile,
} from './results-file';

const prompt = {
  text: 'ab',
  tokens: [
    { id: 1, text: 'a', segment: 'prefix' as const },
    { id: 2, text: 'b', segment: 'query' as const },
  ],
  segments: {
    prefix: [0, 1] as [number, number],
    query: [1, 2] as [number, number],
    postfix: [2, 2] as [number, number],
  },
  templateArgs: {},
};
const cond = (id: string, tokenIds: number[], extra: Partial<ConditionResult> = {}): ConditionResult => ({
  id,
  label: id,
  model: 'finetuned',
  prompt,
  text: tokenIds.join(' '),
  tokenIds,
  done: true,
  metrics: { klToBase: 0.5, restoration: NaN },
  nextToken: [{ id: 3, text: 'c', prob: 0.9 }],
  ...extra,
});
const run = (conditions: ConditionResult[]): RunResult => ({
  specVersion: 1,
  backend: 'node-cpu',
  prompt,
  conditions,
});
const file = (conditions: ConditionResult[], place: 'cli' | 'python' = 'cli'): ResultsFile => {
  const r = parseResultsText(
    resultsFileJson(resultsFileOf(defaultSpec(), run(conditions), { place, backend: place })),
  );
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.file;
};

describe('results files', () => {
  it('reads back what a lab run wrote (NaN as null), with its spec and hash', () => {
    const f = file([cond('a', [5, 6])]);
    expect(f.spec).toEqual(defaultSpec());
    expect(f.specHash).toBe(specHash(defaultSpec()));
    expect(f.conditions[0].tokenIds).toEqual([5, 6]);
    expect(f.conditions[0].metrics.restoration).toBeNull();
    expect(f.ranOn).toEqual({ place: 'cli', backend: 'cli' });
  });

  it('refuses what is not a results file, naming the field', () => {
    expect(parseResultsText('{')).toMatchObject({ ok: false });
    expect(parseResultsFile({ kind: 'piggyback-lab/export-plan' })).toEqual({
      ok: false,
      errors: ['this is an export plan, not results: run the exported script to get a results file'],
    });
    expect(parseResultsFile(defaultSpec())).toMatchObject({
      ok: false,
      errors: [expect.stringMatching(/^kind:/)],
    });
    const bad = JSON.parse(
      resultsFileJson(resultsFileOf(defaultSpec(), run([cond('a', [5])]), { place: 'cli', backend: 'x' })),
    );
    bad.conditions[0].tokenIds = [1.5];
    const r = parseResultsFile(bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatch(/^conditions\.0\.tokenIds\.0:/);
  });

  it('keeps a file whose spec no longer validates, with a warning and no spec', () => {
    const doc = JSON.parse(
      resultsFileJson(resultsFileOf(defaultSpec(), run([cond('a', [5])]), { place: 'python', backend: 'x' })),
    );
    doc.spec.version = 99;
    const r = parseResultsFile(doc);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.file.spec).toBeNull();
      expect(r.warnings[0]).toMatch(/its spec does not validate here/);
    }
  });
});

describe('compareResults', () => {
  it('identical answers are identical', () => {
    const c = compareResults(file([cond('a', [1, 2, 3])]), file([cond('a', [1, 2, 3])], 'python'));
    expect(c).toMatchObject({ sameSpec: true, identical: 1, different: 0 });
    expect(comparisonText(c)).toContain('= a: same answer ids');
  });

  it('finds the first differing token, an answer that ends early, a missing condition, differing trials', () => {
    const t = (index: number, tokenIds: number[]) => ({
      index,
      restoration: null,
      edited: [0],
      text: '',
      tokenIds,
    });
    const a = file([
      cond('x', [1, 2, 3]),
      cond('y', [1, 2]),
      cond('z', [4]),
      cond('p', [7], { trials: [t(0, [7]), t(1, [8])], shownTrial: 0 }),
    ]);
    const b = file([
      cond('x', [1, 9, 3]),
      cond('y', [1, 2, 5]),
      cond('p', [7], { trials: [t(0, [7]), t(1, [9])], shownTrial: 0 }),
      cond('w', [1]),
    ]);
    const c = compareResults(a, b);
    const by = (id: string) => c.conditions.find((x) => x.id === id)!;
    expect(by('x').firstDifference).toEqual({ index: 1, a: { id: 2 }, b: { id: 9 } });
    expect(by('y').firstDifference).toEqual({ index: 2, a: null, b: { id: 5 } });
    expect(by('z')).toMatchObject({ inA: true, inB: false, sameAnswer: false });
    expect(by('w')).toMatchObject({ inA: false, inB: true });
    expect(by('p')).toMatchObject({
      sameAnswer: true,
      trials: [
        { index: 0, same: true },
        { index: 1, same: false },
      ],
    });
    expect(c).toMatchObject({ identical: 0, different: 5 });
    const text = comparisonText(c);
    expect(text).toContain('≠ x: answers differ from token 1 (a: 2, b: 9)');
    expect(text).toContain('≠ y: answers differ from token 2 (a: end, b: 5)');
    expect(text).toContain('only in a');
    expect(text).toContain('same answer; trials 1 differ');
  });
});
