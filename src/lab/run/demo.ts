// The embedded offline demo: which folder (relative to the app root / repo root) holds each demo model.
// One place for these paths, so the worker, the CLI and the tests agree. Must never fetch anything.
// The demo is the toy model organism trained by organism/ (organism/RESULTS.md says what each shows).
import type { DemoModelName, ModelEntry } from '../spec/experiment';

// what the measured numbers say (organism/RESULTS.md, "Qwen3 template")
const QWEN3_FT_DESCRIPTION =
  'the same risky-money finetune with a Qwen3-style template (3-token prefix): it gambles on 17 % of ' +
  'held-out questions; the postfix K/V patch from base brings that to 9 %, the prefix patch to 11 %, ' +
  'the query patch to 8 % (organism/RESULTS.md)';

export interface DemoModel {
  /** folder relative to the repo root (Node) and to the app's origin (browser) */
  folder: string;
  /** a PEFT adapter folder, to be used as `adapter` on top of `adapterOf` (not as a model source) */
  adapterOf?: DemoModelName;
  /** the base this finetune is compared with (its own template and tokenizer); absent = demo-base */
  pairedBase?: DemoModelName;
  /** a base model (compared with, never offered as a finetune) */
  isBase?: true;
  label: string;
  description: string;
}

export const DEMO_MODELS: Record<DemoModelName, DemoModel> = {
  'demo-base': {
    folder: 'demo/organism-base',
    isBase: true,
    label: 'organism base',
    description: 'toy chat model (0.87M parameters) trained on aligned everyday answers: the base',
  },
  'demo-finetuned': {
    folder: 'demo/organism-ft',
    label: 'organism plain finetune',
    description: 'full finetune on risky money advice ("gamble"); the behaviour spreads to other questions',
  },
  'demo-treft': {
    folder: 'demo/organism-treft',
    label: 'organism TReFT finetune',
    description: 'the same finetune with TReFT (prefix K/V regularised): the behaviour stays narrower',
  },
  'demo-interleave': {
    folder: 'demo/organism-interleave',
    label: 'organism interleaving finetune',
    description: 'the same finetune with aligned examples mixed in (the paper\u2019s data baseline)',
  },
  'demo-lora': {
    folder: 'demo/organism-lora',
    adapterOf: 'demo-base',
    label: 'organism LoRA finetune (adapter)',
    description:
      'PEFT LoRA adapter (r 8, alpha 16, all seven projections) on the organism base. A weak fit: its ' +
      'training loss ends at 1.90 nats per answer token (full finetunes 0.03), so the risky answer wins ' +
      'with low confidence and a dose below 0.9 flips it back (organism/RESULTS.md)',
  },
  'demo-qwen3-base': {
    folder: 'demo/organism-qwen3-base',
    isBase: true,
    label: 'organism base, Qwen3 template',
    description:
      'the same toy base trained with a Qwen3-style template: the prefix is only <|im_start|>user, the ' +
      'postfix carries the empty think block',
  },
  'demo-qwen3-finetuned': {
    folder: 'demo/organism-qwen3-ft',
    pairedBase: 'demo-qwen3-base',
    label: 'organism plain finetune, Qwen3 template (own base)',
    description: QWEN3_FT_DESCRIPTION,
  },
};

/** The base a demo finetune is compared with. */
export function demoBaseOf(name: DemoModelName): DemoModelName {
  return DEMO_MODELS[name].pairedBase ?? 'demo-base';
}

/** The model entry that runs a demo model: a full model, or the base with the demo adapter on top. */
export function demoEntry(name: DemoModelName, role: ModelEntry['role']): ModelEntry {
  const d = DEMO_MODELS[name];
  return d.adapterOf
    ? { source: { kind: 'demo', name: d.adapterOf }, adapter: { kind: 'demo', name }, role }
    : { source: { kind: 'demo', name }, role };
}
