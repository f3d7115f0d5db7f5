// The built decoder graph, run by onnxruntime-web (WASM) and onnxruntime-node (CPU), against the fp64
// reference on tiny random models of every architecture variant: logits, taps, KV cache, decode steps,
// padding, logits selection, the hook-free build and the external-data layout.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineModel } from '../model';
import { referenceForward } from '../reference';
import { configureOrt } from '../session';
import { tinySpec, tinyTokens, tinyWeights } from '../tiny-model';
import type { ArchSpec, ForwardInput, WeightMap } from '../types';
import { relError } from './compare';
import { buildDecoderGraph } from './decoder';

configureOrt({ numThreads: 1 });

const TOL = 1e-4;

const variants: [string, ArchSpec][] = [
  ['llama (GQA)', tinySpec()],
  ['llama (MHA, tied)', tinySpec({ numKvHeads: 4, tieWordEmbeddings: true })],
  ['qwen2 (qkv bias, tied)', tinySpec({ modelType: 'qwen2', qkvBias: true, tieWordEmbeddings: true })],
  ['qwen3 (q/k norm, headDim ≠ hidden/heads)', tinySpec({ modelType: 'qwen3', qkNorm: true, headDim: 8 })],
  ['mistral (GQA 4:1)', tinySpec({ modelType: 'mistral', numKvHeads: 1 })],
  [
    'llama3 rope scaling, o/mlp bias',
    tinySpec({
      oBias: true,
      mlpBias: true,
      ropeTheta: 500000,
      ropeScaling: {
        type: 'llama3',
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 16,
      },
    }),
  ],
];

const L = 2;
const allTaps = {
  resid: Array.from({ length: L + 1 }, (_, i) => i),
  kv: Array.from({ length: L }, (_, i) => i),
  attn: Array.from({ length: L }, (_, i) => i),
};

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`decoder graph on ${backend}`, () => {
    for (const [name, spec] of variants) {
      describe(name, () => {
        let weights: WeightMap;
        let model: EngineModel;
        beforeAll(async () => {
          weights = tinyWeights(spec, 11);
          model = await EngineModel.create(spec, weights, { backend });
        });
        afterAll(async () => {
          await model.dispose();
        });

        it('prefill: logits, every tap and the cache match the reference', async () => {
          const input: ForwardInput = { inputIds: tinyTokens(spec, 2, 7), taps: allTaps };
          const got = await model.forward(input);
          const want = referenceForward(spec, weights, input);
          expect(got.logits.shape).toEqual(want.logits.shape);
          expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
          for (const kind of ['resid', 'k', 'v', 'attn'] as const) {
            expect([...got[kind].keys()].sort()).toEqual([...want[kind].keys()].sort());
            for (const [site, t] of want[kind]) {
              const g = got[kind].get(site)!;
              expect(g.shape, `${kind}.${site}`).toEqual(t.shape);
              expect(relError(g.data, t.data), `${kind}.${site}`).toBeLessThan(TOL);
            }
          }
          const present = await got.present.toData();
          expect(present.length).toBe(7);
          for (let l = 0; l < L; l++) {
            expect(relError(present.keys[l], want.present.keys[l])).toBeLessThan(TOL);
            expect(relError(present.values[l], want.present.values[l])).toBeLessThan(TOL);
          }
          got.present.dispose();
        });

        it('prefill then one-token steps equals the full run', async () => {
          const ids = tinyTokens(spec, 2, 9, 5);
          const full = referenceForward(spec, weights, { inputIds: ids });
          const V = spec.vocabSize;
          let r = await model.forward({ inputIds: ids.map((row) => row.slice(0, 5)) });
          expect(
            relError(
              r.logits.data,
              full.logits.data.filter((_, i) => i % (9 * V) < 5 * V),
            ),
          ).toBeLessThan(TOL);
          for (let t = 5; t < 9; t++) {
            const next = await model.forward({ inputIds: ids.map((row) => [row[t]]) }, r.present);
            r.present.dispose();
            r = next;
            const want = new Float32Array(2 * V);
            for (let b = 0; b < 2; b++)
              want.set(full.logits.data.subarray((b * 9 + t) * V, (b * 9 + t + 1) * V), b * V);
            expect(relError(r.logits.data, want), `step ${t}`).toBeLessThan(TOL);
          }
          const present = await r.present.toData();
          for (let l = 0; l < L; l++)
            expect(relError(present.keys[l], full.present.keys[l])).toBeLessThan(TOL);
          r.present.dispose();
        });

        it("logits 'last' is the last position of every row", async () => {
          const ids = tinyTokens(spec, 3, 6, 8);
          const all = await model.forward({ inputIds: ids });
          const last = await model.forward({ inputIds: ids, taps: { logits: 'last' } });
          const V = spec.vocabSize;
          expect(last.logits.shape).toEqual([3, 1, V]);
          for (let b = 0; b < 3; b++) {
            const a = all.logits.data.subarray((b * 6 + 5) * V, (b * 6 + 6) * V);
            expect(relError(last.logits.data.subarray(b * V, (b + 1) * V), a)).toBeLessThan(1e-6);
          }
          all.present.dispose();
          last.present.dispose();
        });

        it('left padding and explicit positions match the reference, padded rows included', async () => {
          const ids = tinyTokens(spec, 2, 6, 9);
          const input: ForwardInput = {
            inputIds: ids,
            attentionMask: [
              [0, 0, 1, 1, 1, 1],
              [1, 1, 1, 1, 1, 1],
            ],
            positionIds: [
              [0, 0, 0, 1, 2, 3],
              [0, 1, 2, 3, 4, 5],
            ],
            taps: { attn: [0, 1], resid: [L] },
          };
          const got = await model.forward(input);
          const want = referenceForward(spec, weights, input);
          expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
          expect(relError(got.attn.get(1)!.data, want.attn.get(1)!.data)).toBeLessThan(TOL);
          expect(relError(got.resid.get(L)!.data, want.resid.get(L)!.data)).toBeLessThan(TOL);
          got.present.dispose();
        });
      });
    }

    it('a cache made from reference data continues like the reference', async () => {
      const spec = tinySpec({ qkvBias: true });
      const weights = tinyWeights(spec, 4);
      const model = await EngineModel.create(spec, weights, { backend });
      const ids = tinyTokens(spec, 2, 8, 12);
      const prefix = referenceForward(spec, weights, { inputIds: ids.map((r) => r.slice(0, 5)) });
      const cache = model.cacheFromData(prefix.present);
      expect(cache.batch).toBe(2);
      expect(cache.length).toBe(5);
      const rest = { inputIds: ids.map((r) => r.slice(5)) };
      const got = await model.forward(rest, cache);
      const want = referenceForward(spec, weights, rest, { past: prefix.present });
      expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
      cache.dispose();
      got.present.dispose();
      await model.dispose();
    });

    it('the hook-free build gives the same logits', async () => {
      const spec = tinySpec();
      const weights = tinyWeights(spec, 5);
      const hooked = await EngineModel.create(spec, weights, { backend });
      const bare = await EngineModel.create(spec, weights, {
        backend,
        patchInputs: false,
        tapOutputs: false,
      });
      expect(bare.io.inputs.some((n) => n.includes('patch'))).toBe(false);
      expect(bare.io.outputs.some((n) => n.startsWith('resid.'))).toBe(false);
      const input = { inputIds: tinyTokens(spec, 2, 5) };
      const a = await hooked.forward(input);
      const b = await bare.forward(input);
      expect(relError(b.logits.data, a.logits.data)).toBeLessThan(1e-6);
      await expect(bare.forward({ ...input, taps: { resid: [0] } })).rejects.toThrow(/without tap outputs/);
      for (const r of [a, b]) r.present.dispose();
      await hooked.dispose();
      await bare.dispose();
    });
  });
}

describe('decoder graph layout', () => {
  it('keeps weights out of the protobuf, in external data', () => {
    const spec = tinySpec({ hiddenSize: 64, intermediateSize: 96, headDim: 16, vocabSize: 300 });
    const weights = tinyWeights(spec);
    const g = buildDecoderGraph(spec, weights, { maxPositions: 64 });
    let weightBytes = 0;
    for (const t of weights.values()) weightBytes += t.data.byteLength;
    const external = g.externalData.reduce((a, f) => a + f.data.byteLength, 0);
    expect(g.externalData.map((f) => f.path)).toEqual(['model.onnx.data']);
    expect(external).toBeGreaterThan(weightBytes);
    expect(g.model.byteLength).toBeLessThan(weightBytes / 10);
  });

  it('splits external data into chunks when asked', () => {
    const spec = tinySpec();
    const g = buildDecoderGraph(spec, tinyWeights(spec), { externalChunkBytes: 4096 });
    expect(g.externalData.length).toBeGreaterThan(1);
    expect(g.externalData[1].path).toBe('model.onnx.data.1');
    for (const f of g.externalData)
      expect(f.data.byteLength).toBeLessThanOrEqual(Math.max(4096, 128 * 8 * 4));
  });

  it('lists the hook IO of docs/architecture.md "The one design decision"', () => {
    const spec = tinySpec();
    const g = buildDecoderGraph(spec, tinyWeights(spec));
    expect(g.io.inputs).toEqual(
      expect.arrayContaining([
        'input_ids',
        'attention_mask',
        'position_ids',
        'past.0.key',
        'past.1.value',
        'resid_patch_mask.0',
        'resid_patch.2',
        'kv_patch_mask.1',
        'k_patch.0',
        'v_patch.1',
      ]),
    );
    expect(g.io.outputs).toEqual(
      expect.arrayContaining([
        'logits',
        'present.0.key',
        'present.1.value',
        'resid.2',
        'k.0',
        'v.1',
        'attn.1',
      ]),
    );
    expect(g.io.inputs).not.toContain('lora_scale');
  });
});
