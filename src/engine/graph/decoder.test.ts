// Decoder graph vs the fp64 reference on tiny random models, on both Node backends.
import { describe, expect, it } from 'vitest';
import { referenceForward } from '../reference';
import { EngineModel } from '../model';
import { configureOrt } from '../session';
import type { ArchSpec } from '../types';
import { randomIds, randomWeights, relError, tinySpec } from './random-model';

configureOrt({ numThreads: 1 });

const specs: [string, ArchSpec][] = [
  ['llama gqa', tinySpec()],
  ['llama mha tied', tinySpec({ numKvHeads: 4, tieWordEmbeddings: true })],
  ['qwen2 bias', tinySpec({ modelType: 'qwen2', qkvBias: true, tieWordEmbeddings: true })],
  ['qwen3 qk-norm', tinySpec({ modelType: 'qwen3', qkNorm: true, headDim: 16 })],
  [
    'llama3 rope scaling + biases',
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

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`decoder graph on ${backend}`, () => {
    for (const [name, spec] of specs) {
      it(`${name}: prefill logits match the reference`, async () => {
        const weights = randomWeights(spec);
        const model = await EngineModel.create(spec, weights, { backend });
        const input = { inputIds: randomIds(spec, 2, 7) };
        const got = await model.forward(input);
        const want = referenceForward(spec, weights, input);
        expect(got.logits.shape).toEqual(want.logits.shape);
        const err = relError(got.logits.data, want.logits.data);
        console.log(backend, name, err);
        expect(err).toBeLessThan(1e-4);
        got.present.dispose();
        await model.dispose();
      });
    }
  });
}
