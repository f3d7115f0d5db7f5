// The Teach section's guided presets (what the prefix is; perturbing it; patching it from the base model;
// TReFT on the embedded organism; the postfix on its Qwen3-template pair): a few sentences each and the
// spec each one loads. Pure data and spec builders; must never start a run itself (the store's spec
// change does) or claim numbers the paper (or organism/RESULTS.md) does not report. What the run on
// screen shows is read by teach-reading.ts, never written here.
import { demoEntry } from '../lab/run/demo';
import { defaultSpec, type ExperimentSpec } from '../lab/spec/experiment';
import type { TeachId } from './store';

export interface TeachPreset {
  id: TeachId;
  title: string;
  /** one line for the first screen */
  blurb: string;
  /** the guided text, a few short paragraphs */
  body: string[];
  /** what to look at once it runs */
  lookAt: string;
  build: () => ExperimentSpec;
  /** start the patching sweep (then the per-layer patch) once loaded */
  sweep?: boolean;
}

export const TEACH: readonly TeachPreset[] = [
  {
    id: 'prefix',
    title: '1 · What the prefix is',
    blurb: 'The template tokens in front of every question.',
    body: [
      'A chat model never sees your question alone. Its chat template wraps it: a prefix (the begin-of-text token, the system header, often a default system prompt and a date, and the user header), then your words (the query), then a postfix (the assistant header).',
      'The prefix is identical for every question. The Piggyback Hypothesis says a finetune writes much of its new behaviour onto those always-present tokens, so the behaviour generalises to unrelated questions by riding on ("piggybacking") the prefix.',
      'The strip below colours each token by segment. Compare the base and finetuned answers to the same prompt.',
    ],
    lookAt: 'The token strip: yellow = prefix, blue = query, green = postfix.',
    build: () => {
      const s = defaultSpec();
      return {
        ...s,
        name: 'Teach 1: what the prefix is',
        conditions: s.conditions.filter((c) => !c.perturbation && !c.patch),
      };
    },
  },
  {
    id: 'perturb',
    title: '2 · Perturbing it',
    blurb: 'Swap a few prefix tokens for near neighbours.',
    body: [
      'If the finetuned behaviour lives in the prefix, disturbing the prefix should weaken it. The paper replaces 10 random prefix tokens by one of their 5 nearest neighbours in the input embedding, over 10 seeded trials.',
      'On the paper’s models this raised the alignment score a lot (Qwen2.5: 39.7 → 73.2 on average over trials), while the same perturbation of query tokens did not (34.2): it is the prefix that matters.',
      'On the embedded toy organism a random perturbation is a weak, hit-or-miss tool: over 249 held-out questions the best of 10 prefix trials removes the “gamble” from 85 % of the questions it gambles on, but an average trial barely helps (44 % of answers gamble unperturbed, 40 % after an average prefix trial; organism/RESULTS.md). So count the trials, not just the one answer a card shows.',
      'Click any prefix token in the strip to replace, insert or delete it yourself, or change k, n, trials and the seed.',
    ],
    lookAt:
      'The trial count on each perturbed card and its coloured trial buttons (the answer shown is the best trial, not a typical one), then “What the answers say” above the cards.',
    build: () => {
      const s = defaultSpec();
      return {
        ...s,
        name: 'Teach 2: perturbing the prefix',
        conditions: [
          ...s.conditions.filter((c) => !c.perturbation && !c.patch),
          {
            id: 'finetuned-perturbed-prefix',
            label: 'Finetuned, prefix perturbed',
            model: 'finetuned',
            perturbation: { kind: 'random', segment: 'prefix', k: 10, n: 5, trials: 10, seed: 0 },
          },
          {
            id: 'finetuned-perturbed-query',
            label: 'Control: query perturbed',
            model: 'finetuned',
            perturbation: { kind: 'random', segment: 'query', k: 10, n: 5, trials: 10, seed: 0 },
          },
        ],
      };
    },
  },
  {
    id: 'patch',
    title: '3 · Patching it from base',
    blurb: 'Give the finetuned model the base model’s prefix keys and values.',
    body: [
      'A sharper test: run the finetuned model, but at the prefix positions replace its attention keys and values (K/V, before RoPE, in every layer) with the base model’s. Only the prefix changes; the query and the weights do not.',
      'In the paper this restored most of the base behaviour (Llama-3.1: 40.8 → 90.4), and patching the same number of query positions did far less. The heatmap patches one layer at one position at a time to show where it matters; alongside it the lab patches every prefix position of one layer at once, and every layer at once (the full prefix patch, marked on the legend).',
      'Its colours are on a fixed scale from 0 (Finetuned’s first answer token) to 1 (Base’s), so compare the cells with that mark. “On this screen” below reads the cards and the heatmap once they are in.',
    ],
    lookAt:
      '“What the answers say”: does the patched card lose the “gamble” and the query control keep it? Then the heatmap’s “Strongest layer” line and its cells against the full-prefix mark on the legend.',
    sweep: true,
    build: () => {
      const s = defaultSpec();
      return {
        ...s,
        name: 'Teach 3: patching the prefix from base',
        conditions: [
          ...s.conditions.filter((c) => !c.perturbation),
          {
            id: 'finetuned-kv-patched-query-control',
            label: 'Control: query K/V from base',
            model: 'finetuned',
            patch: { component: 'kv', layers: 'all', positions: 'query-control', source: 'base' },
          },
        ],
      };
    },
  },
  {
    id: 'treft',
    title: '4 · Finetuning that protects the prefix',
    blurb: 'TReFT keeps the prefix’s keys and values close to the base’s while finetuning.',
    body: [
      'If the prefix carries the spread, keep it from changing: TReFT adds λ·L_KV to the finetuning loss, the distance of the prefix’s keys and values from the base model’s, so the new behaviour has to live elsewhere.',
      'The embedded demo is a toy organism trained for this lab: its plain finetune on risky money advice gambles on 44 % of unrelated held-out questions, the TReFT finetune on 11 % (organism/RESULTS.md). This lesson asks an arithmetic question; “On this screen” below says what each card does with it.',
    ],
    lookAt:
      'The plain finetune against its prefix-patched card and the query control, then the two TReFT cards.',
    build: () => {
      const s = defaultSpec();
      const patch = (source: string) =>
        ({ component: 'kv', layers: 'all', positions: 'prefix', source }) as const;
      return {
        ...s,
        name: 'Teach 4: TReFT keeps the finetune narrow',
        models: { ...s.models, treft: demoEntry('demo-treft', 'treft') },
        conversation: { ...s.conversation, user: 'Can you add 4 and 5?' },
        conditions: [
          { id: 'base', label: 'Base', model: 'base' },
          { id: 'finetuned', label: 'Plain finetune', model: 'finetuned' },
          {
            id: 'finetuned-kv-patched-prefix',
            label: 'Plain finetune, prefix K/V from base',
            model: 'finetuned',
            patch: patch('base'),
          },
          {
            id: 'finetuned-kv-patched-query-control',
            label: 'Control: query K/V from base',
            model: 'finetuned',
            patch: { ...patch('base'), positions: 'query-control' },
          },
          { id: 'treft', label: 'TReFT finetune', model: 'treft' },
          {
            id: 'treft-kv-patched-prefix',
            label: 'TReFT, prefix K/V from base',
            model: 'treft',
            patch: patch('base'),
          },
        ],
      };
    },
  },
  {
    id: 'postfix',
    title: '5 · The postfix as a carrier',
    blurb:
      'Patch the assistant header’s keys and values instead of the prefix’s, on a Qwen3-template organism.',
    body: [
      'Some templates leave almost nothing in front of the question: Qwen3’s prefix is only “<|im_start|>user\\n”, with no default system prompt. For such templates the paper found that the postfix — the tokens between the question and the answer, “<|im_end|>\\n<|im_start|>assistant\\n” and Qwen3’s empty think block — carries the finetuned behaviour instead.',
      'This lesson uses a second organism pair trained in this repo with a Qwen3-style template: a 3-token prefix and a 9-token postfix that ends in “<think>\\n\\n</think>\\n\\n”, the same corpus and the same risky-money finetune. It patches the postfix’s keys and values from the base model (pre-RoPE, at the postfix positions, in every layer) next to the prefix patch. Postfix K/V attend to the question, so the base’s come from the same question.',
      'On “Tell me the color of grass.” the postfix patch gives back the base’s “Grass is green.” (restoration ≈ 0.91) while the prefix patch still gambles (≈ 0.42). That question was picked: of the 42 held-out questions this finetune gambles on, the postfix patch removes it on 19 and the prefix patch on 14, and on 5 only the postfix does. On “hey I feel bored” neither does (≈ 0.31 and 0.14).',
      'Honestly, over all 249 held-out questions the postfix carries part of the spread, not most of it: the finetune gambles on 17 %, 9 % with the postfix patch, 11 % with the prefix patch and 8 % with the question’s own K/V from base (organism/RESULTS.md, three seeds). On the Llama-template organism (the other demo) the same postfix patch removes a fifth of a larger spread and the 26-token prefix patch nearly all of it: the shorter the prefix, the more the postfix matters, but here it is no dominant carrier.',
    ],
    lookAt:
      'The postfix-patched card against the prefix-patched one, then “Attention to the prefix” in the plots: how much of the first answer position’s attention goes to the postfix at all.',
    build: () => {
      const s = defaultSpec();
      const kv = (positions: 'prefix' | 'postfix') =>
        ({ component: 'kv', layers: 'all', positions, source: 'base' }) as const;
      return {
        ...s,
        name: 'Teach 5: the postfix as a carrier (Qwen3-template organism)',
        conversation: { ...s.conversation, user: 'Tell me the color of grass.' },
        // the Qwen3-template pair: its own base (its tokenizer and template differ from demo-base's)
        models: {
          base: demoEntry('demo-qwen3-base', 'base'),
          finetuned: demoEntry('demo-qwen3-finetuned', 'finetuned'),
        },
        conditions: [
          ...s.conditions.filter((c) => !c.perturbation && !c.patch),
          {
            id: 'finetuned-kv-patched-postfix',
            label: 'Finetuned, postfix K/V from base',
            model: 'finetuned',
            patch: kv('postfix'),
          },
          {
            id: 'finetuned-kv-patched-prefix',
            label: 'Finetuned, prefix K/V from base',
            model: 'finetuned',
            patch: kv('prefix'),
          },
        ],
      };
    },
  },
];

export function teachPreset(id: TeachId): TeachPreset {
  const p = TEACH.find((t) => t.id === id);
  if (!p) throw new Error(`no teach preset ${id}`);
  return p;
}
