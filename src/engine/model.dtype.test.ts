// Weight dtypes through EngineModel on both Node backends. q4: the engine (MatMulNBits) against the
// fp64 reference run on the same weights quantized and dequantized in JS — a sharp check of the packing
// and the op's attributes (≤ 1e-4 relative, like fp32) — and against the reference on the original
// weights, whose error (and greedy-token agreement) is what 4 bits cost; printed for the notes. int8: the
// engine (DynamicQuantizeMatMul) against the fp64 reference on int8-dequantized weights with the
// kernel's run-time activation quantization mimicked (referenceForward's quantizeActivations), ≤ 1e-4
// as fp32. fp16 without shader-f16 WebGPU: accepted, built as fp32, reported as such
// (the fp16 graph: model.fp16.test.ts).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbsDiff, relError } from './graph/compare';
import { buildDecoderGraph } from './graph/decoder';
import { estimateMemory } from './memory';
import { loadLora } from './lora';
import { EngineModel } from './model';
import { ENGINE_Q4, int8RoundTrip, q4RoundTrip } from './quantize';
import { referenceForward } from './reference';
import { configureOrt } from './session';
import { folderSource } from '../hub/folder-files-node';
import type { ArchSpec, ForwardInput, LoraAdapter, WeightMap } from './types';
import { tinyLora, tinySpec, tinyTokens, tinyWeights } from './tiny-model';
import {
  expectTapsClose,
  FIXTURE_CASES,
  fixturePath,
  prefillCheckInput,
  residPatchErrors,
  spreadIds,
  stepDecodeWorstError,
  top1Agreement,
} from './test-fixtures';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

const TOL = 1e-4;
const cases = FIXTURE_CASES.filter((c) => c.folder !== 'tiny-llama-ft');
const fixture = fixturePath;
const ids = spreadIds;

describe('q4 graph size', () => {
  it('shrinks the graph bytes by what memory.ts estimates', async () => {
    for (const folder of ['tiny-llama', 'tiny-qwen2']) {
      const { spec, weights } = await loadModel(folderSource(fixture(folder)));
      const size = (g: { model: Uint8Array; externalData: { data: Uint8Array }[] }) =>
        g.model.byteLength + g.externalData.reduce((a, f) => a + f.data.byteLength, 0);
      const f32 = size(buildDecoderGraph(spec, weights));
      const q4 = size(buildDecoderGraph(spec, weights, { dtype: 'q4' }));
      const est = (dtype: 'fp32' | 'q4') => estimateMemory(spec, { dtype, contextLength: 64 }).weightsBytes;
      const estSaved = est('fp32') - est('q4');
      console.log(
        `${folder}: graph bytes fp32 ${f32}, q4 ${q4} (saved ${f32 - q4}); memory.ts weights fp32 ${est('fp32')}, q4 ${est('q4')} (saved ${estSaved})`,
      );
      // graph structure (node names, attributes) and 64-byte alignment differ by a few KiB at most
      expect(Math.abs(f32 - q4 - estSaved)).toBeLessThan(0.02 * est('fp32'));
    }
  });
});

describe('int8 graph size', () => {
  it('is about a quarter of fp32, as memory.ts estimates', async () => {
    for (const folder of ['tiny-llama', 'tiny-qwen2', 'tiny-gemma2']) {
      const { spec, weights } = await loadModel(folderSource(fixture(folder)));
      const size = (g: { model: Uint8Array; externalData: { data: Uint8Array }[] }) =>
        g.model.byteLength + g.externalData.reduce((a, f) => a + f.data.byteLength, 0);
      const f32 = size(buildDecoderGraph(spec, weights));
      const i8 = size(buildDecoderGraph(spec, weights, { dtype: 'int8' }));
      const est = (dtype: 'fp32' | 'int8') => estimateMemory(spec, { dtype, contextLength: 64 }).weightsBytes;
      const estSaved = est('fp32') - est('int8');
      console.log(
        `${folder}: graph bytes fp32 ${f32}, int8 ${i8} (saved ${f32 - i8}); memory.ts weights fp32 ${est('fp32')}, int8 ${est('int8')} (saved ${estSaved})`,
      );
      // within 2.5 %: the protobuf of the int8 graph's extra nodes (codes − 128 for the embedding, zero
      // points) is not estimated; on these tiny models it is 2.1 % of the weights at most
      expect(Math.abs(f32 - i8 - estSaved)).toBeLessThan(0.025 * est('fp32'));
      expect(i8).toBeLessThan(f32 / 2);
    }
  });
});

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`int8 on ${backend}`, () => {
    for (const c of cases) {
      describe(c.name, () => {
        let spec: ArchSpec;
        let weights: WeightMap;
        let dequant: WeightMap;
        let lora: LoraAdapter | undefined;
        let model: EngineModel;
        const ref = (input: ForwardInput) =>
          referenceForward(spec, dequant, input, { lora, quantizeActivations: true });
        beforeAll(async () => {
          ({ spec, weights } = await loadModel(folderSource(fixture(c.folder))));
          lora = c.lora ? await loadLora(folderSource(fixture(c.lora)), spec) : undefined;
          dequant = int8RoundTrip(weights);
          model = await EngineModel.create(spec, weights, { backend, lora, dtype: 'int8' });
        });
        afterAll(async () => {
          await model.dispose();
        });

        it('reports int8, no note on the CPU backends', () => {
          expect(model.dtype).toBe('int8');
          expect(model.dtypeNote).toBeUndefined();
        });

        it('prefill logits and taps match the reference on dequantized weights and activations', async () => {
          const input = prefillCheckInput(spec, !!lora);
          const got = await model.forward(input);
          got.present.dispose();
          const want = ref(input);
          const err = relError(got.logits.data, want.logits.data);
          expect(err).toBeLessThan(TOL);
          expectTapsClose(got, want, TOL);
          // what int8 costs: weights alone (reference without the activation rounding) and in all
          const weightsOnly = referenceForward(spec, dequant, input, { lora });
          const orig = referenceForward(spec, weights, input, { lora });
          const V = spec.vocabSize;
          const { agree, rows } = top1Agreement(got.logits.data, orig.logits.data, V);
          const rel = relError(got.logits.data, orig.logits.data);
          console.log(
            `[${backend}] ${c.name} int8 vs fp64 on original weights: rel ${rel.toExponential(2)} (weights alone ${relError(weightsOnly.logits.data, orig.logits.data).toExponential(2)}), greedy agreement ${(agree * 100).toFixed(0)}% (${rows} positions); vs dequantized ref rel ${err.toExponential(2)}`,
          );
          // the activation rounding is really modelled: without it the reference is far off …
          expect(relError(got.logits.data, weightsOnly.logits.data)).toBeGreaterThan(10 * TOL);
          // … quantization really happened, and is not garbage
          expect(rel).toBeGreaterThan(10 * TOL);
          expect(rel).toBeLessThan(0.5);
        });

        it('step-by-step decode matches the dequantized reference run token by token', async () => {
          // NOTE: activations are quantized per call (one range per [B,T,K] tensor), so a decode step is
          // compared with the reference's decode step, not with one full run.
          const all = ids(spec, 2, 10, 2);
          const P = 6;
          let r = await model.forward({ inputIds: all.map((row) => row.slice(0, P)) });
          let want = ref({ inputIds: all.map((row) => row.slice(0, P)) });
          expect(relError(r.logits.data, want.logits.data)).toBeLessThan(TOL);
          for (let t = P; t < all[0].length; t++) {
            const step = { inputIds: all.map((row) => [row[t]]) };
            const next = await model.forward(step, r.present);
            r.present.dispose();
            r = next;
            want = referenceForward(spec, dequant, step, {
              lora,
              quantizeActivations: true,
              past: want.present,
            });
            expect(relError(r.logits.data, want.logits.data), `step ${t}`).toBeLessThan(TOL);
          }
          r.present.dispose();
        });

        it('patches still work: a full residual patch replaces the stream', async () => {
          const err = await residPatchErrors(model, spec, ref);
          expect(err.logits).toBeLessThan(TOL);
          expect(err.resid).toBeLessThan(TOL);
        });
      });
    }
  });

  it(`int8 on ${backend}: tied embedding with hidden 16 and a LoRA`, async () => {
    const spec = tinySpec({ tieWordEmbeddings: true });
    const weights = tinyWeights(spec);
    const lora = tinyLora(spec);
    const model = await EngineModel.create(spec, weights, { backend, lora, dtype: 'int8' });
    try {
      const input: ForwardInput = {
        inputIds: tinyTokens(spec, 2, 7),
        loraScale: [1, 0.5],
        taps: { resid: [0] },
      };
      const got = await model.evaluate(input);
      const deq = int8RoundTrip(weights);
      const want = referenceForward(spec, deq, input, { lora, quantizeActivations: true });
      expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
      // the embedding rows are the dequantized int8 rows
      expect(relError(got.resid.get(0)!.data, want.resid.get(0)!.data)).toBeLessThan(1e-6);
      const orig = referenceForward(spec, weights, input, { lora });
      expect(relError(got.resid.get(0)!.data, orig.resid.get(0)!.data)).toBeGreaterThan(1e-4);
    } finally {
      await model.dispose();
    }
  });
}

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`q4 on ${backend}`, () => {
    for (const c of cases) {
      describe(c.name, () => {
        let spec: ArchSpec;
        let weights: WeightMap;
        let dequant: WeightMap;
        let lora: LoraAdapter | undefined;
        let model: EngineModel;
        beforeAll(async () => {
          ({ spec, weights } = await loadModel(folderSource(fixture(c.folder))));
          lora = c.lora ? await loadLora(folderSource(fixture(c.lora)), spec) : undefined;
          dequant = q4RoundTrip(weights, ENGINE_Q4);
          model = await EngineModel.create(spec, weights, { backend, lora, dtype: 'q4' });
        });
        afterAll(async () => {
          await model.dispose();
        });

        it('reports q4, and graph bytes well under fp32', () => {
          expect(model.dtype).toBe('q4');
          let fp32 = 0;
          for (const t of weights.values()) fp32 += t.data.byteLength;
          expect(model.graphBytes).toBeGreaterThan(0);
          expect(model.graphBytes).toBeLessThan(fp32 / 2);
          // WASM has no fast 4-bit kernel: the model says so
          if (backend === 'wasm') expect(model.dtypeNote).toMatch(/q4 on WASM/);
          else expect(model.dtypeNote).toBeUndefined();
        });

        it('prefill logits and taps match the reference on the dequantized weights', async () => {
          const input = prefillCheckInput(spec, !!lora);
          const got = await model.forward(input);
          got.present.dispose();
          const want = referenceForward(spec, dequant, input, { lora });
          const err = relError(got.logits.data, want.logits.data);
          expect(err).toBeLessThan(TOL);
          expectTapsClose(got, want, TOL);
          // what 4 bits cost: the same input on the original weights
          const orig = referenceForward(spec, weights, input, { lora });
          const V = spec.vocabSize;
          const { agree, rows } = top1Agreement(got.logits.data, orig.logits.data, V);
          const rel = relError(got.logits.data, orig.logits.data);
          const abs = maxAbsDiff(got.logits.data, orig.logits.data);
          console.log(
            `[${backend}] ${c.name} q4 vs fp64 on original weights: logits max abs ${abs.toExponential(2)}, rel ${rel.toExponential(2)}, greedy agreement ${(agree * 100).toFixed(0)}% (${rows} positions); vs dequantized ref rel ${err.toExponential(2)}`,
          );
          // quantization really happened (a graph that silently kept fp32 would sit at ~1e-7) …
          expect(rel).toBeGreaterThan(10 * TOL);
          // … and is not garbage (random tiny fixtures: 0.3–0.6 of the logits' scale; the sharp check
          // is the one above, against the dequantized weights)
          expect(rel).toBeLessThan(1);
        });

        it('step-by-step decode matches the dequantized reference full run', async () => {
          const T = 10;
          const P = 6;
          const all = ids(spec, 2, T, 2);
          const full = referenceForward(spec, dequant, { inputIds: all }, { lora });
          const V = spec.vocabSize;
          const worst = await stepDecodeWorstError(model, all, P, full.logits.data, V);
          expect(worst).toBeLessThan(TOL);
        });

        it('patches still work: a full residual patch replaces the stream', async () => {
          const err = await residPatchErrors(model, spec, (input) =>
            referenceForward(spec, dequant, input, { lora }),
          );
          expect(err.logits).toBeLessThan(TOL);
          expect(err.resid).toBeLessThan(TOL);
        });
      });
    }
  });

  it(`q4 on ${backend}: partial blocks (K 16 and 24) and an fp32 embedding (hidden 16)`, async () => {
    const spec = tinySpec({ tieWordEmbeddings: true });
    const weights = tinyWeights(spec);
    const lora = tinyLora(spec);
    const model = await EngineModel.create(spec, weights, { backend, lora, dtype: 'q4' });
    try {
      const input: ForwardInput = {
        inputIds: tinyTokens(spec, 2, 7),
        loraScale: [1, 0.5],
        taps: { resid: [0] },
      };
      const got = await model.evaluate(input);
      const deq = q4RoundTrip(weights, { ...ENGINE_Q4, includeEmbedding: false });
      const want = referenceForward(spec, deq, input, { lora });
      expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
      expect(relError(got.resid.get(0)!.data, want.resid.get(0)!.data)).toBeLessThan(1e-6);
      const orig = referenceForward(spec, weights, input, { lora });
      expect(relError(got.logits.data, orig.logits.data)).toBeGreaterThan(10 * TOL);
    } finally {
      await model.dispose();
    }
  });

  it(`fp16 on ${backend}: accepted, loads as fp32 and says so`, async () => {
    const { spec, weights } = await loadModel(folderSource(fixture('tiny-llama')));
    const model = await EngineModel.create(spec, weights, { backend, dtype: 'fp16' });
    try {
      expect(model.dtype).toBe('fp32');
      expect(model.dtypeNote).toMatch(/fp16 loads as fp32/);
      const input: ForwardInput = { inputIds: ids(spec, 1, 8, 1) };
      const got = await model.forward(input);
      got.present.dispose();
      const want = referenceForward(spec, weights, input);
      expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
    } finally {
      await model.dispose();
    }
  });
}
