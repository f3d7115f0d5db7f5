// `npm run bench -- lens [--json] [--runtime node_cpu|wasm] [--model DIR] [--prompt T] [--reps N]`: the
// logit lens's cost against a forward pass, on the Qwen2.5-0.5B-shaped random model under
// `.cache/bench-qwen0.5b/` when present (24 layers, vocab 151,936 × hidden 896), else the SmolLM2-shaped
// bench model. Times (median of reps, after one warm-up): a plain prefill of the prompt (last logits
// only); the same prefill tapping every residual site (what the lens reads); the lens head on the 25
// site vectors of one condition and on 100 (four conditions); and reports lens ÷ forward. Prints
// numbers, never asserts. Progress on stderr; stdout a table or, with --json, one JSON object.

import { existsSync } from 'node:fs';
import { folderSource } from '../src/hub/folder-files-node';
import { LensHead, lensWeightsOf } from '../src/engine/lens';
import { EngineModel } from '../src/engine/model';
import { configureOrt } from '../src/engine/session';
import { loadModel } from '../src/engine/weights';
import { ensureBenchModel, loadSample, log, machineInfo, median, timed, type Timing } from './lib';

interface LensArgs {
  json: boolean;
  runtime: 'node_cpu' | 'wasm';
  model: string;
  prompt: number;
  reps: number;
}

function parse(argv: readonly string[]): LensArgs {
  const a: LensArgs = {
    json: false,
    runtime: 'node_cpu',
    model: existsSync('.cache/bench-qwen0.5b/model.safetensors')
      ? '.cache/bench-qwen0.5b'
      : '.cache/bench-model',
    prompt: 48,
    reps: 3,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--json') a.json = true;
    else if (k === '--runtime' && (v === 'node_cpu' || v === 'wasm')) {
      a.runtime = v;
      i++;
    } else if (k === '--model' && v) {
      a.model = v;
      i++;
    } else if (k === '--prompt' && Number(v) >= 2) {
      a.prompt = Number(v);
      i++;
    } else if (k === '--reps' && Number(v) >= 1) {
      a.reps = Number(v);
      i++;
    } else throw new Error(`bench lens: unknown or bad option ${k}`);
  }
  return a;
}

async function med(reps: number, f: () => Promise<unknown>): Promise<Timing> {
  await f(); // warm-up
  const ts: Timing[] = [];
  for (let i = 0; i < reps; i++) ts.push(await timed(f));
  return { wall: median(ts.map((t) => t.wall)), cpu: median(ts.map((t) => t.cpu)) };
}

export async function benchLens(argv: readonly string[]): Promise<void> {
  const args = parse(argv);
  const start = loadSample();
  if (args.model === '.cache/bench-model') ensureBenchModel(args.model);
  configureOrt({ numThreads: 1, logLevel: 'error' });
  log(`lens bench: ${args.model} on ${args.runtime}, prompt ${args.prompt}, load ${start.load.join(' ')}`);
  const { spec, weights } = await loadModel(folderSource(args.model));
  const backend = args.runtime === 'wasm' ? 'wasm' : 'node-cpu';
  const model = await EngineModel.create(spec, weights, { backend, maxPositions: 512 });
  const lens = await LensHead.create(spec, lensWeightsOf(spec, weights), backend);
  const L = spec.numLayers;
  const H = spec.hiddenSize;
  const T = args.prompt;
  const ids = [Array.from({ length: T }, (_, t) => (t * 7919 + 13) % spec.vocabSize)];
  const sites = Array.from({ length: L + 1 }, (_, l) => l);
  log('plain forward');
  const plain = await med(args.reps, () => model.evaluate({ inputIds: ids, taps: { logits: 'last' } }));
  log('forward with every residual tap');
  let resid = new Float32Array(0);
  const tapped = await med(args.reps, async () => {
    const out = await model.evaluate({ inputIds: ids, taps: { resid: sites, logits: 'last' } });
    resid = new Float32Array((L + 1) * H);
    sites.forEach((l) => resid.set(out.resid.get(l)!.data.subarray((T - 1) * H, T * H), l * H));
  });
  const four = new Float32Array(4 * resid.length);
  for (let c = 0; c < 4; c++) four.set(resid, c * resid.length);
  log('lens head, one condition');
  const lens1 = await med(args.reps, () => lens.apply(resid, 10, [1, 2]));
  log('lens head, four conditions');
  const lens4 = await med(args.reps, () => lens.apply(four, 10, [1, 2]));
  await model.dispose();
  await lens.dispose();
  const r = (x: number): number => Number(x.toPrecision(4));
  const report = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    load_avg: { start, end: loadSample() },
    model: `${args.model} (${L} layers, hidden ${H}, vocab ${spec.vocabSize}), fp32`,
    runtime: args.runtime,
    threads: 1,
    prompt_tokens: T,
    reps: args.reps,
    forward_ms: r(plain.wall),
    forward_resid_taps_ms: r(tapped.wall),
    lens_1_condition_ms: r(lens1.wall),
    lens_4_conditions_ms: r(lens4.wall),
    /** one condition's lens (tapped forward + head) in plain forwards */
    lens_1_condition_in_forwards: r((tapped.wall + lens1.wall) / plain.wall),
    /** the head alone, per condition, in plain forwards */
    head_per_condition_in_forwards: r(lens4.wall / 4 / plain.wall),
    cpu_ms: { forward: r(plain.cpu), tapped: r(tapped.cpu), lens1: r(lens1.cpu), lens4: r(lens4.cpu) },
  };
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(
      [
        `${report.machine.cpu}, ${report.runtime}, 1 thread, ${report.date}`,
        `${report.model}; prompt ${T} tokens; load ${start.load.join(' ')} → ${report.load_avg.end.load.join(' ')}`,
        `forward (last logits)           ${report.forward_ms} ms`,
        `forward + 25 residual taps      ${report.forward_resid_taps_ms} ms`,
        `lens head, 1 condition (25 rows) ${report.lens_1_condition_ms} ms`,
        `lens head, 4 conditions (100)   ${report.lens_4_conditions_ms} ms`,
        `one condition's lens ÷ forward  ${report.lens_1_condition_in_forwards} (target ≤ 2)`,
        `head per condition ÷ forward    ${report.head_per_condition_in_forwards}`,
        '',
      ].join('\n'),
    );
  }
}
