// The logit lens head against the model's own logits (last site) and the fp64 reference (every site):
// the lens of residual site l is what the reference's head gives when site numLayers is patched to it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { folderSource } from '../hub/folder-files-node';
import { relError } from './graph/compare';
import { LensHead, lensWeightsOf, type LensRow } from './lens';
import { loadLora } from './lora';
import { EngineModel } from './model';
import { referenceForward, referenceForward64 } from './reference';
import { configureOrt } from './session';
import { FIXTURE_CASES, fixturePath, spreadIds } from './test-fixtures';
import type { ArchSpec, LoraAdapter, WeightMap } from './types';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

/** log-softmax of one row, fp64 */
function logSoftmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  const lse = m + Math.log(s);
  return Float64Array.from(x, (v) => v - lse);
}

/** the dense log-prob vector back from a k = vocab lens row */
function dense(row: LensRow, V: number): Float64Array {
  const out = new Float64Array(V).fill(NaN);
  row.topIds.forEach((id, i) => (out[id] = row.topLogp[i]));
  return out;
}

const cases = FIXTURE_CASES.filter((c) =>
  ['tiny-llama + LoRA', 'tiny-qwen2', 'tiny-gemma2', 'tiny-gemma3'].includes(c.name),
);

for (const c of cases) {
  describe(`logit lens, ${c.name}`, () => {
    let spec: ArchSpec;
    let weights: WeightMap;
    let lora: LoraAdapter | undefined;
    let model: EngineModel;
    let lens: LensHead;
    beforeAll(async () => {
      ({ spec, weights } = await loadModel(folderSource(fixturePath(c.folder))));
      lora = c.lora ? await loadLora(folderSource(fixturePath(c.lora)), spec) : undefined;
      model = await EngineModel.create(spec, weights, { backend: 'wasm', lora });
      lens = await LensHead.create(spec, lensWeightsOf(spec, weights), 'wasm');
    });
    afterAll(async () => {
      await model.dispose();
      await lens.dispose();
    });

    it('the lens at the last site equals the model’s own next-token distribution', async () => {
      const L = spec.numLayers;
      const V = spec.vocabSize;
      const T = 7;
      const out = await model.evaluate({
        inputIds: spreadIds(spec, 2, T, 5),
        loraScale: [1, 0.5],
        taps: { resid: [L], logits: 'all' },
      });
      const rows = await lens.apply(out.resid.get(L)!.data, V, [3, 0, V - 1]);
      expect(rows).toHaveLength(2 * T);
      let worst = 0;
      rows.forEach((row, r) => {
        const want = logSoftmax(out.logits.data.subarray(r * V, (r + 1) * V));
        const got = dense(row, V);
        worst = Math.max(worst, relError(Float32Array.from(got), Float32Array.from(want)));
        expect(row.trackedLogp[0]).toBeCloseTo(want[3], 5);
        expect(row.trackedLogp[2]).toBeCloseTo(want[V - 1], 5);
        // top-k is sorted, descending
        for (let i = 1; i < V; i++) expect(row.topLogp[i]).toBeLessThanOrEqual(row.topLogp[i - 1]);
      });
      expect(worst).toBeLessThan(1e-5);
    });

    it('a head stored as row blocks (what WebGPU gets for a large vocabulary) gives the same rows', async () => {
      const V = spec.vocabSize;
      const H = spec.hiddenSize;
      const blocked = await LensHead.create(
        spec,
        lensWeightsOf(spec, weights),
        'wasm',
        Math.floor(V / 2.5) * H * 4,
      );
      try {
        const out = await model.evaluate({ inputIds: spreadIds(spec, 1, 5, 3), taps: { resid: [1] } });
        const resid = out.resid.get(1)!.data;
        const [want, got] = [
          await lens.apply(resid, V, [0, V - 1]),
          await blocked.apply(resid, V, [0, V - 1]),
        ];
        got.forEach((row, r) => {
          expect(row.topIds).toEqual(want[r].topIds);
          expect(relError(Float32Array.from(row.topLogp), Float32Array.from(want[r].topLogp))).toBeLessThan(
            1e-6,
          );
          expect(row.trackedLogp[1]).toBeCloseTo(want[r].trackedLogp[1], 6);
        });
      } finally {
        await blocked.dispose();
      }
    });

    it('every site matches the fp64 reference head (site numLayers patched to that residual)', async () => {
      const L = spec.numLayers;
      const V = spec.vocabSize;
      const H = spec.hiddenSize;
      const ids = spreadIds(spec, 1, 6, 2);
      const sites = Array.from({ length: L + 1 }, (_, l) => l);
      const ref = referenceForward(spec, weights, { inputIds: ids, taps: { resid: sites } }, { lora });
      const got = await model.evaluate({ inputIds: ids, taps: { resid: sites, logits: 'last' } });
      const T = ids[0].length;
      const last = new Float32Array((L + 1) * H);
      sites.forEach((l) => last.set(got.resid.get(l)!.data.subarray((T - 1) * H, T * H), l * H));
      const rows = await lens.apply(last, V, [1]);
      for (const l of sites) {
        // fp64 oracle: the reference with the stream before the final norm replaced by site l's residual
        const value = new Float32Array(T * H);
        value.set(ref.resid.get(l)!.data);
        const want64 = referenceForward64(
          spec,
          weights,
          {
            inputIds: ids,
            patches: { resid: new Map([[L, { mask: new Float32Array(T).fill(1), value }]]) },
          },
          { lora },
        );
        const want = logSoftmax(want64.logits.data.subarray((T - 1) * V, T * V));
        const err = relError(Float32Array.from(dense(rows[l], V)), Float32Array.from(want));
        expect(err, `site ${l}`).toBeLessThan(1e-4);
      }
      // and the lens really differs across depth (the test can fail if sites were mixed up)
      expect(
        relError(Float32Array.from(dense(rows[0], V)), Float32Array.from(dense(rows[L], V))),
      ).toBeGreaterThan(1e-3);
    });

    it('refuses bad input with a clear message', async () => {
      await expect(lens.apply(new Float32Array(spec.hiddenSize + 1), 1, [])).rejects.toThrow(/multiple of/);
      await expect(lens.apply(new Float32Array(spec.hiddenSize), 0, [])).rejects.toThrow(/top-k/);
      await expect(lens.apply(new Float32Array(spec.hiddenSize), 1, [spec.vocabSize])).rejects.toThrow(
        /vocabulary/,
      );
    });
  });
}
