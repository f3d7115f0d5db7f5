// The append K/V cache (kvcache.ts + the `kvAppend` graph) against today's concat graph and the fp64
// reference, on every fixture family (LoRA rows, Gemma's sliding windows included), on onnxruntime-web
// WASM and onnxruntime-node: several decode steps after a left-padded, patched prefill; a shared prefix
// cache continued twice (copy on write); greedy generation; and the append store's own bookkeeping.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from './generate';
import { maxAbsDiff, relError } from './graph/compare';
import { appendSlots, capacityFor, KV_CHUNK, newStore, storeToData } from './kvcache';
import { loadLora } from './lora';
import { EngineModel, type KvCache } from './model';
import { referenceForward } from './reference';
import { argmax } from './sampling';
import { configureOrt } from './session';
import { FIXTURE_CASES, fixturePath, spreadIds } from './test-fixtures';
import { folderSource } from '../hub/folder-files-node';
import type { ArchSpec, ForwardInput, KvCacheData, LoraAdapter, PatchSet, WeightMap } from './types';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

/** engine (either layout) vs the fp64 reference, relative (as model.test.ts) */
const REF_TOL = 1e-4;
/** append vs concat graph: the same fp32 math, summed in another order (two MatMuls vs one) */
const LAYOUT_TOL = 1e-5;

function lastLogits(data: Float32Array, B: number, V: number): Float32Array[] {
  const T = data.length / (B * V);
  return Array.from({ length: B }, (_, b) => data.subarray((b * T + T - 1) * V, (b * T + T) * V));
}

describe('append K/V store', () => {
  it('appends in place at its end, copies on write from a shorter view, and grows in chunks', () => {
    const rows = 2;
    const hd = 3;
    const slots = (T: number, base: number): Float32Array[] => [
      Float32Array.from({ length: rows * T * hd }, (_, i) => base + i),
    ];
    const s0 = newStore(1, rows, hd, 0);
    const s1 = appendSlots(s0, 0, 2, slots(2, 100), slots(2, 200));
    expect(s1).not.toBe(s0);
    expect(s1.capacity).toBe(KV_CHUNK);
    const s2 = appendSlots(s1, 2, 1, slots(1, 300), slots(1, 400));
    expect(s2).toBe(s1); // in place
    // a second continuation from length 2: a new store; slots below 2 unchanged in both
    const s3 = appendSlots(s1, 2, 1, slots(1, 500), slots(1, 600));
    expect(s3).not.toBe(s1);
    const a = storeToData(s2, 3);
    const b = storeToData(s3, 3);
    // row 0 slot 0..1 then the continuation's slot
    expect(Array.from(a.keys[0].subarray(0, 9))).toEqual([100, 101, 102, 103, 104, 105, 300, 301, 302]);
    expect(Array.from(b.keys[0].subarray(0, 9))).toEqual([100, 101, 102, 103, 104, 105, 500, 501, 502]);
    expect(Array.from(a.keys[0].subarray(9, 18))).toEqual([106, 107, 108, 109, 110, 111, 303, 304, 305]);
    // growth past the capacity keeps the data
    const big = appendSlots(s2, 3, KV_CHUNK, slots(KV_CHUNK, 0), slots(KV_CHUNK, 0));
    expect(big.capacity).toBe(capacityFor(3 + KV_CHUNK));
    expect(Array.from(storeToData(big, 3).values[0])).toEqual(Array.from(a.values[0]));
  });
});

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`append K/V cache on ${backend}`, () => {
    for (const c of FIXTURE_CASES) {
      describe(c.name, () => {
        let spec: ArchSpec;
        let weights: WeightMap;
        let lora: LoraAdapter | undefined;
        let append: EngineModel;
        let concat: EngineModel;

        beforeAll(async () => {
          ({ spec, weights } = await loadModel(folderSource(fixturePath(c.folder))));
          lora = c.lora ? await loadLora(folderSource(fixturePath(c.lora)), spec) : undefined;
          append = await EngineModel.create(spec, weights, { backend, lora, kvCache: 'append' });
          concat = await EngineModel.create(spec, weights, { backend, lora, kvCache: 'concat' });
          expect(append.io.kvAppend).toBe(true);
          expect(concat.io.kvAppend).toBe(false);
        });
        afterAll(async () => {
          await Promise.all([append.dispose(), concat.dispose()]);
        });

        it('left-padded, patched prefill then decode steps: logits, tokens and attention as concat and the reference', async () => {
          const B = 2;
          const T = 7;
          const steps = 6;
          const V = spec.vocabSize;
          const { numLayers: L, hiddenSize: H } = spec;
          const kvDim = spec.numKvHeads * spec.headDim;
          const prompt = spreadIds(spec, B, T, 5);
          const mask = [new Array<number>(T).fill(1), [0, 0, ...new Array<number>(T - 2).fill(1)]];
          const positionIds = [
            Array.from({ length: T }, (_, t) => t),
            Array.from({ length: T }, (_, t) => Math.max(0, t - 2)),
          ];
          // patches in the prefill: a residual site and one layer's K/V at some prompt positions
          const pm = new Float32Array(B * T);
          pm[2] = 1;
          pm[T + 4] = 1;
          const patches: PatchSet = {
            resid: new Map([
              [1, { mask: pm, value: Float32Array.from({ length: B * T * H }, (_, i) => Math.sin(i)) }],
            ]),
            kv: new Map([
              [
                L - 1,
                {
                  mask: pm,
                  k: Float32Array.from({ length: B * T * kvDim }, (_, i) => Math.cos(i)),
                  v: Float32Array.from({ length: B * T * kvDim }, (_, i) => Math.sin(2 * i)),
                },
              ],
            ]),
          };
          const loraScale = lora ? [1, 0.5] : undefined;
          const first: ForwardInput = {
            inputIds: prompt,
            attentionMask: mask,
            positionIds,
            patches,
            loraScale,
          };
          let a = await append.forward({ ...first, taps: { logits: 'last' } });
          let k = await concat.forward({ ...first, taps: { logits: 'last' } });
          let r = referenceForward(spec, weights, first, { lora });
          let refPast: KvCacheData = r.present;
          const fullMask = mask.map((m) => [...m]);
          const next = positionIds.map((p) => p[T - 1] + 1);
          let worstRef = 0;
          let worstLayout = 0;
          for (let s = 0; s <= steps; s++) {
            const ra = lastLogits(a.logits.data, B, V);
            const rk = lastLogits(k.logits.data, B, V);
            const rr = lastLogits(r.logits.data, B, V);
            const tokens: number[] = [];
            for (let b = 0; b < B; b++) {
              worstRef = Math.max(worstRef, relError(ra[b], rr[b]));
              worstLayout = Math.max(worstLayout, maxAbsDiff(ra[b], rk[b]));
              expect(argmax(ra[b]), `step ${s} row ${b}`).toBe(argmax(rr[b]));
              expect(argmax(rk[b])).toBe(argmax(rr[b]));
              tokens.push(argmax(ra[b]));
            }
            if (s === steps) break;
            for (const m of fullMask) m.push(1);
            const input: ForwardInput = {
              inputIds: tokens.map((t) => [t]),
              attentionMask: fullMask.map((m) => [...m]),
              positionIds: next.map((p) => [p + s]),
              loraScale,
              taps: { logits: 'last', attn: [0, L - 1], kv: [0] },
            };
            const [na, nk] = [await append.forward(input, a.present), await concat.forward(input, k.present)];
            r = referenceForward(spec, weights, input, { past: refPast, lora });
            refPast = r.present;
            for (const l of [0, L - 1]) {
              const got = na.attn.get(l)!;
              expect(got.shape).toEqual([B, spec.numHeads, 1, T + s + 1]);
              expect(maxAbsDiff(got.data, r.attn.get(l)!.data), `attn ${l} step ${s}`).toBeLessThan(1e-5);
              expect(maxAbsDiff(got.data, nk.attn.get(l)!.data)).toBeLessThan(LAYOUT_TOL);
            }
            expect(maxAbsDiff(na.k.get(0)!.data, nk.k.get(0)!.data)).toBeLessThan(LAYOUT_TOL);
            a.present.dispose();
            k.present.dispose();
            a = na;
            k = nk;
          }
          expect(worstRef).toBeLessThan(REF_TOL);
          expect(worstLayout).toBeLessThan(LAYOUT_TOL);
          // the cache reads back as the reference's
          const data = await a.present.toData();
          expect(data.length).toBe(T + steps);
          for (let l = 0; l < L; l++) expect(relError(data.keys[l], refPast.keys[l])).toBeLessThan(REF_TOL);
          a.present.dispose();
          k.present.dispose();
        });

        it('a shared prefix cache continued twice (copy on write) gives each continuation its own past', async () => {
          const P = 5;
          const V = spec.vocabSize;
          const [prefix, contA, contB] = [0, 1, 2].map(
            (salt) => spreadIds(spec, 1, salt === 0 ? P : 3, salt + 11)[0],
          );
          const scale = lora ? [0.7] : undefined;
          const shared = await append.forward({ inputIds: [prefix], loraScale: scale });
          // A, one token at a time, then B from the same shared cache, then A again after B wrote
          const step = async (
            past: KvCache,
            tok: number,
          ): Promise<{ present: KvCache; logits: Float32Array }> => {
            const out = await append.forward(
              { inputIds: [[tok]], loraScale: scale, taps: { logits: 'last' } },
              past,
            );
            return { present: out.present, logits: out.logits.data };
          };
          const a1 = await step(shared.present, contA[0]);
          const a2 = await step(a1.present, contA[1]);
          const b1 = await step(shared.present, contB[0]);
          const b2 = await step(b1.present, contB[1]);
          const a3 = await step(a2.present, contA[2]);
          const b3 = await step(b2.present, contB[2]);
          // and a third continuation of the prefix, as a batch, through generate
          const want = (cont: number[]): Float32Array[] => {
            const seq = [...prefix, ...cont];
            const ref = referenceForward(spec, weights, { inputIds: [seq], loraScale: scale }, { lora });
            return cont.map((_, i) => ref.logits.data.subarray((P + i) * V, (P + i + 1) * V));
          };
          const [wa, wb] = [want(contA), want(contB)];
          [a1, a2, a3].forEach((x, i) => expect(relError(x.logits, wa[i]), `A ${i}`).toBeLessThan(REF_TOL));
          [b1, b2, b3].forEach((x, i) => expect(relError(x.logits, wb[i]), `B ${i}`).toBeLessThan(REF_TOL));
          // the shared cache itself still reads as the prefix alone
          const again = await append.forward({ inputIds: [[contB[0]]], loraScale: scale }, shared.present);
          expect(maxAbsDiff(again.logits.data, b1.logits)).toBe(0);
          for (const x of [shared, a1, a2, a3, b1, b2, b3, again]) x.present.dispose();
        });

        it('greedy generation from a shared prefix: the same tokens as the concat graph and the reference', async () => {
          const P = 4;
          const prefix = spreadIds(spec, 1, P, 21);
          const prompts = spreadIds(spec, 2, 3, 22);
          const scale = lora ? [0.6, 0.6] : undefined; // one dose: the prefix is prefilled once
          const run = async (m: EngineModel): Promise<number[][]> => {
            const pre = await m.forward({ inputIds: prefix, loraScale: scale?.slice(0, 1) });
            const first = await generate(m, {
              inputIds: prompts,
              past: pre.present,
              maxNewTokens: 5,
              stopTokens: [],
              loraScale: scale,
            });
            const second = await generate(m, {
              inputIds: prompts.slice(0, 1),
              past: pre.present,
              maxNewTokens: 5,
              stopTokens: [],
              loraScale: scale?.slice(0, 1),
            });
            pre.present.dispose();
            expect(second.rows[0].tokens).toEqual(first.rows[0].tokens);
            return first.rows.map((r) => r.tokens);
          };
          const got = await run(append);
          expect(got).toEqual(await run(concat));
          // the reference's greedy continuation, one full forward per token
          for (let b = 0; b < 2; b++) {
            const seq = [...prefix[0], ...prompts[b]];
            const want: number[] = [];
            for (let i = 0; i < 5; i++) {
              const ref = referenceForward(
                spec,
                weights,
                {
                  inputIds: [seq],
                  loraScale: scale && [scale[b]],
                  taps: { logits: 'last' },
                },
                { lora },
              );
              const tok = argmax(ref.logits.data);
              want.push(tok);
              seq.push(tok);
            }
            expect(got[b], `row ${b}`).toEqual(want);
          }
        });
      });
    }
  });
}
