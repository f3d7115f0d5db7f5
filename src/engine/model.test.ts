// EngineModel invariants on the fixtures (tiny-llama base, its LoRA adapter and its full finetune), each
// its own test, on onnxruntime-web WASM and onnxruntime-node: LoRA dose, residual and K/V patching,
// prefix-KV patch then decode, batching many configs, cache handling and input checks.

import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEngineError } from './errors';
import { maxAbsDiff, relError } from './graph/compare';
import { loadLora, mergeLora } from './lora';
import { EngineModel } from './model';
import { referenceForward } from './reference';
import { configureOrt } from './session';
import { folderSource } from '../hub/folder-files-node';
import type { ArchSpec, ForwardInput, LoraAdapter, PatchSet, Tensor, WeightMap } from './types';
import { loadModel } from './weights';
import { argmax } from './sampling';

configureOrt({ numThreads: 1 });

const TOL = 1e-4;
const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url));

function ids(spec: ArchSpec, B: number, T: number, salt: number): number[][] {
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => (b * 97 + t * 41 + salt * 13 + 5) % spec.vocabSize),
  );
}

/** Row b of a [B, ...] tensor. */
function row(t: Tensor, b: number): Float32Array {
  const n = t.data.length / t.shape[0];
  return t.data.subarray(b * n, (b + 1) * n);
}

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`EngineModel invariants on ${backend}`, () => {
    let spec: ArchSpec;
    let baseW: WeightMap;
    let ftW: WeightMap;
    let lora: LoraAdapter;
    let base: EngineModel;
    let tuned: EngineModel; // base weights + LoRA branches
    let full: EngineModel; // the full finetune
    let L: number;
    let H: number;
    let kvDim: number;

    beforeAll(async () => {
      ({ spec, weights: baseW } = await loadModel(folderSource(fixture('tiny-llama'))));
      ({ weights: ftW } = await loadModel(folderSource(fixture('tiny-llama-ft'))));
      lora = await loadLora(folderSource(fixture('tiny-llama-lora')), spec);
      base = await EngineModel.create(spec, baseW, { backend });
      tuned = await EngineModel.create(spec, baseW, { backend, lora });
      full = await EngineModel.create(spec, ftW, { backend });
      L = spec.numLayers;
      H = spec.hiddenSize;
      kvDim = spec.numKvHeads * spec.headDim;
    });
    afterAll(async () => {
      await Promise.all([base.dispose(), tuned.dispose(), full.dispose()]);
    });

    it('LoRA finetune (scale 1, the default) equals the reference with merged weights', async () => {
      const input = { inputIds: ids(spec, 2, 8, 1) };
      const got = await tuned.forward(input);
      const want = referenceForward(spec, mergeLora(baseW, lora), input);
      expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
      got.present.dispose();
    });

    it('lora_scale 0 gives the base model', async () => {
      const input = { inputIds: ids(spec, 2, 8, 2), loraScale: [0, 0] };
      const got = await tuned.forward(input);
      const b = await base.forward(input);
      expect(maxAbsDiff(got.logits.data, b.logits.data)).toBeLessThan(1e-5);
      expect(relError(got.logits.data, referenceForward(spec, baseW, input).logits.data)).toBeLessThan(TOL);
      got.present.dispose();
      b.present.dispose();
    });

    it('lora_scale per row: 0, 0.5 and 1 in one batch equal the merged references', async () => {
      const one = ids(spec, 1, 8, 3)[0];
      const got = await tuned.forward({ inputIds: [one, one, one], loraScale: [0, 0.5, 1] });
      [0, 0.5, 1].forEach((s, b) => {
        const want = referenceForward(spec, mergeLora(baseW, lora, s), { inputIds: [one] });
        expect(relError(row(got.logits, b), want.logits.data), `scale ${s}`).toBeLessThan(TOL);
      });
      got.present.dispose();
    });

    it('patching the last residual site from base at every position gives base logits (LoRA)', async () => {
      const inputIds = ids(spec, 2, 9, 4);
      const b = await base.forward({ inputIds, taps: { resid: [L] } });
      const T = 9;
      const patches: PatchSet = {
        resid: new Map([[L, { mask: new Float32Array(2 * T).fill(1), value: b.resid.get(L)!.data }]]),
      };
      const got = await tuned.forward({ inputIds, patches });
      expect(maxAbsDiff(got.logits.data, b.logits.data)).toBeLessThan(1e-6);
      const unpatched = await tuned.forward({ inputIds });
      expect(maxAbsDiff(unpatched.logits.data, b.logits.data)).toBeGreaterThan(1e-2);
      for (const r of [b, got, unpatched]) r.present.dispose();
    });

    it('patching a run with its own activations is the identity', async () => {
      const inputIds = ids(spec, 2, 7, 5);
      const T = 7;
      const sites = Array.from({ length: L + 1 }, (_, i) => i);
      const layers = Array.from({ length: L }, (_, i) => i);
      const clean = await tuned.forward({ inputIds, taps: { resid: sites, kv: layers } });
      const ones = new Float32Array(2 * T).fill(1);
      const patches: PatchSet = {
        resid: new Map(sites.map((s) => [s, { mask: ones, value: clean.resid.get(s)!.data }])),
        kv: new Map(layers.map((l) => [l, { mask: ones, k: clean.k.get(l)!.data, v: clean.v.get(l)!.data }])),
      };
      const self = await tuned.forward({ inputIds, patches });
      expect(maxAbsDiff(self.logits.data, clean.logits.data)).toBeLessThan(1e-6);
      clean.present.dispose();
      self.present.dispose();
    });

    it('an empty patch set, or patches with an all-zero mask, change nothing', async () => {
      const inputIds = ids(spec, 2, 6, 6);
      const T = 6;
      const clean = await tuned.forward({ inputIds });
      const empty = await tuned.forward({ inputIds, patches: { resid: new Map(), kv: new Map() } });
      const junk = new Float32Array(2 * T * H).map((_, i) => Math.sin(i));
      const junkKv = new Float32Array(2 * T * kvDim).map((_, i) => Math.cos(i));
      const zero = new Float32Array(2 * T);
      const masked = await tuned.forward({
        inputIds,
        patches: {
          resid: new Map([[1, { mask: zero, value: junk }]]),
          kv: new Map([[0, { mask: zero, k: junkKv, v: junkKv }]]),
        },
      });
      expect(maxAbsDiff(empty.logits.data, clean.logits.data)).toBe(0);
      expect(maxAbsDiff(masked.logits.data, clean.logits.data)).toBeLessThan(1e-6);
      for (const r of [clean, empty, masked]) r.present.dispose();
    });

    it('prefix K/V from base (all layers) at prefill, then decode, equals the full patched run', async () => {
      const T = 10;
      const prefix = 4;
      const steps = 4;
      const prompt = ids(spec, 1, T, 7);
      const layers = Array.from({ length: L }, (_, i) => i);
      // base K/V at the prefix depend only on the prefix tokens (causal), so one base run serves all.
      const b = await base.forward({ inputIds: prompt, taps: { kv: layers } });
      b.present.dispose();
      const kvPatch = (len: number): PatchSet => {
        const mask = new Float32Array(len);
        mask.fill(1, 0, prefix);
        const pad = (x: Float32Array): Float32Array => {
          const out = new Float32Array(len * kvDim);
          out.set(x.subarray(0, prefix * kvDim));
          return out;
        };
        return {
          kv: new Map(layers.map((l) => [l, { mask, k: pad(b.k.get(l)!.data), v: pad(b.v.get(l)!.data) }])),
        };
      };
      // engine: patched prefill, then plain decode from the cache
      let r = await full.forward({ inputIds: prompt, patches: kvPatch(T), taps: { logits: 'last' } });
      const tokens: number[] = [];
      const stepLogits: Float32Array[] = [r.logits.data];
      for (let s = 0; s < steps; s++) {
        tokens.push(argmax(r.logits.data));
        if (s === steps - 1) break;
        const next = await full.forward({ inputIds: [[tokens[s]]], taps: { logits: 'last' } }, r.present);
        r.present.dispose();
        r = next;
        stepLogits.push(r.logits.data);
      }
      r.present.dispose();
      // reference and engine: one run over the whole sequence with the patch at the prefix only
      const seq = [[...prompt[0], ...tokens.slice(0, steps - 1)]];
      const n = seq[0].length;
      const ref = referenceForward(spec, ftW, { inputIds: seq, patches: kvPatch(n) });
      const oneShot = await full.forward({ inputIds: seq, patches: kvPatch(n) });
      oneShot.present.dispose();
      const V = spec.vocabSize;
      stepLogits.forEach((got, s) => {
        const pos = T - 1 + s;
        const want = ref.logits.data.subarray(pos * V, (pos + 1) * V);
        expect(relError(got, want), `step ${s}`).toBeLessThan(TOL);
        expect(maxAbsDiff(got, oneShot.logits.data.subarray(pos * V, (pos + 1) * V))).toBeLessThan(1e-5);
      });
      // and the patch mattered
      const plain = referenceForward(spec, ftW, { inputIds: seq });
      expect(maxAbsDiff(plain.logits.data, ref.logits.data)).toBeGreaterThan(1e-2);
    });

    it('B rows with different patches and doses in one batch equal B separate runs', async () => {
      const T = 6;
      const prompts = ids(spec, 3, T, 8);
      const donor = await base.forward({ inputIds: prompts, taps: { resid: [1], kv: [0] } });
      donor.present.dispose();
      const doses = [1, 0.5, 0];
      // row 0: nothing; row 1: resid site 1 at positions 0..2; row 2: K/V of layer 0 at positions 1..3
      const residMask = new Float32Array(3 * T);
      residMask.fill(1, T, T + 3);
      const kvMask = new Float32Array(3 * T);
      kvMask.fill(1, 2 * T + 1, 2 * T + 4);
      const patches: PatchSet = {
        resid: new Map([[1, { mask: residMask, value: donor.resid.get(1)!.data }]]),
        kv: new Map([[0, { mask: kvMask, k: donor.k.get(0)!.data, v: donor.v.get(0)!.data }]]),
      };
      const batched = await tuned.forward({
        inputIds: prompts,
        loraScale: doses,
        patches,
        taps: { resid: [L] },
      });
      for (let b = 0; b < 3; b++) {
        const pick = (x: Float32Array, w: number): Float32Array => x.slice(b * T * w, (b + 1) * T * w);
        const single = await tuned.forward({
          inputIds: [prompts[b]],
          loraScale: [doses[b]],
          patches: {
            resid: new Map([[1, { mask: pick(residMask, 1), value: pick(donor.resid.get(1)!.data, H) }]]),
            kv: new Map([
              [
                0,
                {
                  mask: pick(kvMask, 1),
                  k: pick(donor.k.get(0)!.data, kvDim),
                  v: pick(donor.v.get(0)!.data, kvDim),
                },
              ],
            ]),
          },
          taps: { resid: [L] },
        });
        expect(maxAbsDiff(row(batched.logits, b), single.logits.data), `row ${b}`).toBeLessThan(1e-5);
        expect(maxAbsDiff(row(batched.resid.get(L)!, b), single.resid.get(L)!.data)).toBeLessThan(1e-5);
        single.present.dispose();
      }
      batched.present.dispose();
    });

    it('a one-row prefix cache expanded to B rows continues like B separate runs', async () => {
      const prefix = ids(spec, 1, 5, 9);
      const pre = await tuned.forward({ inputIds: prefix });
      const many = await tuned.expandCache(pre.present, 3);
      expect(many.batch).toBe(3);
      const cont = ids(spec, 3, 3, 10);
      const got = await tuned.forward({ inputIds: cont }, many);
      for (let b = 0; b < 3; b++) {
        const want = referenceForward(spec, mergeLora(baseW, lora), {
          inputIds: [[...prefix[0], ...cont[b]]],
        });
        const V = spec.vocabSize;
        expect(relError(row(got.logits, b), want.logits.data.subarray(5 * V))).toBeLessThan(TOL);
      }
      for (const c of [pre.present, many, got.present]) c.dispose();
    });

    it('the cache converts to KvCacheData and back without change', async () => {
      const inputIds = ids(spec, 2, 6, 11);
      const r = await full.forward({ inputIds });
      const data = await r.present.toData();
      const ref = referenceForward(spec, ftW, { inputIds });
      for (let l = 0; l < L; l++) expect(relError(data.keys[l], ref.present.keys[l])).toBeLessThan(TOL);
      const back = full.cacheFromData(data);
      const next = { inputIds: [[3], [4]] };
      const a = await full.forward(next, r.present);
      const c = await full.forward(next, back);
      expect(maxAbsDiff(a.logits.data, c.logits.data)).toBe(0);
      for (const x of [r.present, back, a.present, c.present]) x.dispose();
    });

    it('a cache from another model (base → full finetune) is accepted', async () => {
      const inputIds = ids(spec, 1, 5, 12);
      const b = await base.forward({ inputIds });
      const got = await full.forward({ inputIds: [[7]] }, b.present);
      const want = referenceForward(spec, ftW, { inputIds: [[7]] }, { past: await b.present.toData() });
      expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
      b.present.dispose();
      got.present.dispose();
    });

    it('evaluate gives what forward gives, without a cache', async () => {
      const input: ForwardInput = { inputIds: ids(spec, 2, 5, 13), taps: { resid: [1], attn: [0] } };
      const a = await tuned.forward(input);
      const b = await tuned.evaluate(input);
      expect(b).not.toHaveProperty('present');
      expect(maxAbsDiff(b.logits.data, a.logits.data)).toBe(0);
      expect(maxAbsDiff(b.resid.get(1)!.data, a.resid.get(1)!.data)).toBe(0);
      expect(maxAbsDiff(b.attn.get(0)!.data, a.attn.get(0)!.data)).toBe(0);
      a.present.dispose();
    });

    it('refuses inconsistent inputs with bad_input', async () => {
      const bad: ForwardInput[] = [
        { inputIds: [[1, 2], [3]] },
        { inputIds: [[1, spec.vocabSize]] },
        { inputIds: [[1, 2]], attentionMask: [[1, 1, 1]] },
        { inputIds: [[1, 2]], positionIds: [[0, 1e6]] },
        {
          inputIds: [[1, 2]],
          patches: { resid: new Map([[0, { mask: new Float32Array(1), value: new Float32Array(H) }]]) },
        },
        {
          inputIds: [[1, 2]],
          patches: {
            resid: new Map([[L + 1, { mask: new Float32Array(2), value: new Float32Array(2 * H) }]]),
          },
        },
        { inputIds: [[1, 2]], taps: { kv: [L] } },
      ];
      for (const input of bad) {
        const err = await tuned.forward(input).then(
          () => null,
          (e: unknown) => e,
        );
        expect(isEngineError(err, 'bad_input'), JSON.stringify(input.inputIds)).toBe(true);
      }
    });
  });
}

describe('EngineModel across runtimes', () => {
  it('feeds an onnxruntime-web cache to an onnxruntime-node model', async () => {
    const { spec, weights } = await loadModel(folderSource(fixture('tiny-qwen2')));
    const web = await EngineModel.create(spec, weights, { backend: 'wasm' });
    const node = await EngineModel.create(spec, weights, { backend: 'node-cpu' });
    expect(web.backend.kind).toBe('wasm');
    expect(node.backend.kind).toBe('node-cpu');
    const pre = await web.forward({ inputIds: [[1, 2, 3, 4]] });
    const a = await web.forward({ inputIds: [[5]] }, pre.present);
    const b = await node.forward({ inputIds: [[5]] }, pre.present);
    expect(relError(b.logits.data, a.logits.data)).toBeLessThan(1e-5);
    for (const c of [pre.present, a.present, b.present]) c.dispose();
    await web.dispose();
    await node.dispose();
  });
});
