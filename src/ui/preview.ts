// What a condition's prompt will look like before the worker has run it: the base prompt with the
// condition's token edits applied (lab/interventions/perturb.ts applyEdits), edited tokens marked. A typed
// replacement shows as one token with its text and id "?" until the worker tokenizes it. Pure; it must
// never tokenize by itself or guess what a random perturbation will pick (that needs the embedding).
import type { Condition } from '../lab/spec/experiment';
import { applyEdits, type TokenCodec } from '../lab/interventions/perturb';
import type { PromptToken, PromptView } from '../lab/spec/results';

/** Stand-in id for text the UI has not tokenized. */
export const UNKNOWN_ID = -1;

export interface PreviewOptions {
  /** texts of token ids the UI has seen (prompt tokens, neighbour lists) */
  texts?: ReadonlyMap<number, string>;
}

/**
 * The prompt `condition` runs, predicted from the base prompt; null when it cannot be predicted (a
 * random perturbation) or the edits do not apply. Without a perturbation it is the base prompt.
 */
export function previewPrompt(
  base: PromptView,
  condition: Condition | undefined,
  opts: PreviewOptions = {},
): PromptView | null {
  const p = condition?.perturbation;
  if (!p) return base;
  if (p.kind !== 'edits') return null;
  const codec: TokenCodec = { encode: (text) => (text.length ? [UNKNOWN_ID] : []) };
  try {
    const edited = applyEdits(base, p.edits, codec);
    const tokens: PromptToken[] = edited.tokens.map((t) => {
      const m = /^<(-?\d+)>$/.exec(t.text);
      if (t.edited && m) {
        const id = Number(m[1]);
        const text = opts.texts?.get(id);
        if (text !== undefined) return { ...t, text };
      }
      return t;
    });
    return {
      text: tokens.map((t) => t.text).join(''),
      tokens,
      segments: edited.segments,
      templateArgs: base.templateArgs,
    };
  } catch {
    return null;
  }
}

/** Token id → text for every token of the given prompts. */
export function tokenTexts(prompts: readonly (PromptView | null | undefined)[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const p of prompts) for (const t of p?.tokens ?? []) if (t.id >= 0 && !t.edited) m.set(t.id, t.text);
  return m;
}

/** Segment and index-in-segment of absolute position `pos` of the base prompt. */
export function segmentIndex(
  prompt: PromptView,
  pos: number,
): { segment: PromptToken['segment']; index: number } {
  const t = prompt.tokens[pos];
  const segment = t?.segment ?? 'postfix';
  return { segment, index: pos - prompt.segments[segment][0] };
}
