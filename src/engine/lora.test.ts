import { describe, expect, it } from 'vitest';
import { EngineError, type EngineErrorCode } from './errors';
import { loadLora, LORA_TARGETS, mergeLora, parseLoraConfig, targetWeightName } from './lora';
import { writeSafetensors, type WriteEntry } from './safetensors';
import { memorySource } from './files';
import { folderSource } from '../hub/folder-files-node';
import { tinyLora, tinySpec, tinyWeights } from './tiny-model';
import type { LoraAdapter, Tensor } from './types';
import { loadModel } from './weights';

const spec = tinySpec();

const CONFIG = {
  base_model_name_or_path: 'unsloth/Llama-3.2-1B-Instruct',
  bias: 'none',
  fan_in_fan_out: false,
  layers_to_transform: null,
  lora_alpha: 6,
  modules_to_save: null,
  peft_type: 'LORA',
  r: 3,
  rank_pattern: {},
  alpha_pattern: {},
  target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  task_type: 'CAUSAL_LM',
  use_dora: false,
  use_rslora: false,
};

/** PEFT's saved names: base_model.model.model.layers.{l}.{self_attn|mlp}.{t}.lora_{A|B}.weight */
function adapterFile(adapter: LoraAdapter, edit?: (m: Map<string, WriteEntry>) => void): Uint8Array {
  const m = new Map<string, WriteEntry>();
  for (const [key, br] of adapter.branches) {
    const [l, t] = key.split('.');
    const sub = ['gate_proj', 'up_proj', 'down_proj'].includes(t) ? 'mlp' : 'self_attn';
    const p = `base_model.model.model.layers.${l}.${sub}.${t}`;
    m.set(`${p}.lora_A.weight`, { dtype: 'F32', shape: br.a.shape, data: br.a.data });
    m.set(`${p}.lora_B.weight`, { dtype: 'F32', shape: br.b.shape, data: br.b.data });
  }
  edit?.(m);
  return writeSafetensors(m);
}

async function expectCode(p: Promise<unknown>, code: EngineErrorCode): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error(`expected EngineError ${code}`);
}

const adapter = tinyLora(spec, 4);
const source = (cfg: object, file: Uint8Array = adapterFile(adapter)) =>
  memorySource({ 'adapter_config.json': JSON.stringify(cfg), 'adapter_model.safetensors': file });

describe('adapter_config.json', () => {
  it('scaling: alpha/r, or alpha/sqrt(r) with rsLoRA', async () => {
    expect((await loadLora(source(CONFIG), spec)).scaling).toBe(2);
    const rs = await loadLora(source({ ...CONFIG, use_rslora: true }), spec);
    expect(rs.scaling).toBe(6 / Math.sqrt(3));
    expect(rs.useRslora).toBe(true);
    expect(rs.baseModel).toBe('unsloth/Llama-3.2-1B-Instruct');
  });

  it('target_modules as list, "all-linear", regex; layers_to_transform', () => {
    const all = parseLoraConfig({ ...CONFIG, target_modules: 'all-linear' });
    expect(LORA_TARGETS.every((t) => all.isTargeted(1, t))).toBe(true);
    const attn = parseLoraConfig({ ...CONFIG, target_modules: ['q_proj', 'self_attn.v_proj'] });
    expect(attn.isTargeted(0, 'q_proj')).toBe(true);
    expect(attn.isTargeted(0, 'v_proj')).toBe(true);
    expect(attn.isTargeted(0, 'k_proj')).toBe(false);
    expect(attn.isTargeted(0, 'up_proj')).toBe(false);
    const re = parseLoraConfig({ ...CONFIG, target_modules: '.*\\.mlp\\.(gate|up)_proj' });
    expect(re.isTargeted(1, 'gate_proj')).toBe(true);
    expect(re.isTargeted(1, 'down_proj')).toBe(false);
    expect(re.isTargeted(1, 'q_proj')).toBe(false);
    const one = parseLoraConfig({ ...CONFIG, layers_to_transform: 1 });
    expect(one.isTargeted(0, 'q_proj')).toBe(false);
    expect(one.isTargeted(1, 'q_proj')).toBe(true);
    const ex = parseLoraConfig({ ...CONFIG, exclude_modules: ['down_proj'] });
    expect(ex.isTargeted(0, 'down_proj')).toBe(false);
  });

  it('refuses features the forward pass would ignore', () => {
    const refuse = (patch: object, field: string): void => {
      try {
        parseLoraConfig({ ...CONFIG, ...patch });
      } catch (e) {
        expect((e as EngineError).code).toBe('unsupported_config');
        expect((e as EngineError).details.field).toBe(field);
        return;
      }
      throw new Error(`accepted ${JSON.stringify(patch)}`);
    };
    refuse({ use_dora: true }, 'use_dora');
    refuse({ modules_to_save: ['lm_head'] }, 'modules_to_save');
    refuse({ rank_pattern: { q_proj: 8 } }, 'rank_pattern');
    refuse({ bias: 'all' }, 'bias');
    refuse({ peft_type: 'IA3' }, 'peft_type');
    refuse({ target_modules: ['q_proj', 'lm_head'] }, 'target_modules');
    expect(() => parseLoraConfig({ ...CONFIG, r: 0 })).toThrow(EngineError);
  });
});

describe('target_modules regex (untrusted: PEFT re.fullmatch, once per layer × projection)', () => {
  const targeted = (pattern: string, layers: number) => {
    const cfg = parseLoraConfig({ ...CONFIG, target_modules: pattern });
    const out: string[] = [];
    for (let l = 0; l < layers; l++)
      for (const t of LORA_TARGETS) if (cfg.isTargeted(l, t)) out.push(`${l}.${t}`);
    return out;
  };

  it('real PEFT patterns select what Python selects', () => {
    expect(targeted('.*\\.(q_proj|v_proj)', 2)).toEqual(['0.q_proj', '0.v_proj', '1.q_proj', '1.v_proj']);
    expect(targeted('model\\.layers\\.\\d+\\.self_attn\\.(q|k|v|o)_proj', 1)).toEqual([
      '0.q_proj',
      '0.k_proj',
      '0.v_proj',
      '0.o_proj',
    ]);
    expect(targeted('.*layers\\.(1[0-5]|[2-3])\\.mlp\\.down_proj', 16)).toEqual([
      '2.down_proj',
      '3.down_proj',
      ...[10, 11, 12, 13, 14, 15].map((l) => `${l}.down_proj`),
    ]);
    const ex = parseLoraConfig({ ...CONFIG, exclude_modules: '.*\\.0\\.self_attn\\..*' });
    expect(ex.isTargeted(0, 'q_proj')).toBe(false);
    expect(ex.isTargeted(1, 'q_proj')).toBe(true);
  });

  it('a catastrophic pattern is decided in bounded time over 1024 layers', () => {
    // A backtracking engine needs ~1 s for this pattern on a 24-character name, doubling per character;
    // every module name here is 27-31 characters, and there are 7168 of them.
    const t0 = performance.now();
    expect(targeted('([a-z_.0-9]+)+X', 1024)).toEqual([]);
    expect(targeted('(.*)*X', 1024)).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('a pattern that needs backtracking features is refused, naming file, field and pattern', () => {
    for (const [pattern, why] of [
      ['(q_proj)\\1', /backreferences/],
      ['(?=.*q).*_proj', /lookahead/],
      ['(?i).*Q_PROJ', /inline flags/],
    ] as const) {
      let err: unknown;
      try {
        parseLoraConfig({ ...CONFIG, target_modules: pattern }, 'evil/adapter_config.json');
      } catch (e) {
        err = e;
      }
      expect(err, pattern).toBeInstanceOf(EngineError);
      const e = err as EngineError;
      expect(e.code).toBe('unsupported_config');
      expect(e.details.field).toBe('target_modules');
      expect(e.message).toContain('evil/adapter_config.json');
      expect(e.message).toContain(JSON.stringify(pattern));
      expect(e.message).toMatch(why);
    }
  });

  it('an invalid pattern is bad_config with the reason', () => {
    expect(() => parseLoraConfig({ ...CONFIG, target_modules: '(q_proj' })).toThrow(
      /target_modules is not a valid regular expression \(missing \), unterminated subpattern/,
    );
    expect(() => parseLoraConfig({ ...CONFIG, exclude_modules: '*q' })).toThrow(
      /exclude_modules .*nothing to repeat/,
    );
  });

  it('loads a real adapter whose target_modules is a regex', async () => {
    const a = await loadLora(
      source({ ...CONFIG, target_modules: '.*\\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)' }),
      spec,
    );
    expect(a.branches.size).toBe(spec.numLayers * LORA_TARGETS.length);
  });
});

describe('adapter tensors', () => {
  it('loads every branch with its A [r,in] and B [out,r]', async () => {
    const a = await loadLora(source(CONFIG), spec);
    expect(a.branches.size).toBe(spec.numLayers * 7);
    for (const [k, br] of adapter.branches) {
      expect(a.branches.get(k)?.a.data).toEqual(br.a.data);
      expect(a.branches.get(k)?.b.data).toEqual(br.b.data);
    }
    expect(a.branches.get('1.down_proj')?.a.shape).toEqual([3, 24]);
    expect(a.branches.get('0.k_proj')?.b.shape).toEqual([8, 3]);
  });

  it('accepts the adapter-named form (lora_A.default.weight)', async () => {
    const file = adapterFile(adapter, (m) => {
      for (const k of [...m.keys()]) {
        const v = m.get(k) as WriteEntry;
        m.delete(k);
        m.set(k.replace(/lora_([AB])\.weight$/, 'lora_$1.default.weight'), v);
      }
    });
    expect((await loadLora(source(CONFIG, file), spec)).branches.size).toBe(14);
  });

  it('shapes not fitting the base name the tensor', async () => {
    const other = tinyLora(tinySpec({ intermediateSize: 20 }), 4);
    const e = await expectCode(loadLora(source(CONFIG, adapterFile(other)), spec), 'adapter_mismatch');
    expect(e.details.tensor).toMatch(/mlp\.(gate|up|down)_proj\.lora_[AB]\.weight$/);
    expect(e.details.expected).toBeDefined();
    const rank = await expectCode(loadLora(source({ ...CONFIG, r: 4 }), spec), 'adapter_mismatch');
    expect(rank.details).toMatchObject({ expected: [4, 16], got: [3, 16] });
  });

  it('tensors for layers or modules the base lacks', async () => {
    const deep = tinyLora(tinySpec({ numLayers: 3 }), 4);
    const e = await expectCode(loadLora(source(CONFIG, adapterFile(deep)), spec), 'adapter_mismatch');
    expect(e.details.tensor).toContain('layers.2.');
    const head = adapterFile(adapter, (m) =>
      m.set('base_model.model.lm_head.lora_A.weight', {
        dtype: 'F32',
        shape: [3, 16],
        data: new Float32Array(48),
      }),
    );
    const h = await expectCode(loadLora(source(CONFIG, head), spec), 'adapter_mismatch');
    expect(h.details.tensor).toBe('base_model.model.lm_head.lora_A.weight');
    const untargeted = await expectCode(
      loadLora(source({ ...CONFIG, target_modules: ['q_proj'] }), spec),
      'adapter_mismatch',
    );
    expect(untargeted.details.tensor).not.toContain('q_proj');
  });

  it('a targeted module without its B is a missing tensor', async () => {
    const file = adapterFile(adapter, (m) =>
      m.delete('base_model.model.model.layers.1.mlp.up_proj.lora_B.weight'),
    );
    const e = await expectCode(loadLora(source(CONFIG, file), spec), 'missing_tensor');
    expect(e.details.tensor).toBe('base_model.model.model.layers.1.mlp.up_proj.lora_B.weight');
  });

  it('missing files', async () => {
    await expectCode(
      loadLora(memorySource({ 'adapter_config.json': JSON.stringify(CONFIG) }), spec),
      'missing_file',
    );
    await expectCode(
      loadLora(memorySource({ 'adapter_model.safetensors': adapterFile(adapter) }), spec),
      'missing_file',
    );
  });
});

describe('mergeLora', () => {
  it('W + scale·scaling·B·A, other weights shared', () => {
    const w = tinyWeights(spec, 9);
    const merged = mergeLora(w, adapter, 0.5);
    const name = targetWeightName(1, 'o_proj');
    const W = w.get(name) as Tensor;
    const M = merged.get(name) as Tensor;
    const br = adapter.branches.get('1.o_proj') as { a: Tensor; b: Tensor };
    const [, inF] = W.shape;
    for (const [o, i] of [
      [0, 0],
      [5, 11],
      [15, 15],
    ]) {
      let s = 0;
      for (let j = 0; j < 3; j++) s += br.b.data[o * 3 + j] * br.a.data[j * inF + i];
      expect(M.data[o * inF + i]).toBeCloseTo(W.data[o * inF + i] + 0.5 * 2 * s, 6);
    }
    expect(merged.get('model.norm.weight')).toBe(w.get('model.norm.weight'));
    expect(w.get(name)).toBe(W);
  });
});

const FIXTURES = new URL('../../fixtures/', import.meta.url).pathname;

describe('fixture adapter', () => {
  it('tiny-llama-lora fits tiny-llama', async () => {
    const { spec: base } = await loadModel(folderSource(`${FIXTURES}tiny-llama`));
    const a = await loadLora(folderSource(`${FIXTURES}tiny-llama-lora`), base);
    expect(a).toMatchObject({ r: 4, alpha: 8, scaling: 2, useRslora: false });
    expect(a.branches.size).toBe(base.numLayers * 7);
    await expectCode(
      loadLora(folderSource(`${FIXTURES}tiny-llama-lora`), { ...base, hiddenSize: 32 }),
      'adapter_mismatch',
    );
  });
});
