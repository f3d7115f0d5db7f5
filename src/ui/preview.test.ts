import { describe, expect, it } from 'vitest';
import type { Condition } from '../lab/spec/experiment';
import type { PromptView } from '../lab/spec/results';
import { previewPrompt, segmentIndex, tokenTexts, UNKNOWN_ID } from './preview';

const base: PromptView = {
  text: '<s>sys\nhi there<e>',
  tokens: [
    { id: 1, text: '<s>', segment: 'prefix' },
    { id: 2, text: 'sys', segment: 'prefix' },
    { id: 3, text: '\n', segment: 'prefix' },
    { id: 4, text: 'hi', segment: 'query' },
    { id: 5, text: ' there', segment: 'query' },
    { id: 6, text: '<e>', segment: 'postfix' },
  ],
  segments: { prefix: [0, 3], query: [3, 5], postfix: [5, 6] },
  templateArgs: {},
};

const cond = (c: Partial<Condition>): Condition => ({ id: 'x', label: 'x', model: 'finetuned', ...c });

describe('prompt preview', () => {
  it('is the base prompt without a perturbation and null for a random one', () => {
    expect(previewPrompt(base, cond({}))).toBe(base);
    expect(
      previewPrompt(
        base,
        cond({ perturbation: { kind: 'random', segment: 'prefix', k: 1, n: 1, trials: 1, seed: 0 } }),
      ),
    ).toBeNull();
  });

  it('applies edits and marks them, naming known ids', () => {
    const p = previewPrompt(
      base,
      cond({
        perturbation: {
          kind: 'edits',
          edits: [
            { op: 'replace', segment: 'prefix', index: 1, token: { id: 5 } },
            { op: 'insert', segment: 'prefix', index: 0, token: { text: 'X' } },
            { op: 'delete', segment: 'prefix', index: 2 },
          ],
        },
      }),
      { texts: tokenTexts([base]) },
    );
    expect(p).not.toBeNull();
    expect(p!.tokens.map((t) => t.text)).toEqual(['X', '<s>', ' there', 'hi', ' there', '<e>']);
    expect(p!.tokens.map((t) => !!t.edited)).toEqual([true, false, true, false, false, false]);
    expect(p!.tokens[0].id).toBe(UNKNOWN_ID);
    expect(p!.segments.prefix).toEqual([0, 3]);
  });

  it('gives null for edits that do not fit the prompt', () => {
    expect(
      previewPrompt(
        base,
        cond({ perturbation: { kind: 'edits', edits: [{ op: 'delete', segment: 'query', index: 9 }] } }),
      ),
    ).toBeNull();
  });

  it('maps absolute positions to segment indexes', () => {
    expect(segmentIndex(base, 4)).toEqual({ segment: 'query', index: 1 });
  });
});
