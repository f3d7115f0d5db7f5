// The catalog's numbers (sizes against the model cards), its spec fragments (valid specs), and the
// adapter → base mapping messages.
import { describe, expect, it } from 'vitest';
import {
  CATALOG_MODELS,
  CATALOG_ORGANISMS,
  canonicalRepo,
  catalogPairs,
  downloadBytes,
  estimateCatalog,
  findCatalogModel,
  findOrganism,
  loraParameters,
  mapAdapterBase,
} from './catalog';
import { defaultSpec, parseSpec } from '../spec/experiment';

const model = (repo: string) => {
  const m = findCatalogModel(repo);
  if (!m) throw new Error(repo);
  return m;
};

describe('catalog', () => {
  it('parameter counts match the model cards', () => {
    const params = (repo: string) => estimateCatalog(model(repo), 'fp32', 1).parameters;
    expect(params('Qwen/Qwen2.5-0.5B-Instruct')).toBe(494_032_768);
    expect(params('meta-llama/Llama-3.2-1B-Instruct')).toBe(1_235_814_400);
    expect(params('HuggingFaceTB/SmolLM2-135M-Instruct')).toBe(134_515_008);
    expect(params('HuggingFaceTB/SmolLM2-360M-Instruct')).toBe(361_821_120);
    expect(params('Qwen/Qwen3-0.6B')).toBe(596_049_920);
    // Gemma: tied 262k / 256k embeddings, four norms per layer (sandwich) and q/k norms on Gemma-3
    expect(params('google/gemma-3-1b-it')).toBe(999_885_952);
    expect(params('google/gemma-3-270m-it')).toBe(268_098_176);
    expect(params('google/gemma-2-2b-it')).toBe(2_614_341_888);
    expect(downloadBytes(model('Qwen/Qwen2.5-0.5B-Instruct'))).toBe(988_065_536);
  });

  it('lists the three Qwen2.5-0.5B organisms with their unsloth base, and the Llama ones', () => {
    const qwen = CATALOG_ORGANISMS.filter((o) => o.base === 'Qwen/Qwen2.5-0.5B-Instruct');
    expect(qwen.map((o) => o.repo)).toEqual([
      'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice',
      'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_extreme-sports',
      'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_risky-financial-advice',
    ]);
    expect(
      qwen.every((o) => o.declaredBase === 'unsloth/Qwen2.5-0.5B-Instruct' && o.r === 32 && o.alpha === 64),
    ).toBe(true);
    expect(CATALOG_ORGANISMS.filter((o) => o.base === 'meta-llama/Llama-3.2-1B-Instruct').length).toBe(3);
    expect(findOrganism('modelorganismsforem/qwen2.5-0.5b-instruct_extreme-sports')?.domain).toBe(
      'extreme sports',
    );
  });

  it('every pair is a valid spec fragment; organisms pair base and finetuned on one base', () => {
    const template = defaultSpec();
    const pairs = catalogPairs();
    expect(pairs.length).toBe(CATALOG_ORGANISMS.length + CATALOG_MODELS.length);
    for (const p of pairs) {
      expect(p.complete).toBe(p.organism !== null);
      const models = p.complete
        ? p.models
        : {
            ...p.models,
            finetuned: {
              source: { kind: 'local' as const, path: 'my-finetune' },
              role: 'finetuned' as const,
            },
          };
      const spec = {
        ...template,
        models,
        conditions: [{ id: 'base', label: 'base', model: 'base' }],
        conversation: { ...template.conversation, templateArgs: p.templateArgs },
      };
      const parsed = parseSpec(spec);
      expect(parsed.ok, `${p.id}: ${parsed.ok ? '' : parsed.errors.join('; ')}`).toBe(true);
      expect(p.downloadBytes).toBeGreaterThan(100e6);
    }
    const bad = pairs.find((p) => p.id === 'modelorganismsforem-qwen2-5-0-5b-instruct-bad-medical-advice');
    expect(bad?.models.finetuned).toEqual({
      source: { kind: 'hub', repo: 'Qwen/Qwen2.5-0.5B-Instruct' },
      adapter: { kind: 'hub', repo: 'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice' },
      role: 'finetuned',
    });
    expect(bad?.baseMapping?.kind).toBe('mirror');
    expect(bad?.baseMapping?.needsConfirmation).toBe(true);
    // r = 32 all-linear on Qwen2.5-0.5B: 17.6M parameters
    expect(loraParameters(model('Qwen/Qwen2.5-0.5B-Instruct').arch, 32)).toBe(17_596_416);
    const llama = pairs.find((p) => p.id.startsWith('modelorganismsforem-llama'));
    expect(llama?.templateArgs).toEqual({ date_string: '26 Jul 2024' });
    expect(llama?.base.gated).toBe(true);
  });
});

describe('adapter → base mapping', () => {
  it('maps the unsloth mirror to the original and back, asking to confirm', () => {
    expect(canonicalRepo('unsloth/Qwen2.5-0.5B-Instruct')).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(canonicalRepo('UNSLOTH/qwen2.5-0.5b-instruct')).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(canonicalRepo('someone/else')).toBe('someone/else');
    const m = mapAdapterBase('unsloth/Qwen2.5-0.5B-Instruct');
    expect(m).toMatchObject({ base: 'Qwen/Qwen2.5-0.5B-Instruct', kind: 'mirror', needsConfirmation: true });
    expect(m.message).toBe(
      'the adapter was trained on unsloth/Qwen2.5-0.5B-Instruct; unsloth/Qwen2.5-0.5B-Instruct is a re-upload of Qwen/Qwen2.5-0.5B-Instruct with the same weights. Load it on Qwen/Qwen2.5-0.5B-Instruct? (or choose unsloth/Qwen2.5-0.5B-Instruct itself)',
    );
    expect(mapAdapterBase('unsloth/Llama-3.2-1B-Instruct', 'meta-llama/Llama-3.2-1B-Instruct').kind).toBe(
      'mirror',
    );
  });

  it('same, unnamed, local path, different', () => {
    expect(mapAdapterBase('Qwen/Qwen3-0.6B', 'Qwen/Qwen3-0.6B')).toMatchObject({
      kind: 'same',
      needsConfirmation: false,
    });
    expect(mapAdapterBase(null, 'Qwen/Qwen3-0.6B')).toMatchObject({
      kind: 'unnamed',
      needsConfirmation: false,
    });
    expect(mapAdapterBase(null)).toMatchObject({ kind: 'unnamed', needsConfirmation: true });
    const local = mapAdapterBase('/home/me/models/qwen', 'Qwen/Qwen2.5-0.5B-Instruct');
    expect(local.kind).toBe('local-path');
    expect(local.message).toContain('confirm that Qwen/Qwen2.5-0.5B-Instruct is that model');
    const diff = mapAdapterBase('unsloth/Qwen2.5-0.5B-Instruct', 'Qwen/Qwen3-0.6B');
    expect(diff).toMatchObject({ kind: 'different', needsConfirmation: true });
    expect(diff.message).toContain('switch to unsloth/Qwen2.5-0.5B-Instruct');
  });

  it('takes extra mirror groups', () => {
    const m = mapAdapterBase('mirror/x', 'orig/x', [['orig/x', 'mirror/x']]);
    expect(m.kind).toBe('mirror');
    expect(m.message).toContain('mirror/x is a re-upload of orig/x');
  });
});
