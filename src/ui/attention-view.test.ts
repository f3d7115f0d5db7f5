import { describe, expect, it } from 'vitest';
import type { AttentionResult, SweepResult } from '../lab/spec/results';
import { defaultSpec, parseSpec } from '../lab/spec/experiment';
import {
  attentionToCsv,
  headSweepHeatmap,
  headSweepToCsv,
  prefixDiffHeatmap,
  regionMeans,
  strongestPrefixHead,
} from './attention-view';
import { addHeadPatchCondition } from './spec-edit';

// 2 layers × 2 heads × 4 regions
const mass = [0.5, 0.2, 0.2, 0.1, 0.7, 0.1, 0.1, 0.1, 0.2, 0.3, 0.4, 0.1, 0.4, 0.2, 0.2, 0.2];
const R: AttentionResult = {
  layers: [0, 1],
  heads: 2,
  kvHeads: 1,
  regions: ['prefix', 'query', 'postfix', 'answer'],
  answerTokens: 2,
  conditions: [
    { id: 'ft', label: 'Finetuned', model: 'finetuned', mass, answerPositions: [9, 10], answerText: 'Gam' },
    {
      id: 'bad',
      label: 'broken',
      model: 'finetuned',
      mass: [],
      answerPositions: [],
      answerText: '',
      error: 'x',
    },
  ],
  prefixDiff: [0.1, -0.3, 0.05, 0.2],
  basePrefixMass: [0.4, 0.9, 0.2, 0.3],
  finetunedPrefixMass: [0.5, 0.6, 0.25, 0.5],
};

describe('attention view helpers', () => {
  it('means over heads per layer and region; the strongest head by |diff|', () => {
    const m = regionMeans(R, mass);
    expect(m[0].map((x) => +x.toFixed(6))).toEqual([0.6, 0.15, 0.15, 0.1]);
    expect(m[1].map((x) => +x.toFixed(6))).toEqual([0.3, 0.25, 0.3, 0.15]);
    expect(strongestPrefixHead(R)).toEqual({ layer: 0, head: 1, diff: -0.3, base: 0.9, finetuned: 0.6 });
    const d = prefixDiffHeatmap(R);
    expect(d.positionLabels).toEqual(['h0', 'h1']);
    expect(d.values).toBe(R.prefixDiff);
  });

  it('CSV: every condition × layer × head × region (failed conditions left out), then the diff rows', () => {
    const lines = attentionToCsv(R).trim().split('\n');
    expect(lines[0]).toBe('condition,layer,head,region,mass,answer_tokens');
    expect(lines).toHaveLength(1 + 16 + 4);
    expect(lines[1]).toBe('ft,0,0,prefix,0.5,2');
    expect(lines[16]).toBe('ft,1,1,answer,0.2,2');
    expect(lines[18]).toBe('finetuned-minus-base,0,1,prefix,-0.3,2');
  });

  it('per-head sweep: heatmap columns are KV heads; CSV names the patched positions; a click adds a valid condition', () => {
    const s: SweepResult = {
      component: 'kv',
      metric: 'restoration',
      layers: [0, 1],
      positions: [0, 1],
      positionLabels: ['h0', 'h1'],
      values: [0.1, 0.2, 0.3, NaN],
      done: true,
      axis: 'head',
      patchedPositions: [0, 1, 2],
    };
    expect(headSweepHeatmap(s).rowMeans!.map((x) => +x.toFixed(6))).toEqual([0.15, 0.3]);
    const lines = headSweepToCsv(s).trim().split('\n');
    expect(lines[0]).toBe('metric,layer,kv_head,value,patched_positions');
    expect(lines[2]).toBe('restoration,0,1,0.2,0 1 2');
    expect(lines[4]).toBe('restoration,1,1,,0 1 2');
    const { spec, id } = addHeadPatchCondition(defaultSpec(), { layer: 2, head: 1 });
    expect(id).toBe('kv-l2-h1');
    const c = spec.conditions.find((x) => x.id === id)!;
    expect(c.patch).toEqual({
      component: 'kv',
      layers: [2],
      positions: 'prefix',
      source: 'base',
      heads: [1],
    });
    expect(parseSpec(spec).ok).toBe(true);
  });
});
