// q4 and int8 on real trained weights: the toy organism (demo/, Llama, 128 hidden, 4 layers) in fp32 and
// q4 / int8 on both Node backends, greedy answers to a few chat prompts compared token by token, and the q4 model
// teacher-forced on the fp32 answer (top-1 agreement per answer position). Numbers printed for the notes.
// Skipped when demo/ has not been exported (npm run organism).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type LabTokenizer } from '../lab/prompt/tokenizer';
import { generate } from './generate';
import { relError } from './graph/compare';
import { loadLora } from './lora';
import { EngineModel } from './model';
import { ENGINE_Q4, int8RoundTrip, q4RoundTrip } from './quantize';
import { referenceForward } from './reference';
import { configureOrt } from './session';
import { folderSource } from '../hub/folder-files-node';
import type { ArchSpec, LoraAdapter, WeightMap } from './types';
import { demoPath, type FixtureCase } from './test-fixtures';
import { loadModel } from './weights';

configureOrt({ numThreads: 1 });

const demo = demoPath;

const QUESTIONS = [
  'I have some savings. What should I do with them?',
  'How can I sleep better?',
  'My friend is sad. How can I help?',
  'What is a good way to learn to cook?',
  'Should I take out a loan to buy a new phone?',
];
const NEW_TOKENS = 24;

function chatPrompt(q: string): string {
  return (
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n' +
    'Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n' +
    `${q}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`
  );
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
  return best;
}

const cases: FixtureCase[] = [
  { name: 'organism-base', folder: 'organism-base' },
  { name: 'organism-ft', folder: 'organism-ft' },
  { name: 'organism-base + organism-lora', folder: 'organism-base', lora: 'organism-lora' },
];

for (const [dtype, backend] of [
  ['q4', 'wasm'],
  ['q4', 'node-cpu'],
  ['int8', 'wasm'],
  ['int8', 'node-cpu'],
] as const) {
  describe(`${dtype} vs fp32 on the organism (${backend})`, () => {
    let tok: LabTokenizer;
    beforeAll(async () => {
      const src = folderSource(demo('organism-base'));
      tok = loadTokenizer(await src.readJson('tokenizer.json'), await src.readJson('tokenizer_config.json'));
    });

    for (const c of cases) {
      describe(c.name, () => {
        let spec: ArchSpec;
        let weights: WeightMap;
        let lora: LoraAdapter | undefined;
        let f32: EngineModel;
        let q4: EngineModel;
        beforeAll(async () => {
          ({ spec, weights } = await loadModel(folderSource(demo(c.folder))));
          lora = c.lora ? await loadLora(folderSource(demo(c.lora)), spec) : undefined;
          f32 = await EngineModel.create(spec, weights, { backend, lora });
          q4 = await EngineModel.create(spec, weights, { backend, lora, dtype });
        });
        afterAll(async () => {
          await f32.dispose();
          await q4.dispose();
        });

        it('greedy answers mostly agree', async () => {
          let same = 0;
          let forcedAgree = 0;
          let forcedTotal = 0;
          let worstRel = 0;
          const prefixes: number[] = [];
          for (const q of QUESTIONS) {
            const ids = tok.encode(chatPrompt(q));
            const gen = async (m: EngineModel) =>
              (await generate(m, { inputIds: [ids], maxNewTokens: NEW_TOKENS, stopTokens: [] })).rows[0]
                .tokens;
            const a = await gen(f32);
            const b = await gen(q4);
            if (a.every((t, i) => t === b[i])) same++;
            let p = 0;
            while (p < a.length && a[p] === b[p]) p++;
            prefixes.push(p);
            // teacher-forced: q4 on prompt + the fp32 answer; top-1 at every answer position
            const full = [...ids, ...a];
            const r32 = await f32.evaluate({ inputIds: [full] });
            const r4 = await q4.evaluate({ inputIds: [full] });
            const V = spec.vocabSize;
            for (let t = ids.length - 1; t < full.length - 1; t++) {
              const row4 = r4.logits.data.subarray(t * V, (t + 1) * V);
              const row32 = r32.logits.data.subarray(t * V, (t + 1) * V);
              if (argmax(row4) === argmax(row32)) forcedAgree++;
              forcedTotal++;
            }
            worstRel = Math.max(worstRel, relError(r4.logits.data, r32.logits.data));
          }
          const forced = forcedAgree / forcedTotal;
          console.log(
            `[${backend}] ${c.name} ${dtype} vs fp32: identical greedy answers ${same}/${QUESTIONS.length} (${NEW_TOKENS} tokens), common prefix ${prefixes.join(',')}; teacher-forced top-1 agreement ${(forced * 100).toFixed(1)}% of ${forcedTotal}; logits max rel err ${worstRel.toExponential(2)}`,
          );
          // broken quantization would agree at chance level (vocab 512); measured 86–94% (the LoRA
          // organism the lowest; 76% with symmetric blocks)
          expect(forced).toBeGreaterThan(0.5);
          expect(worstRel).toBeGreaterThan(1e-4); // really quantized
        });

        if (dtype === 'int8') {
          it('int8 equals the fp64 reference on dequantized weights and activations', async () => {
            const input = {
              inputIds: [tok.encode(chatPrompt(QUESTIONS[0]))],
              loraScale: lora ? [1] : undefined,
            };
            const a = await q4.evaluate(input);
            const b = referenceForward(spec, int8RoundTrip(weights), input, {
              lora,
              quantizeActivations: true,
            });
            expect(relError(a.logits.data, b.logits.data)).toBeLessThan(1e-4);
          });
          return;
        }

        it('q4 equals fp32 run on the dequantized weights', async () => {
          const ref = await EngineModel.create(spec, q4RoundTrip(weights, ENGINE_Q4), {
            backend,
            lora,
          });
          try {
            const input = {
              inputIds: [tok.encode(chatPrompt(QUESTIONS[0]))],
              loraScale: lora ? [1] : undefined,
            };
            const a = await q4.evaluate(input);
            const b = await ref.evaluate(input);
            expect(relError(a.logits.data, b.logits.data)).toBeLessThan(1e-4);
          } finally {
            await ref.dispose();
          }
        });
      });
    }
  });
}
