import { describe, expect, it } from 'vitest';
import type { LensResult } from '../../lab/spec/results';
import { lensGrid, lensToCsv, probColour } from './lens';

const result: LensResult = {
  sites: [0, 1, 2],
  tracked: [
    { id: 5, text: 'Sure', role: 'finetuned' },
    { id: 9, text: 'I', role: 'base' },
  ],
  mode: 'first',
  topK: 2,
  conditions: [
    {
      id: 'base',
      label: 'Base',
      model: 'base',
      positions: [
        {
          position: 7,
          label: '\n',
          tracked: [
            [0.1, 0.2],
            [0.3, 0.4],
            [0.05, 0.9],
          ],
          top: [
            [
              { id: 1, text: 'a', prob: 0.5 },
              { id: 2, text: 'b', prob: 0.2 },
            ],
            [
              { id: 9, text: 'I', prob: 0.4 },
              { id: 5, text: 'Sure', prob: 0.3 },
            ],
            [
              { id: 9, text: 'I', prob: 0.9 },
              { id: 5, text: 'Sure', prob: 0.05 },
            ],
          ],
        },
      ],
    },
    { id: 'broken', label: 'Broken', model: 'finetuned', positions: [], error: 'no model' },
  ],
};

describe('lens chart data', () => {
  it('picks site × condition cells of one tracked token, NaN for a failed condition', () => {
    const g = lensGrid(result, 1, 0);
    expect(g.cells).toHaveLength(6);
    expect(g.cells.filter((c) => c.condition === 'base').map((c) => c.value)).toEqual([0.2, 0.4, 0.9]);
    expect(g.cells.find((c) => c.condition === 'broken')!.value).toBeNaN();
    expect(g.cells[4].top[0].text).toBe('I');
    expect(lensGrid(result, 0, 0).cells[0].value).toBe(0.1);
  });

  it('colours by probability and the CSV has one row per condition × position × site', () => {
    expect(probColour(0)).toBe('rgb(255,255,255)');
    expect(probColour(1)).toBe('rgb(33,84,166)');
    expect(probColour(NaN)).toBe('#e6e6e6');
    const lines = lensToCsv(result).trim().split('\n');
    expect(lines[0]).toBe(
      'condition,position,token,next,site,p(Sure) [finetuned],p(I) [base],top1,top1_prob,top2,top2_prob',
    );
    expect(lines).toHaveLength(1 + 3);
    expect(lines[3]).toBe('base,7,\\n,,2,0.05,0.9,I,0.9,Sure,0.05');
  });
});
