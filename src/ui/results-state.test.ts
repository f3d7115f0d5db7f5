import { describe, expect, it } from 'vitest';
import { defaultSpec } from '../lab/spec/experiment';
import type { ConditionResult } from '../lab/spec/results';
import {
  applyCondition,
  applyToken,
  beginRun,
  conditionKey,
  endRun,
  isCurrent,
  isDone,
  pruneStates,
  staleConditions,
  type ConditionStates,
} from './results-state';
import { renameCondition, setPatch, setUser } from './spec-edit';

const spec = defaultSpec();

function finished(id: string, text: string): ConditionResult {
  return {
    id,
    label: id,
    model: 'finetuned',
    prompt: {
      text: '',
      tokens: [],
      segments: { prefix: [0, 0], query: [0, 0], postfix: [0, 0] },
      templateArgs: {},
    },
    text,
    tokenIds: [1, 2],
    done: true,
    metrics: { klToBase: 0.5 },
    nextToken: [],
  };
}

describe('results state', () => {
  it('streams tokens, then finishes', () => {
    let s: ConditionStates = beginRun({}, spec);
    expect(Object.keys(s)).toEqual(spec.conditions.map((c) => c.id));
    expect(s.base.status).toBe('queued');
    s = applyToken(s, spec, { condition: 'base', tokenId: 7, text: 'Hel' }, null);
    s = applyToken(s, spec, { condition: 'base', tokenId: 8, text: 'lo' }, null);
    expect(s.base.result?.text).toBe('Hello');
    expect(s.base.result?.tokenIds).toEqual([7, 8]);
    expect(s.base.status).toBe('streaming');
    expect(isDone(s.base, spec, 'base')).toBe(false);
    s = applyCondition(s, spec, finished('base', 'Hello'));
    expect(isDone(s.base, spec, 'base')).toBe(true);
  });

  it('a new run replaces the old answer on its first token', () => {
    let s = applyCondition(beginRun({}, spec), spec, finished('base', 'old answer'));
    s = beginRun(s, spec);
    expect(s.base.result?.text).toBe('old answer');
    expect(isDone(s.base, spec, 'base')).toBe(false);
    s = applyToken(s, spec, { condition: 'base', tokenId: 1, text: 'new' }, null);
    expect(s.base.result?.text).toBe('new');
  });

  it('marks results stale when the condition or conversation changes, not when renamed', () => {
    const s = applyCondition({}, spec, finished('finetuned-kv-patched-prefix', 'x'));
    const st = s['finetuned-kv-patched-prefix'];
    expect(isCurrent(st, spec, 'finetuned-kv-patched-prefix')).toBe(true);
    const renamed = renameCondition(spec, 'finetuned-kv-patched-prefix', 'Patched!');
    expect(isCurrent(st, renamed, 'finetuned-kv-patched-prefix')).toBe(true);
    const resid = setPatch(spec, 'finetuned-kv-patched-prefix', {
      component: 'resid',
      layers: 'all',
      positions: 'prefix',
      source: 'base',
    });
    expect(isCurrent(st, resid, 'finetuned-kv-patched-prefix')).toBe(false);
    expect(isCurrent(st, setUser(spec, 'hi'), 'finetuned-kv-patched-prefix')).toBe(false);
    expect(conditionKey(spec, 'nope')).toBeNull();
  });

  it('ends a run: unfinished conditions are cancelled; removed conditions are pruned', () => {
    let s = beginRun({}, spec);
    s = applyToken(s, spec, { condition: 'base', tokenId: 1, text: 'a' }, null);
    s = endRun(s, 'cancelled');
    expect(s.base.status).toBe('cancelled');
    expect(s.finetuned.status).toBe('cancelled');
    const fewer = { ...spec, conditions: spec.conditions.slice(0, 1) };
    expect(Object.keys(pruneStates(s, fewer))).toEqual(['base']);
  });

  it('re-runs only what is not final for the current spec', () => {
    let s: ConditionStates = beginRun({}, spec);
    for (const c of spec.conditions) s = applyCondition(s, spec, finished(c.id, c.id));
    expect(staleConditions(s, spec)).toEqual([]);
    const resid = setPatch(spec, 'finetuned-kv-patched-prefix', {
      component: 'resid',
      layers: 'all',
      positions: 'prefix',
      source: 'base',
    });
    expect(staleConditions(s, resid)).toEqual(['finetuned-kv-patched-prefix']);
    const next = beginRun(s, resid, ['finetuned-kv-patched-prefix']);
    expect(next.base.status).toBe('done');
    expect(next['finetuned-kv-patched-prefix'].status).toBe('queued');
    expect(staleConditions(s, setUser(spec, 'hi'))).toHaveLength(4);
  });
});
