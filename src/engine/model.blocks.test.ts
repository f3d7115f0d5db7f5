// An fp32 embedding / untied lm_head stored as row blocks (DecoderOptions.maxWeightBytes, what the
// engine builds when the backend may be WebGPU: a 1B model's 1 GiB embedding does not bind there) gives
// the same model: logits, the residual taps and the greedy continuation of the one-tensor graph, on both
// Node backends, for a tied (Qwen2) and an untied (Llama) fixture, with block sizes that do not divide
// the vocabulary. The graph holds the same bytes, in more initializers.

import { describe, expect, it } from 'vitest';
import { maxAbsDiff } from './graph/compare';
import { buildDecoderGraph } from './graph/decoder';
import { EngineModel } from './model';
import { configureOrt } from './session';
import { folderSource } from '../hub/folder-files-node';
import { fixturePath, spreadIds } from './test-fixtures';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

const graphBytes = (g: { externalData: { data: Uint8Array }[] }) =>
  g.externalData.reduce((n, f) => n + f.data.byteLength, 0);

for (const backend of ['node-cpu', 'wasm'] as const) {
  describe(`row-block embedding = one tensor, ${backend}`, () => {
    for (const folder of ['tiny-qwen2', 'tiny-llama']) {
      it(folder, async () => {
        const { spec, weights } = await loadModel(folderSource(fixturePath(folder)));
        const H = spec.hiddenSize;
        const L = spec.numLayers;
        // three and a bit blocks: the last one short
        const rowsPer = Math.floor(spec.vocabSize / 3.4);
        const maxWeightBytes = rowsPer * H * 4;
        const plain = buildDecoderGraph(spec, weights, { maxPositions: 64 });
        const blocked = buildDecoderGraph(spec, weights, { maxPositions: 64, maxWeightBytes });
        const blockNames = (g: { model: Uint8Array }) =>
          (
            Buffer.from(g.model)
              .toString('latin1')
              .match(/model\.embed_tokens\.weight\.rows_\d+/g) ?? []
          ).length;
        expect(blockNames(plain)).toBe(0);
        expect(blockNames(blocked)).toBeGreaterThanOrEqual(4);
        // same weight bytes (alignment padding aside): blocks, not a copy
        expect(Math.abs(graphBytes(blocked) - graphBytes(plain))).toBeLessThan(64 * 16);

        const a = await EngineModel.create(spec, weights, { backend, maxPositions: 64 });
        const b = await EngineModel.create(spec, weights, { backend, maxPositions: 64, maxWeightBytes });
        try {
          // ids from every block, the first and last rows included
          const ids = spreadIds(spec, 2, 9, 5);
          ids[0][0] = 0;
          ids[0][1] = spec.vocabSize - 1;
          ids[1][2] = rowsPer - 1;
          ids[1][3] = rowsPer;
          const taps = { resid: [0, L] };
          const x = await a.forward({ inputIds: ids, taps });
          const y = await b.forward({ inputIds: ids, taps });
          // the gather is exact (one block contributes, the others add zeros)
          expect(maxAbsDiff(y.resid.get(0)!.data, x.resid.get(0)!.data)).toBe(0);
          expect(maxAbsDiff(y.resid.get(L)!.data, x.resid.get(L)!.data)).toBe(0);
          const scale = Math.max(...x.logits.data.map(Math.abs));
          expect(maxAbsDiff(y.logits.data, x.logits.data)).toBeLessThanOrEqual(1e-6 * scale);
          // a decode step through the KV cache
          const step = [[ids[0][8]], [ids[1][8]]];
          const x2 = await a.forward({ inputIds: step }, x.present);
          const y2 = await b.forward({ inputIds: step }, y.present);
          expect(maxAbsDiff(y2.logits.data, x2.logits.data)).toBeLessThanOrEqual(1e-6 * scale);
          for (const r of [x, y, x2, y2]) r.present.dispose();
        } finally {
          await a.dispose();
          await b.dispose();
        }
      });
    }
  });
}
