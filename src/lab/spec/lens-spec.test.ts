// spec.lens: optional, bounded, and carried by share links.
import { describe, expect, it } from 'vitest';
import { defaultSpec, parseSpec } from './experiment';
import { decodeLink, encodeLink } from './link';

describe('spec.lens', () => {
  it('is optional: the default spec has none and parses', () => {
    const s = defaultSpec();
    expect(s.lens).toBeUndefined();
    expect(parseSpec(s).ok).toBe(true);
  });

  it('accepts its fields and refuses out-of-range or unknown ones, naming the path', () => {
    const ok = parseSpec({
      ...defaultSpec(),
      lens: { topK: 10, positions: 'answer', answerTokens: 4, track: ['Sure'] },
    });
    expect(ok.ok).toBe(true);
    for (const [lens, path] of [
      [{ topK: 0 }, 'lens.topK'],
      [{ topK: 51 }, 'lens.topK'],
      [{ positions: 'middle' }, 'lens.positions'],
      [{ answerTokens: 33 }, 'lens.answerTokens'],
      [{ track: Array(9).fill('a') }, 'lens.track'],
      [{ colour: 'red' }, 'lens'],
    ] as const) {
      const r = parseSpec({ ...defaultSpec(), lens });
      expect(r.ok, JSON.stringify(lens)).toBe(false);
      if (!r.ok) expect(r.errors.join('\n')).toContain(path);
    }
  });

  it('round-trips through a share link', () => {
    const s = { ...defaultSpec(), lens: { topK: 7, positions: 'answer' as const, track: ['I'] } };
    const link = encodeLink(s, 'https://lab.example.org/');
    expect(link.ok).toBe(true);
    const back = link.ok ? decodeLink(link.url) : null;
    expect(back?.ok && back.spec.lens).toEqual(s.lens);
  });
});
