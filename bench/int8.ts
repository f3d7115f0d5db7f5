// `npm run bench -- --only int8`: the weight dtypes against each other — fp32, int8 (DynamicQuantizeMatMul)
// and q4 (MatMulNBits) — prefill of a 33-token prompt and greedy decode after it, hooked graphs, on each
// runtime, on the SmolLM2-135M shape (.cache/bench-model) and, when present, the Qwen2.5-0.5B and
// Llama-3.2-1B shapes (.cache/bench-qwen0.5b, .cache/bench-llama1b: `npx tsx scripts/fixtures/real-shapes.ts
// qwen0.5b llama1b`). One model at a time, built one tensor at a time as the app does (storeWeights: the
// 1B fp32 graph is 4.9 GB). A case that cannot be built or opened (the 1B in fp32 on WASM's 4 GiB heap)
// is a row with its error. Prints numbers, never asserts; progress on stderr.

import { existsSync } from 'node:fs';
import { generate } from '../src/engine/generate';
import { EngineModel } from '../src/engine/model';
import { folderSource } from '../src/hub/folder-files-node';
import { openModel, storeWeights } from '../src/engine/weights';
import { errorMessage } from '../src/common/errors';
import { cpuNow, log, median, timed, type Runtime } from './lib';

export type BenchDtype = 'fp32' | 'int8' | 'q4';
const DTYPES: readonly BenchDtype[] = ['fp32', 'int8', 'q4'];

export interface Int8Figures {
  model: string;
  runtime: Runtime;
  dtype: BenchDtype;
  graphBytes: number;
  /** session create (graph build + ORT), s */
  createS: number;
  /** 33-token prefill, tok/s (wall, median) */
  prefillTokS: number;
  /** decode after the prompt, tok/s (wall, median of rounds) */
  decodeTokS: number;
  /** why the case has no figures (it could not be built or opened) */
  error?: string;
}

const PROMPT = 33;

function ids(vocab: number, T: number, salt: number): number[] {
  return Array.from({ length: T }, (_, t) => (t * 7919 + salt * 104729 + 11) % vocab);
}

async function decodeTokS(m: EngineModel, steps: number): Promise<number> {
  const stamps: number[] = [];
  await generate(m, {
    inputIds: [ids(m.spec.vocabSize, PROMPT, 1)],
    maxNewTokens: steps + 1,
    stopTokens: [],
    onToken: () => stamps.push(performance.now()),
  });
  return (steps / (stamps[steps] - stamps[0])) * 1000;
}

export async function measureInt8(
  runtimes: readonly Runtime[],
  threads: number,
  reps: number,
): Promise<Int8Figures[]> {
  const out: Int8Figures[] = [];
  const models = [
    { name: 'SmolLM2-135M shape', dir: '.cache/bench-model', steps: 16, skip: [] as string[] },
    // NOTE: q4 on WASM decodes at ~0.6 tok/s on this shape: fewer steps there
    { name: 'Qwen2.5-0.5B shape', dir: '.cache/bench-qwen0.5b', steps: 8, skip: [] as string[] },
    { name: 'Llama-3.2-1B shape', dir: '.cache/bench-llama1b', steps: 4, skip: [] as string[] },
  ];
  for (const mdl of models) {
    if (!existsSync(`${mdl.dir}/config.json`)) {
      log(`int8: ${mdl.dir} missing, ${mdl.name} skipped`);
      continue;
    }
    for (const runtime of runtimes) {
      for (const dtype of DTYPES) {
        log(`int8: ${mdl.name}, ${runtime}, ${dtype}: creating`);
        const t0 = performance.now();
        const { spec, store } = await openModel(folderSource(mdl.dir));
        let m: EngineModel;
        try {
          m = await EngineModel.create(spec, storeWeights(spec, store), {
            backend: runtime === 'wasm' ? 'wasm' : 'node-cpu',
            dtype,
            session: { intraOpNumThreads: threads },
          });
        } catch (e) {
          const error = errorMessage(e).split('\n')[0];
          log(`int8: ${mdl.name}, ${runtime}, ${dtype}: not created: ${error}`);
          out.push({
            model: mdl.name,
            runtime,
            dtype,
            graphBytes: NaN,
            createS: NaN,
            prefillTokS: NaN,
            decodeTokS: NaN,
            error,
          });
          continue;
        }
        const createS = (performance.now() - t0) / 1000;
        try {
          const pre: number[] = [];
          const prompt = ids(spec.vocabSize, PROMPT, 0);
          for (let i = 0; i <= reps; i++) {
            const t = await timed(async () => {
              const r = await m.forward({ inputIds: [prompt], taps: { logits: 'last' } });
              r.present.dispose();
            });
            if (i > 0) pre.push((PROMPT / t.wall) * 1000); // the first is the warm-up
          }
          const steps = runtime === 'wasm' && dtype === 'q4' ? Math.min(4, mdl.steps) : mdl.steps;
          const dec: number[] = [];
          for (let i = 0; i < Math.max(1, reps - 1); i++) dec.push(await decodeTokS(m, steps));
          const f: Int8Figures = {
            model: mdl.name,
            runtime,
            dtype,
            graphBytes: m.graphBytes,
            createS: Math.round(createS * 10) / 10,
            prefillTokS: Math.round(median(pre) * 10) / 10,
            decodeTokS: Math.round(median(dec) * 100) / 100,
          };
          log(
            `int8: ${mdl.name}, ${runtime}, ${dtype}: prefill ${f.prefillTokS} tok/s, decode ${f.decodeTokS} tok/s, create ${f.createS} s (cpu ${Math.round(cpuNow())} ms so far)`,
          );
          out.push(f);
        } finally {
          await m.dispose();
        }
      }
    }
  }
  return out;
}

export function int8Table(rows: readonly Int8Figures[]): string {
  const head =
    '| model | runtime | dtype | graph MB | create s | prefill 33 tok/s | decode tok/s | decode × fp32 |';
  const lines = [head, '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.model} | ${r.runtime} | ${r.dtype} | — | — | — | — | not created: ${r.error} |`);
      continue;
    }
    const base = rows.find((x) => x.model === r.model && x.runtime === r.runtime && x.dtype === 'fp32');
    const ratio = base && !base.error ? (r.decodeTokS / base.decodeTokS).toFixed(2) : '—';
    lines.push(
      `| ${r.model} | ${r.runtime} | ${r.dtype} | ${(r.graphBytes / 1e6).toFixed(0)} | ${r.createS} | ${r.prefillTokS} | ${r.decodeTokS} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}
