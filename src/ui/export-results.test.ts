import { describe, expect, it } from 'vitest';
import type { ConditionResult, PromptView, SweepResult } from '../lab/spec/results';
import { conditionsToCsv, csvField, resultsToJson, sweepToCsv } from './export-results';

const prompt: PromptView = {
  text: 'ab',
  tokens: [
    { id: 1, text: 'a', segment: 'prefix' },
    { id: 2, text: 'b', segment: 'query', edited: true },
  ],
  segments: { prefix: [0, 1], query: [1, 2], postfix: [2, 2] },
  templateArgs: {},
};

const cond = (over: Partial<ConditionResult>): ConditionResult => ({
  id: 'base',
  label: 'Base',
  model: 'base',
  prompt,
  text: 'Hello, "world"\nbye',
  tokenIds: [5, 6, 7],
  done: true,
  metrics: { klToBase: 0, restoration: null },
  nextToken: [{ id: 5, text: 'Hello', prob: 0.5 }],
  ...over,
});

describe('csv export', () => {
  it('quotes and defuses fields', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('=cmd()')).toBe("'=cmd()");
    expect(csvField(-1.5)).toBe('-1.5');
    expect(csvField(Number.NaN)).toBe('');
    expect(csvField(null)).toBe('');
  });
  it('writes one row per condition with a header', () => {
    const csv = conditionsToCsv([
      cond({}),
      cond({ id: 'ft', label: 'Finetuned', metrics: { klToBase: 0.25 } }),
    ]);
    const lines = csv.trimEnd().split('\n');
    expect(lines[0].startsWith('id,label,model,done,kl_to_base')).toBe(true);
    expect(csv).toContain('"Hello, ""world""\nbye"');
    expect(csv).toContain('ft,Finetuned,base,true,0.25');
    expect(lines.length).toBe(5); // header + 2 rows, each holding a quoted newline
  });
  it('writes the sweep grid long-form', () => {
    const sweep: SweepResult = {
      component: 'kv',
      metric: 'restoration',
      layers: [0, 1],
      positions: [0, 1, 2],
      positionLabels: ['<s>', 'a', 'b'],
      values: [0, 0.1, 0.2, 1, Number.NaN, 0.5],
      done: false,
    };
    const lines = sweepToCsv(sweep).trimEnd().split('\n');
    expect(lines).toHaveLength(7);
    expect(lines[4]).toBe('kv,restoration,1,0,<s>,1');
    expect(lines[5]).toBe('kv,restoration,1,1,a,');
  });
  it('writes valid JSON with NaN as null', () => {
    const json = resultsToJson({
      kind: 'piggyback-lab/results',
      spec: {},
      backend: 'wasm',
      prompt,
      conditions: [],
      sweeps: [
        {
          component: 'kv',
          metric: 'm',
          layers: [0],
          positions: [0],
          positionLabels: ['x'],
          values: [Number.NaN],
          done: true,
        },
      ],
      drift: null,
    });
    expect(JSON.parse(json).sweeps[0].values).toEqual([null]);
  });
});
