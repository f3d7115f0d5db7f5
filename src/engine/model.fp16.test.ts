// The fp16 graph (graph/decoder.ts dtype 'fp16': fp16 matrices multiplied in fp16, everything else
// fp32) through EngineModel on both Node backends, forced with `fp16Graph` (in the app it is built only
// where WebGPU has shader-f16). ORT's CPU and WASM builds have no fp16 MatMul / Gemm kernel on x86:
// they wrap each in Casts to fp32 and then drop the adjacent fp32→fp16→fp32 pairs, so here the graph
// computes in fp32 on the fp16-rounded weights (measured: 1e-6 from that reference, 2–4e-3 from one
// that rounds every matmul's input and product to fp16). So these tests check what the graph stores
// (every matrix rounded to fp16, transposed, the embedding / head blocks and their casts) against the
// fp64 reference on fp16-rounded weights at the fp32 tolerance; the fp16 arithmetic itself runs only
// on a WebGPU adapter with shader-f16, which this machine's SwiftShader lacks (not tested here). What
// fp16 weights cost against the originals (error, greedy-token agreement) is printed for the notes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relError } from './graph/compare';
import { buildDecoderGraph } from './graph/decoder';
import { loadLora } from './lora';
import { EngineModel } from './model';
import { fp16RoundTrip } from './quantize';
import { referenceForward } from './reference';
import { configureOrt } from './session';
import { folderSource } from '../hub/folder-files-node';
import type { ArchSpec, ForwardInput, LoraAdapter, WeightMap } from './types';
import { tinySpec, tinyWeights } from './tiny-model';
import {
  expectTapsClose,
  FIXTURE_CASES,
  fixturePath,
  prefillCheckInput,
  residPatchErrors,
  spreadIds,
  top1Agreement,
} from './test-fixtures';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

const TOL = 1e-4;
const cases = FIXTURE_CASES.filter((c) => c.folder !== 'tiny-llama-ft');

describe('fp16 graph', () => {
  it('stores every matrix in half the bytes and no fp32 copy of one', async () => {
    const { spec, weights } = await loadModel(folderSource(fixturePath('tiny-qwen2')));
    const size = (g: { externalData: { data: Uint8Array }[] }) =>
      g.externalData.reduce((a, f) => a + f.data.byteLength, 0);
    const f32 = buildDecoderGraph(spec, weights);
    const f16 = buildDecoderGraph(spec, weights, { dtype: 'fp16' });
    let matrices = 0;
    for (const [name, t] of weights)
      if (t.shape.length === 2 && !name.includes('norm')) matrices += t.data.length;
    // the external data shrinks by 2 bytes per matrix element (alignment adds a few bytes per tensor)
    const saved = size(f32) - size(f16);
    expect(Math.abs(saved - 2 * matrices)).toBeLessThan(0.01 * size(f32));
  });

  it('refuses a weight beyond fp16 range instead of storing inf', () => {
    const spec = tinySpec();
    const weights = tinyWeights(spec);
    const name = 'model.layers.0.mlp.up_proj.weight';
    weights.get(name)!.data[3] = 1e6;
    expect(() => buildDecoderGraph(spec, weights, { dtype: 'fp16' })).toThrow(/beyond fp16's range/);
  });
});

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`fp16 on ${backend}`, () => {
    for (const c of cases) {
      describe(c.name, () => {
        let spec: ArchSpec;
        let weights: WeightMap;
        let rounded: WeightMap;
        let lora: LoraAdapter | undefined;
        let model: EngineModel;
        const ref = (
          input: ForwardInput,
          past?: NonNullable<Parameters<typeof referenceForward>[3]>['past'],
        ) => referenceForward(spec, rounded, input, { lora, past });
        beforeAll(async () => {
          ({ spec, weights } = await loadModel(folderSource(fixturePath(c.folder))));
          lora = c.lora ? await loadLora(folderSource(fixturePath(c.lora)), spec) : undefined;
          rounded = fp16RoundTrip(weights);
          model = await EngineModel.create(spec, weights, { backend, lora, dtype: 'fp16', fp16Graph: true });
        });
        afterAll(async () => {
          await model.dispose();
        });

        it('reports fp16, with no note', () => {
          expect(model.dtype).toBe('fp16');
          expect(model.dtypeNote).toBeUndefined();
        });

        it('prefill logits and taps match the reference on fp16-rounded weights', async () => {
          const input = prefillCheckInput(spec, !!lora);
          const got = await model.forward(input);
          got.present.dispose();
          const want = ref(input);
          expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
          expectTapsClose(got, want, TOL);
          // what fp16 costs against the original weights in fp32 arithmetic (for the notes)
          const orig = referenceForward(spec, weights, input, { lora });
          const { agree } = top1Agreement(got.logits.data, orig.logits.data, spec.vocabSize);
          console.log(
            `${c.name} fp16 ${backend}: rel error vs the fp64 reference on fp16-rounded weights ${relError(got.logits.data, want.logits.data).toExponential(2)}, vs original weights ${relError(got.logits.data, orig.logits.data).toExponential(2)}, top-1 agreement ${(agree * 100).toFixed(1)} %`,
          );
          expect(agree).toBeGreaterThan(0.9);
        });

        it('step-by-step decode matches the reference token by token', async () => {
          const all = spreadIds(spec, 2, 10, 2);
          const P = 6;
          let r = await model.forward({ inputIds: all.map((row) => row.slice(0, P)) });
          let want = ref({ inputIds: all.map((row) => row.slice(0, P)) });
          expect(relError(r.logits.data, want.logits.data)).toBeLessThan(TOL);
          for (let t = P; t < all[0].length; t++) {
            const step = { inputIds: all.map((row) => [row[t]]) };
            const next = await model.forward(step, r.present);
            r.present.dispose();
            r = next;
            want = ref(step, want.present);
            expect(relError(r.logits.data, want.logits.data), `step ${t}`).toBeLessThan(TOL);
          }
          r.present.dispose();
        });

        it('patches still work: a full residual patch replaces the stream', async () => {
          const err = await residPatchErrors(model, spec, (input) => ref(input));
          expect(err.logits).toBeLessThan(TOL);
          expect(err.resid).toBeLessThan(TOL);
        });
      });
    }
  });

  it(`fp16 on ${backend}: the embedding and head as row blocks (as on WebGPU) give the same logits`, async () => {
    const { spec, weights } = await loadModel(folderSource(fixturePath('tiny-llama')));
    const rounded = fp16RoundTrip(weights);
    // three or more fp16 blocks of the [V, H] embedding (2 bytes a value)
    const maxWeightBytes = Math.ceil((spec.vocabSize * spec.hiddenSize * 2) / 3);
    const model = await EngineModel.create(spec, weights, {
      backend,
      dtype: 'fp16',
      fp16Graph: true,
      maxWeightBytes,
    });
    try {
      const input: ForwardInput = { inputIds: spreadIds(spec, 2, 9, 4), taps: { resid: [0] } };
      const got = await model.forward(input);
      got.present.dispose();
      const want = referenceForward(spec, rounded, input);
      expect(relError(got.logits.data, want.logits.data)).toBeLessThan(TOL);
      expect(relError(got.resid.get(0)!.data, want.resid.get(0)!.data)).toBeLessThan(TOL);
    } finally {
      await model.dispose();
    }
  });

  it(`fp16 on ${backend} without fp16Graph: loads as fp32 and says why`, async () => {
    const { spec, weights } = await loadModel(folderSource(fixturePath('tiny-llama')));
    const model = await EngineModel.create(spec, weights, { backend, dtype: 'fp16' });
    try {
      expect(model.dtype).toBe('fp32');
      expect(model.dtypeNote).toMatch(/shader-f16/);
    } finally {
      await model.dispose();
    }
  });
}
