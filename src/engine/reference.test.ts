import { describe, expect, it } from 'vitest';
import { EngineError } from './errors';
import { mergeLora } from './lora';
import { referenceForward, referenceForward64, type KvCache64 } from './reference';
import { tinyLora, tinySpec, tinyTokens, tinyWeights } from './tiny-model';
import type { ArchSpec, ForwardInput, PatchSet, Tensor, WeightMap } from './types';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Positions [t0, t1) of row b of a [B, T, ...] tensor. */
function rows(t: { shape: number[]; data: ArrayLike<number> }, b: number, t0: number, t1: number): number[] {
  const [, T] = t.shape;
  const w = t.shape.slice(2).reduce((x, y) => x * y, 1);
  return Array.from(t.data).slice((b * T + t0) * w, (b * T + t1) * w);
}

const VARIANTS: Record<string, Partial<ArchSpec>> = {
  llama: {},
  'llama3 rope, tied, o/mlp bias': {
    ropeTheta: 500000,
    ropeScaling: {
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 16,
    },
    tieWordEmbeddings: true,
    qkvBias: true,
    oBias: true,
    mlpBias: true,
  },
  'qwen2 (qkv bias)': { modelType: 'qwen2', qkvBias: true },
  'qwen3 (qk norm, head_dim ≠ hidden/heads)': { modelType: 'qwen3', qkNorm: true, headDim: 6, numKvHeads: 1 },
  'mistral, linear rope, MHA': {
    modelType: 'mistral',
    numKvHeads: 4,
    ropeScaling: { type: 'linear', factor: 2 },
  },
};

describe.each(Object.entries(VARIANTS))('%s', (_name, overrides) => {
  const spec = tinySpec(overrides);
  const weights = tinyWeights(spec, 11);
  const lora = tinyLora(spec, 12);
  const ids = tinyTokens(spec, 2, 7, 13);

  it('KV cache: full run == prefill then single-token steps (fp64, ≤1e-9)', () => {
    const full = referenceForward64(spec, weights, { inputIds: ids, loraScale: [1, 0.5] }, { lora });
    let past: KvCache64;
    const k = 3;
    const pre = referenceForward64(
      spec,
      weights,
      { inputIds: ids.map((r) => r.slice(0, 7 - k)), loraScale: [1, 0.5] },
      { lora },
    );
    past = pre.present;
    for (let b = 0; b < 2; b++) {
      expect(maxAbsDiff(rows(pre.logits, b, 0, 7 - k), rows(full.logits, b, 0, 7 - k))).toBeLessThanOrEqual(
        1e-12,
      );
    }
    for (let t = 7 - k; t < 7; t++) {
      const step = referenceForward64(
        spec,
        weights,
        { inputIds: ids.map((r) => [r[t]]), loraScale: [1, 0.5] },
        { lora, past },
      );
      for (let b = 0; b < 2; b++) {
        expect(maxAbsDiff(rows(step.logits, b, 0, 1), rows(full.logits, b, t, t + 1))).toBeLessThanOrEqual(
          1e-9,
        );
      }
      past = step.present;
    }
    expect(past.length).toBe(7);
    for (let l = 0; l < spec.numLayers; l++) {
      expect(maxAbsDiff(past.keys[l], full.present.keys[l])).toBeLessThanOrEqual(1e-9);
      expect(maxAbsDiff(past.values[l], full.present.values[l])).toBeLessThanOrEqual(1e-9);
    }
  });

  it('KV cache through the fp32 API keeps fp64 state', () => {
    const full = referenceForward(spec, weights, { inputIds: ids });
    const pre = referenceForward(spec, weights, { inputIds: ids.map((r) => r.slice(0, 5)) });
    const step = referenceForward(
      spec,
      weights,
      { inputIds: ids.map((r) => r.slice(5)) },
      { past: pre.present },
    );
    expect(step.present.keys[0].length).toBe(full.present.keys[0].length);
    expect(maxAbsDiff(rows(step.logits, 1, 0, 2), rows(full.logits, 1, 5, 7))).toBeLessThanOrEqual(1e-6);
    // a plain fp32 cache (e.g. from the ONNX engine) is accepted too
    const copied = {
      length: pre.present.length,
      keys: pre.present.keys.map((k) => k.slice()),
      values: pre.present.values.map((v) => v.slice()),
    };
    const step2 = referenceForward(spec, weights, { inputIds: ids.map((r) => r.slice(5)) }, { past: copied });
    expect(maxAbsDiff(step2.logits.data, step.logits.data)).toBeLessThanOrEqual(1e-5);
  });

  it('LoRA scale 0 == base exactly; scale s == merged weights', () => {
    const base = referenceForward64(spec, weights, { inputIds: ids });
    const off = referenceForward64(spec, weights, { inputIds: ids, loraScale: [0, 0] }, { lora });
    expect(maxAbsDiff(off.logits.data, base.logits.data)).toBe(0);
    for (const s of [1, 0.5]) {
      const dosed = referenceForward64(spec, weights, { inputIds: ids, loraScale: [s, s] }, { lora });
      const merged = referenceForward64(spec, mergeLora(weights, lora, s), { inputIds: ids });
      expect(maxAbsDiff(dosed.logits.data, merged.logits.data)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(dosed.logits.data, base.logits.data)).toBeGreaterThan(1e-3);
    }
  });

  it('batch rows == separate runs', () => {
    const both = referenceForward64(spec, weights, { inputIds: ids, loraScale: [1, 0] }, { lora });
    for (const b of [0, 1]) {
      const one = referenceForward64(
        spec,
        weights,
        { inputIds: [ids[b]], loraScale: [b === 0 ? 1 : 0] },
        { lora },
      );
      expect(maxAbsDiff(one.logits.data, rows(both.logits, b, 0, 7))).toBe(0);
    }
  });

  it('left padding: the padded row equals the unpadded run at valid positions', () => {
    const pad = 3;
    const short = ids[0].slice(0, 4);
    const alone = referenceForward64(spec, weights, { inputIds: [short] }, { lora });
    const padded = referenceForward64(
      spec,
      weights,
      {
        inputIds: [ids[1], [0, 0, 0, ...short]],
        attentionMask: [new Array(7).fill(1), [0, 0, 0, 1, 1, 1, 1]],
        positionIds: [
          [0, 1, 2, 3, 4, 5, 6],
          [0, 0, 0, 0, 1, 2, 3],
        ],
        taps: { attn: [0] },
      },
      { lora },
    );
    expect(maxAbsDiff(rows(padded.logits, 1, pad, 7), alone.logits.data)).toBeLessThanOrEqual(1e-12);
    // the first padded query sees no key at all: zero probabilities, no NaN anywhere
    const attn = padded.attn.get(0) as { data: Float64Array };
    expect(attn.data.every((x) => Number.isFinite(x))).toBe(true);
    expect(padded.logits.data.every((x) => Number.isFinite(x))).toBe(true);
    const S = 7;
    const row0 = Array.from(
      attn.data.subarray((1 * spec.numHeads + 0) * 7 * S, (1 * spec.numHeads + 0) * 7 * S + S),
    );
    expect(row0).toEqual(new Array(S).fill(0));
  });

  it('shifting every position by a constant leaves the logits unchanged (RoPE is relative)', () => {
    const a = referenceForward64(spec, weights, { inputIds: ids });
    const b = referenceForward64(spec, weights, {
      inputIds: ids,
      positionIds: ids.map((r) => r.map((_, t) => t + 9)),
    });
    expect(maxAbsDiff(a.logits.data, b.logits.data)).toBeLessThanOrEqual(1e-9);
  });
});

describe('taps and patches', () => {
  const spec = tinySpec({ modelType: 'qwen3', qkNorm: true });
  const weights = tinyWeights(spec, 21);
  const lora = tinyLora(spec, 22);
  const ids = tinyTokens(spec, 2, 6, 23);
  const B = 2;
  const T = 6;
  const H = spec.hiddenSize;
  const kvDim = spec.numKvHeads * spec.headDim;
  const allSites = Array.from({ length: spec.numLayers + 1 }, (_, i) => i);
  const allLayers = allSites.slice(0, -1);

  it('tap shapes; attention rows are distributions; last-logits equal the last row', () => {
    const r = referenceForward(spec, weights, {
      inputIds: ids,
      taps: { resid: allSites, kv: allLayers, attn: [1], logits: 'last' },
    });
    expect(r.logits.shape).toEqual([B, 1, spec.vocabSize]);
    expect(r.resid.get(spec.numLayers)?.shape).toEqual([B, T, H]);
    expect(r.k.get(0)?.shape).toEqual([B, T, kvDim]);
    expect(r.v.get(1)?.shape).toEqual([B, T, kvDim]);
    const attn = r.attn.get(1) as Tensor;
    expect(attn.shape).toEqual([B, spec.numHeads, T, T]);
    for (let i = 0; i < B * spec.numHeads * T; i++) {
      const row = attn.data.subarray(i * T, i * T + T);
      expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 6);
      const t = i % T;
      for (let j = t + 1; j < T; j++) expect(row[j]).toBe(0); // causal
    }
    const all = referenceForward(spec, weights, { inputIds: ids });
    expect(all.logits.shape).toEqual([B, T, spec.vocabSize]);
    for (let b = 0; b < B; b++) expect(rows(r.logits, b, 0, 1)).toEqual(rows(all.logits, b, T - 1, T));
    expect(r.present.keys[0].length).toBe(B * spec.numKvHeads * T * spec.headDim);
    // residual site 0 is the embedding
    const emb = weights.get('model.embed_tokens.weight') as Tensor;
    expect(rows(r.resid.get(0) as Tensor, 1, 2, 3)).toEqual(
      Array.from(emb.data.subarray(ids[1][2] * H, ids[1][2] * H + H)),
    );
  });

  it('patching a run with its own activations is the identity', () => {
    const input: ForwardInput = { inputIds: ids, taps: { resid: allSites, kv: allLayers } };
    const own = referenceForward(spec, weights, input, { lora });
    const ones = new Float32Array(B * T).fill(1);
    const patches: PatchSet = {
      resid: new Map(allSites.map((s) => [s, { mask: ones, value: (own.resid.get(s) as Tensor).data }])),
      kv: new Map(
        allLayers.map((l) => [
          l,
          { mask: ones, k: (own.k.get(l) as Tensor).data, v: (own.v.get(l) as Tensor).data },
        ]),
      ),
    };
    const again = referenceForward(spec, weights, { inputIds: ids, patches }, { lora });
    expect(maxAbsDiff(again.logits.data, own.logits.data)).toBeLessThanOrEqual(1e-5);
    // an all-zero mask is an exact no-op
    const zeros = new Float32Array(B * T);
    const noop = referenceForward(
      spec,
      weights,
      {
        inputIds: ids,
        patches: { resid: new Map([[1, { mask: zeros, value: new Float32Array(B * T * H).fill(7) }]]) },
      },
      { lora },
    );
    expect(maxAbsDiff(noop.logits.data, own.logits.data)).toBe(0);
  });

  it('taps see the stream before the patch at the same site', () => {
    const value = new Float32Array(B * T * H).fill(0.25);
    const r = referenceForward(spec, weights, {
      inputIds: ids,
      taps: { resid: [1, 2] },
      patches: { resid: new Map([[1, { mask: new Float32Array(B * T).fill(1), value }]]) },
    });
    expect((r.resid.get(1) as Tensor).data.some((x) => x !== 0.25)).toBe(true);
    const clean = referenceForward(spec, weights, { inputIds: ids, taps: { resid: [1] } });
    expect(maxAbsDiff((r.resid.get(1) as Tensor).data, (clean.resid.get(1) as Tensor).data)).toBe(0);
  });

  it('residual after the last layer patched from base everywhere ⇒ base logits (LoRA finetune)', () => {
    const base = referenceForward64(spec, weights, { inputIds: ids, taps: { resid: [spec.numLayers] } });
    const value = Float32Array.from((base.resid.get(spec.numLayers) as { data: Float64Array }).data);
    const ft = referenceForward64(
      spec,
      weights,
      {
        inputIds: ids,
        patches: { resid: new Map([[spec.numLayers, { mask: new Float32Array(B * T).fill(1), value }]]) },
      },
      { lora },
    );
    expect(maxAbsDiff(ft.logits.data, base.logits.data)).toBeLessThanOrEqual(1e-5);
  });

  it('a fractional mask blends: h + m·(p − h)', () => {
    const p = new Float32Array(B * T * H).fill(0.5);
    const mask = new Float32Array(B * T).fill(0.25);
    const r = referenceForward64(spec, weights, {
      inputIds: ids,
      taps: { resid: [2] },
      patches: { resid: new Map([[2, { mask, value: p }]]) },
    });
    const last = referenceForward64(spec, weights, {
      inputIds: ids,
      patches: {
        resid: new Map([
          [
            2,
            {
              mask: new Float32Array(B * T).fill(1),
              value: Float32Array.from(
                (r.resid.get(2) as { data: Float64Array }).data,
                (h) => h + 0.25 * (0.5 - h),
              ),
            },
          ],
        ]),
      },
    });
    expect(maxAbsDiff(r.logits.data, last.logits.data)).toBeLessThanOrEqual(1e-5);
  });

  it('K/V patch on the prefix during prefill, then decode == the fully patched run', () => {
    const donor = referenceForward64(spec, weights, { inputIds: ids, taps: { kv: allLayers } });
    const prefix = 4;
    const kvPatch = (len: number): PatchSet => {
      const mask = new Float32Array(B * len);
      for (let b = 0; b < B; b++) for (let t = 0; t < Math.min(prefix, len); t++) mask[b * len + t] = 1;
      const cut = (d: Float64Array): Float32Array => {
        const out = new Float32Array(B * len * kvDim);
        for (let b = 0; b < B; b++)
          out.set(d.subarray(b * T * kvDim, (b * T + len) * kvDim), b * len * kvDim);
        return out;
      };
      return {
        kv: new Map(
          allLayers.map((l) => [
            l,
            {
              mask,
              k: cut((donor.k.get(l) as { data: Float64Array }).data),
              v: cut((donor.v.get(l) as { data: Float64Array }).data),
            },
          ]),
        ),
      };
    };
    const full = referenceForward64(spec, weights, { inputIds: ids, patches: kvPatch(T) }, { lora });
    const pre = referenceForward64(
      spec,
      weights,
      { inputIds: ids.map((r) => r.slice(0, prefix)), patches: kvPatch(prefix) },
      { lora },
    );
    const rest = referenceForward64(
      spec,
      weights,
      { inputIds: ids.map((r) => r.slice(prefix)) },
      { lora, past: pre.present },
    );
    for (let b = 0; b < B; b++) {
      expect(
        maxAbsDiff(rows(rest.logits, b, 0, T - prefix), rows(full.logits, b, prefix, T)),
      ).toBeLessThanOrEqual(1e-9);
    }
    const unpatched = referenceForward64(spec, weights, { inputIds: ids }, { lora });
    expect(maxAbsDiff(unpatched.logits.data, full.logits.data)).toBeGreaterThan(1e-3);
  });
});

describe('attention head grouping', () => {
  it('GQA equals MHA with each kv head repeated for its group (HF repeat_kv order)', () => {
    const gqa = tinySpec({ numHeads: 4, numKvHeads: 2 });
    const mha = tinySpec({ numHeads: 4, numKvHeads: 4 });
    const w = tinyWeights(gqa, 31);
    const w2: WeightMap = new Map(w);
    const hd = gqa.headDim;
    const H = gqa.hiddenSize;
    for (let l = 0; l < gqa.numLayers; l++) {
      for (const p of ['k_proj', 'v_proj']) {
        const name = `model.layers.${l}.self_attn.${p}.weight`;
        const src = w.get(name) as Tensor;
        const data = new Float32Array(4 * hd * H);
        for (let h = 0; h < 4; h++)
          data.set(
            src.data.subarray(Math.floor(h / 2) * hd * H, (Math.floor(h / 2) + 1) * hd * H),
            h * hd * H,
          );
        w2.set(name, { shape: [4 * hd, H], data });
      }
    }
    const ids = tinyTokens(gqa, 1, 5, 32);
    const a = referenceForward64(gqa, w, { inputIds: ids });
    const b = referenceForward64(mha, w2, { inputIds: ids });
    expect(maxAbsDiff(a.logits.data, b.logits.data)).toBeLessThanOrEqual(1e-12);
  });
});

describe('bad input', () => {
  const spec = tinySpec();
  const weights = tinyWeights(spec);
  const bad = (input: ForwardInput): void => {
    expect(() => referenceForward(spec, weights, input)).toThrow(EngineError);
    try {
      referenceForward(spec, weights, input);
    } catch (e) {
      expect((e as EngineError).code).toBe('bad_input');
    }
  };
  it('refuses inconsistent inputs with bad_input', () => {
    bad({ inputIds: [[1, 2], [3]] });
    bad({ inputIds: [[1, 99]] });
    bad({ inputIds: [[1, 2]], attentionMask: [[1]] });
    bad({ inputIds: [[1, 2]], positionIds: [[0]] });
    bad({ inputIds: [[1, 2]], loraScale: [1, 1] });
    bad({
      inputIds: [[1, 2]],
      patches: { resid: new Map([[0, { mask: new Float32Array(2), value: new Float32Array(3) }]]) },
    });
    bad({
      inputIds: [[1, 2]],
      patches: {
        kv: new Map([[5, { mask: new Float32Array(2), k: new Float32Array(0), v: new Float32Array(0) }]]),
      },
    });
    bad({ inputIds: [[1, 2]], taps: { attn: [2] } });
  });
  it('names a missing weight', () => {
    const w = new Map(weights);
    w.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => referenceForward(spec, w, { inputIds: [[1]] })).toThrow(/up_proj/);
  });
});
