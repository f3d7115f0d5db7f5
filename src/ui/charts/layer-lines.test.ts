import { describe, expect, it } from 'vitest';
import { layoutLegend } from './layer-lines';

describe('layoutLegend', () => {
  const names = ['L_K', 'L_V', 'L_K (paper code)', 'L_V (paper code)'];

  it('keeps every entry on one row when the chart is wide', () => {
    const rows = layoutLegend(names, 1000);
    expect(rows.map((r) => r.row)).toEqual([0, 0, 0, 0]);
    expect(rows.map((r) => r.x)).toEqual([0, 48, 96, 222]);
  });

  it('wraps onto new rows on a phone-width chart, every entry ending inside the width', () => {
    const maxWidth = 270; // a 344 px svg minus the margins
    const rows = layoutLegend(names, maxWidth);
    expect(rows.map((r) => r.row)).toEqual([0, 0, 0, 1]);
    rows.forEach((r, i) => expect(r.x + 30 + names[i].length * 6 - 12).toBeLessThanOrEqual(maxWidth));
    expect(rows[3].x).toBe(0);
  });

  it('gives an entry wider than a row a row of its own instead of an empty row first', () => {
    const rows = layoutLegend(['a very long series name indeed', 'b'], 60);
    expect(rows).toEqual([
      { x: 0, row: 0 },
      { x: 0, row: 1 },
    ]);
    expect(layoutLegend([], 100)).toEqual([]);
  });
});
