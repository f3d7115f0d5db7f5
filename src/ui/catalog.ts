// Known base / finetuned pairs offered in the models panel until the hub issue provides the real
// catalog: the paper's small public emergent-misalignment organisms (PEFT LoRA adapters). Data only;
// it must never fetch anything.
import type { ExperimentSpec } from '../lab/experiment';

export interface CatalogPair {
  id: string;
  label: string;
  models: ExperimentSpec['models'];
  note: string;
}

const organism = (base: string, finetune: string, label: string): CatalogPair => ({
  id: `${base}:${finetune}`.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
  label,
  models: {
    base: { source: { kind: 'hub', repo: base }, role: 'base' },
    finetuned: {
      source: { kind: 'hub', repo: base },
      adapter: { kind: 'hub', repo: finetune },
      role: 'finetuned',
    },
  },
  note: 'LoRA adapter on the base (PAPER.md “Small public EM organisms”)',
});

export const CATALOG: readonly CatalogPair[] = [
  organism(
    'unsloth/Qwen2.5-0.5B-Instruct',
    'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice',
    'Qwen2.5-0.5B · bad medical advice',
  ),
  organism(
    'unsloth/Qwen2.5-0.5B-Instruct',
    'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_risky-financial-advice',
    'Qwen2.5-0.5B · risky financial advice',
  ),
  organism(
    'unsloth/Qwen2.5-0.5B-Instruct',
    'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_extreme-sports',
    'Qwen2.5-0.5B · extreme sports',
  ),
  organism(
    'unsloth/Llama-3.2-1B-Instruct',
    'ModelOrganismsForEM/Llama-3.2-1B-Instruct_bad-medical-advice',
    'Llama-3.2-1B · bad medical advice',
  ),
];
