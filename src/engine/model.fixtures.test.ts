// Every fixture architecture through EngineModel on both Node backends against the fp64 reference:
// prefill logits and taps, then step-by-step decode, ≤ 1e-4 relative (fp32).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relError } from './graph/compare';
import { loadLora } from './lora';
import { EngineModel } from './model';
import { referenceForward } from './reference';
import { configureOrt } from './session';
import { folderSource } from '../hub/folder-files-node';
import type { ArchSpec, ForwardInput, LoraAdapter, WeightMap } from './types';
import { FIXTURE_CASES, fixturePath, spreadIds, stepDecodeWorstError } from './test-fixtures';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

const TOL = 1e-4;
const cases = FIXTURE_CASES;
const fixture = fixturePath;
const ids = spreadIds;

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`fixtures on ${backend}`, () => {
    for (const c of cases) {
      describe(c.name, () => {
        let spec: ArchSpec;
        let weights: WeightMap;
        let lora: LoraAdapter | undefined;
        let model: EngineModel;
        beforeAll(async () => {
          ({ spec, weights } = await loadModel(folderSource(fixture(c.folder))));
          lora = c.lora ? await loadLora(folderSource(fixture(c.lora)), spec) : undefined;
          model = await EngineModel.create(spec, weights, { backend, lora });
        });
        afterAll(async () => {
          await model.dispose();
        });

        it('prefill logits and taps match the reference', async () => {
          const L = spec.numLayers;
          const input: ForwardInput = {
            inputIds: ids(spec, 2, 12, 1),
            taps: { resid: [0, L], kv: [L - 1], attn: [0] },
          };
          const got = await model.forward(input);
          const want = referenceForward(spec, weights, input, { lora });
          const err = relError(got.logits.data, want.logits.data);
          console.log(`[${backend}] ${c.name} prefill logits rel err ${err.toExponential(2)}`);
          expect(err).toBeLessThan(TOL);
          for (const kind of ['resid', 'k', 'v', 'attn'] as const) {
            for (const [site, t] of want[kind]) {
              expect(relError(got[kind].get(site)!.data, t.data), `${kind}.${site}`).toBeLessThan(TOL);
            }
          }
          got.present.dispose();
        });

        it('step-by-step decode matches the reference full run', async () => {
          const T = 10;
          const P = 6;
          const all = ids(spec, 2, T, 2);
          const full = referenceForward(spec, weights, { inputIds: all }, { lora });
          const V = spec.vocabSize;
          const worst = await stepDecodeWorstError(model, all, P, full.logits.data, V);
          console.log(`[${backend}] ${c.name} decode logits rel err ${worst.toExponential(2)}`);
          expect(worst).toBeLessThan(TOL);
        });
      });
    }
  });
}
