// The paper-code drift proxy (k_proj / v_proj of the residual before the input norm) against a hand
// computation on the tiny-llama fixture with its LoRA adapter, and Lab.drift's two drifts side by side.
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { folderSource } from '../../hub/folder-files-node';
import { loadLora } from '../../engine/lora';
import { referenceForward } from '../../engine/reference';
import { loadModel } from '../../engine/weights';
import { prng } from '../../engine/tiny-model';
import { defaultSpec, type ExperimentSpec } from '../spec/experiment';
import { Lab } from '../run/lab';
import { codeProxyKv, prefixDrift, type KvProjections } from './metrics';

const FIX = path.resolve(__dirname, '../../../fixtures');

describe('code-proxy drift', () => {
  const lab = new Lab({
    resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
    backend: 'node-cpu',
  });
  afterAll(() => lab.dispose());

  it('equals a hand computation: W·resid + b + dose·scaling·B·A·resid, then L_K / L_V', async () => {
    const { spec, weights } = await loadModel(folderSource(path.join(FIX, 'tiny-llama')));
    const lora = await loadLora(folderSource(path.join(FIX, 'tiny-llama-lora')), spec);
    const proj: KvProjections = new Map();
    for (let l = 0; l < spec.numLayers; l++) {
      const one = (t: 'k_proj' | 'v_proj') => {
        const br = lora.branches.get(`${l}.${t}`);
        return {
          w: weights.get(`model.layers.${l}.self_attn.${t}.weight`)!,
          ...(br ? { lora: { a: br.a, b: br.b, scaling: lora.scaling } } : {}),
        };
      };
      proj.set(l, { k: one('k_proj'), v: one('v_proj') });
    }
    expect([...proj.values()].some((p) => p.k.lora || p.v.lora)).toBe(true);
    const T = 5;
    const H = spec.hiddenSize;
    const ids = [[3, 9, 27, 81 % spec.vocabSize, 5]];
    const sites = Array.from({ length: spec.numLayers }, (_, l) => l);
    const ftResid = referenceForward(
      spec,
      weights,
      { inputIds: ids, taps: { resid: sites } },
      { lora },
    ).resid;
    // a base residual that is not the finetuned one
    const rnd = prng(7);
    const baseResid = new Map(
      [...ftResid].map(([l, t]) => [l, { shape: t.shape, data: t.data.map((x) => x + 0.3 * (rnd() - 0.5)) }]),
    );
    const positions = [0, 2, 3];
    const got = prefixDrift(
      codeProxyKv(ftResid, proj, positions, 1),
      codeProxyKv(baseResid, proj, positions, 0),
      positions,
    );
    // by hand, straight from the weight tensors
    const hand = (l: number, t: 'k_proj' | 'v_proj') => {
      const W = weights.get(`model.layers.${l}.self_attn.${t}.weight`)!;
      const [out, inDim] = W.shape;
      expect(inDim).toBe(H);
      const br = lora.branches.get(`${l}.${t}`);
      const apply = (x: Float32Array, xo: number, dose: number) => {
        const y: number[] = [];
        for (let o = 0; o < out; o++) {
          let s = 0;
          for (let j = 0; j < H; j++) s += W.data[o * H + j] * x[xo + j];
          if (br && dose) {
            for (let i = 0; i < br.a.shape[0]; i++) {
              let a = 0;
              for (let j = 0; j < H; j++) a += br.a.data[i * H + j] * x[xo + j];
              s += dose * lora.scaling * br.b.data[o * br.a.shape[0] + i] * a;
            }
          }
          y.push(s);
        }
        return y;
      };
      let acc = 0;
      for (const p of positions) {
        const f = apply(ftResid.get(l)!.data, p * H, 1);
        const b = apply(baseResid.get(l)!.data, p * H, 0);
        const num = f.reduce((s, x, i) => s + (x - b[i]) ** 2, 0);
        const den = b.reduce((s, x) => s + x * x, 0);
        acc += num / den;
      }
      return acc / positions.length;
    };
    for (let l = 0; l < spec.numLayers; l++) {
      expect(got.lK[l]).toBeCloseTo(hand(l, 'k_proj'), 5);
      expect(got.lV[l]).toBeCloseTo(hand(l, 'v_proj'), 5);
    }
    expect(T).toBe(ids[0].length);
  });

  it('Lab.drift reports both: the proxy is zero for a model against itself and differs from the exact drift', async () => {
    const s: ExperimentSpec = defaultSpec();
    s.models = {
      base: { source: { kind: 'local', path: 'tiny-llama' }, role: 'base' },
      finetuned: {
        source: { kind: 'local', path: 'tiny-llama' },
        adapter: { kind: 'local', path: 'tiny-llama-lora' },
        role: 'finetuned',
      },
    };
    s.conversation = { system: null, user: 'hey I feel bored', templateArgs: { date_string: '26 Jul 2024' } };
    s.conditions = [{ id: 'base', label: 'Base', model: 'base' }];
    const d = await lab.drift(s);
    expect(d.code).toBeDefined();
    expect(d.code!.lk).toHaveLength(d.layers.length);
    expect(d.code!.lkv).toBeGreaterThan(0);
    expect(d.code!.lk.some((x, i) => Math.abs(x - d.lk[i]) > 1e-6)).toBe(true);
    const same = {
      ...s,
      models: { base: s.models.base, finetuned: { ...s.models.base, role: 'finetuned' as const } },
    };
    const d0 = await lab.drift(same);
    expect(d0.code!.lkv).toBeCloseTo(0, 12);
  });
});
