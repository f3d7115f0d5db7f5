// Scratch measurement for issue 14 (MLAS prepacking on a file-backed node-cpu session): one child per
// case, as bench/load.ts. Opens the Qwen2.5-0.5B-shaped LoRA pair from its graph file in
// .cache/bench-graphs (bench/load.ts's entry; built first when missing), with or without
// `session.disable_prepacking=1`, reads the embedding, the norm and the K/V projections (what models.ts
// kept before it read the embedding on first use; a perturbation run still reads it), then two greedy generations of 2 rows
// (base, finetuned) × 33 prompt tokens + 33 new tokens: prefill s (the prompt forward and the first token)
// and decode tok/s (the 32 steps after it), the first generation (weights' pages first touched) and the
// second. Peak RSS by getrusage. `npx tsx bench/prepack.ts on|off|packed [… …]` (packed: the entry's
// prepacked copy, saved by the first packed open). Prints JSON lines.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generate } from '../src/engine/generate';
import { loadLora } from '../src/engine/lora';
import { EngineModel } from '../src/engine/model';
import { configureOrt } from '../src/engine/session';
import { openModel, storeWeights } from '../src/engine/weights';
import { folderSource } from '../src/hub/folder-files-node';
import { FileGraphStore, folderIdentity } from '../src/cli/graph-cache';
import { loadSample, log } from './lib';

const MODEL = '.cache/bench-qwen0.5b';
const ADAPTER = '.cache/bench-qwen0.5b-lora';
const GRAPHS = '.cache/bench-graphs';
const PROMPT = 33;
const NEW = 33;

async function child(mode: 'on' | 'off' | 'packed'): Promise<Record<string, unknown>> {
  configureOrt({ numThreads: 1, logLevel: 'error' });
  const t0 = performance.now();
  let tSession = 0;
  const opened = await openModel(folderSource(MODEL));
  const lora = await loadLora(folderSource(ADAPTER), opened.spec);
  const weights = storeWeights(opened.spec, opened.store);
  const engine = await EngineModel.create(opened.spec, weights, {
    backend: 'node-cpu',
    dtype: 'fp32',
    maxPositions: 2048,
    lora,
    onStage: (s) => {
      if (s === 'session') tSession = performance.now();
    },
    ...(mode === 'off' ? { session: { sessionConfig: { 'session.disable_prepacking': '1' } } } : {}),
    graphStore: {
      // NOTE: 'on' packs at every open (no prepacked copy), 'packed' opens the entry's prepacked copy
      store: new FileGraphStore(GRAPHS, { log, packed: mode === 'packed' }),
      source: JSON.stringify({ model: await folderIdentity(MODEL), adapter: await folderIdentity(ADAPTER) }),
    },
  });
  weights.release();
  const tOpen = performance.now();
  const kept = [await weights.read('model.embed_tokens.weight'), await weights.read('model.norm.weight')];
  for (let l = 0; l < opened.spec.numLayers; l++)
    for (const t of ['k_proj', 'v_proj'])
      kept.push(await weights.read(`model.layers.${l}.self_attn.${t}.weight`));
  (globalThis as { kept?: unknown }).kept = kept;
  const tKept = performance.now();
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const vocab = engine.spec.vocabSize;
  const ids = Array.from({ length: PROMPT }, (_, t) => (t * 7919 + 104729 + 11) % vocab);
  const gens = [];
  for (let g = 0; g < 2; g++) {
    const c0 = cpu();
    const s = performance.now();
    let first = 0;
    let firstCpu = 0;
    const r = await generate(engine, {
      inputIds: [ids, ids],
      loraScale: [0, 1],
      maxNewTokens: NEW,
      stopTokens: [],
      onToken: (_t, row, step) => {
        if (step === 0 && row === 1) {
          first = performance.now();
          firstCpu = cpu();
        }
      },
    });
    const e = performance.now();
    const c1 = cpu();
    const steps = NEW - 1;
    gens.push({
      prefillS: (first - s) / 1000,
      prefillTokS: (2 * PROMPT) / ((first - s) / 1000),
      prefillCpuS: firstCpu - c0,
      decodeS: (e - first) / 1000,
      decodeStepsPerS: steps / ((e - first) / 1000),
      decodeCpuPerStepMs: ((c1 - firstCpu) / steps) * 1000,
      tokens: r.rows.map((x) => x.tokens.slice(0, 4).join(',')).join(' | '),
    });
  }
  const ru = process.resourceUsage();
  return {
    mode,
    built: engine.graphBuilt,
    buildS: (tSession - t0) / 1000,
    sessionS: (tOpen - tSession) / 1000,
    keptS: (tKept - tOpen) / 1000,
    gens,
    peakGB: (ru.maxRSS * 1024) / 1e9,
    graphGB: engine.graphBytes / 1e9,
    userS: ru.userCPUTime / 1e6,
    sysS: ru.systemCPUTime / 1e6,
  };
}

const SELF = fileURLToPath(import.meta.url);
if (process.argv[2] === '--child') {
  child(process.argv[3] as 'on' | 'off' | 'packed').then(
    (f) => {
      process.stdout.write(`${JSON.stringify(f)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`child failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
} else {
  for (const mode of process.argv.slice(2)) {
    const before = loadSample();
    const r = spawnSync(process.execPath, [...process.execArgv, SELF, '--child', mode], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    process.stdout.write(
      `${JSON.stringify({ ...JSON.parse(line), load: [before.load[0], loadSample().load[0]] })}\n`,
    );
  }
}
