import { describe, expect, it } from 'vitest';
import { defaultSpec } from '../lab/spec/experiment';
import { describeCondition } from './describe';

describe('condition descriptions', () => {
  it('describes the default demo conditions', () => {
    expect(defaultSpec().conditions.map(describeCondition)).toEqual([
      'base',
      'finetuned',
      'finetuned · 10 random prefix tokens → top-5 neighbours · 10 trials · seed 0',
      'finetuned · K/V from base · all layers · prefix positions',
    ]);
  });
  it('describes edits, picked positions and doses', () => {
    expect(
      describeCondition({
        id: 'x',
        label: 'x',
        model: 'finetuned',
        loraScale: 0.5,
        perturbation: { kind: 'edits', edits: [{ op: 'delete', segment: 'prefix', index: 0 }] },
        patch: {
          component: 'resid',
          layers: { from: 2, to: 4 },
          positions: { explicit: [1, 2] },
          source: 'base',
        },
      }),
    ).toBe('finetuned · LoRA dose 0.5 · 1 hand edit · residual from base · layers 2–4 · 2 picked positions');
  });
});
