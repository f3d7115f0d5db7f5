// The attention-probability taps (`attn.{l}`, what the lab's attention view reads) against the fp64
// reference on every layer, through a KV cache: a GQA Llama (2 query heads per KV head), Gemma-2 (sliding
// window 4 + attention soft-cap) and Gemma-3 (one KV head, local layers with their own RoPE), on
// onnxruntime-web WASM and onnxruntime-node. Every visible query row sums to 1 and masked slots are 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { folderSource } from '../hub/folder-files-node';
import { EngineModel } from './model';
import { referenceForward, referenceForward64 } from './reference';
import { configureOrt } from './session';
import { fixturePath, spreadIds } from './test-fixtures';
import type { ArchSpec, WeightMap } from './types';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

/** the largest |row sum − 1| over every (row, head, query) of a [B, heads, T, S] probability tensor */
function worstRowSum(t: { shape: number[]; data: ArrayLike<number> }): number {
  const S = t.shape[3];
  let worst = 0;
  for (let o = 0; o < t.data.length; o += S) {
    let s = 0;
    for (let j = 0; j < S; j++) s += t.data[o + j];
    worst = Math.max(worst, Math.abs(s - 1));
  }
  return worst;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const backend of ['wasm', 'node-cpu'] as const) {
  for (const folder of ['tiny-llama', 'tiny-gemma2', 'tiny-gemma3']) {
    describe(`attention taps on ${folder} (${backend})`, () => {
      let spec: ArchSpec;
      let weights: WeightMap;
      let model: EngineModel;
      beforeAll(async () => {
        ({ spec, weights } = await loadModel(folderSource(fixturePath(folder))));
        model = await EngineModel.create(spec, weights, { backend });
      });
      afterAll(async () => {
        await model.dispose();
      });

      it('prefill then a 3-token chunk through the cache: every layer equals the reference, rows sum to 1', async () => {
        const L = spec.numLayers;
        const all = Array.from({ length: L }, (_, l) => l);
        const ids = spreadIds(spec, 2, 10, 4);
        const P = 7;
        const first = ids.map((r) => r.slice(0, P));
        const rest = ids.map((r) => r.slice(P));
        const got1 = await model.forward({ inputIds: first, taps: { attn: all, logits: 'last' } });
        const got2 = await model.forward(
          { inputIds: rest, taps: { attn: all, logits: 'last' } },
          got1.present,
        );
        got1.present.dispose();
        got2.present.dispose();
        const ref1 = referenceForward(spec, weights, { inputIds: first, taps: { attn: all } });
        const ref2 = referenceForward64(
          spec,
          weights,
          { inputIds: rest, taps: { attn: all } },
          { past: ref1.present },
        );
        expect(spec.numHeads / spec.numKvHeads).toBeGreaterThan(1); // GQA on every fixture
        for (const l of all) {
          const a2 = got2.attn.get(l)!;
          expect(a2.shape).toEqual([2, spec.numHeads, 3, 10]);
          expect(maxAbs(got1.attn.get(l)!.data, ref1.attn.get(l)!.data), `prefill layer ${l}`).toBeLessThan(
            1e-5,
          );
          expect(maxAbs(a2.data, ref2.attn.get(l)!.data), `chunk layer ${l}`).toBeLessThan(1e-5);
          expect(worstRowSum(got1.attn.get(l)!)).toBeLessThan(1e-5);
          expect(worstRowSum(a2)).toBeLessThan(1e-5);
          expect(worstRowSum(ref2.attn.get(l)!)).toBeLessThan(1e-12);
          // causal: the chunk's first query (slot 7) gives slots 8 and 9 nothing
          for (let o = 0; o < a2.data.length; o += 3 * 10) {
            expect(a2.data[o + 8]).toBe(0);
            expect(a2.data[o + 9]).toBe(0);
          }
        }
        const windows = spec.layerWindows ?? [];
        const local = windows.findIndex((w) => w !== null);
        if (folder !== 'tiny-llama') {
          // a sliding-window layer really drops keys older than its window: query slot 9 sees only > 9 − w
          expect(local).toBeGreaterThanOrEqual(0);
          const w = windows[local]!;
          const a = got2.attn.get(local)!.data;
          const q9 = a.subarray(2 * 10, 3 * 10); // row 0, head 0, query index 2 = slot 9
          for (let j = 0; j <= 9 - w; j++) expect(q9[j]).toBe(0);
          expect(q9.subarray(10 - w).reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
        }
        if (folder === 'tiny-gemma2') expect(spec.attnSoftcap).toBeDefined();
      });
    });
  }
}
