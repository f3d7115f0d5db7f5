import { describe, expect, it } from 'vitest';
import { parseSpec } from '../lab/spec/experiment';
import { TEACH } from './teach';

describe('teach presets', () => {
  it('are five, each a valid spec with a few sentences', () => {
    expect(TEACH.map((t) => t.id)).toEqual(['prefix', 'perturb', 'patch', 'treft', 'postfix']);
    for (const t of TEACH) {
      const r = parseSpec(t.build());
      expect(r.ok, r.ok ? '' : r.errors.join('\n')).toBe(true);
      expect(t.body.length).toBeGreaterThanOrEqual(2);
    }
  });
});

describe('the postfix lesson', () => {
  it('runs exactly the conditions of examples/demo-postfix.json (whose numbers a lab test checks)', async () => {
    const fs = await import('node:fs');
    const file = JSON.parse(
      fs.readFileSync(new URL('../../examples/demo-postfix.json', import.meta.url), 'utf8'),
    );
    const lesson = TEACH.find((t) => t.id === 'postfix')!.build();
    expect(lesson.conditions).toEqual(file.conditions);
    expect(lesson.models).toEqual(file.models);
    expect(lesson.conversation).toEqual(file.conversation);
  });
});
