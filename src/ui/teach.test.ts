import { describe, expect, it } from 'vitest';
import { parseSpec } from '../lab/spec/experiment';
import { TEACH } from './teach';

describe('teach presets', () => {
  it('are four, each a valid spec with a few sentences', () => {
    expect(TEACH.map((t) => t.id)).toEqual(['prefix', 'perturb', 'patch', 'treft']);
    for (const t of TEACH) {
      const r = parseSpec(t.build());
      expect(r.ok, r.ok ? '' : r.errors.join('\n')).toBe(true);
      expect(t.body.length).toBeGreaterThanOrEqual(2);
    }
  });
});
