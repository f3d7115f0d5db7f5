// `npm run bench -- --only load`: loading the Qwen2.5-0.5B-shaped LoRA pair (.cache/bench-qwen0.5b +
// -lora, written by `npx tsx scripts/fixtures/real-shapes.ts`) from cached files to the first answer, each
// case in a fresh child process so its peak RSS is its own: weights read + graph built, ORT session
// create, the first answer (33-token prompt, base and finetuned rows, greedy, 8 tokens), peak RSS
// (getrusage maxrss, what `/usr/bin/time -v` reports) and RSS once the session is open, against the
// graph's weight bytes. Two ways of loading: `stream` (what the lab does: each tensor read, converted
// and written into the external data; the embedding, lens head and K/V projections read again after the
// session, as models.ts keeps them) and `map` (the old path: the whole fp32 WeightMap first, then the graph
// built from it), and on node_cpu `file` / `file-warm` (the CLI's graph cache, src/cli/graph-cache.ts:
// `file` builds the graph into a fresh `.cache/bench-graphs` entry, one tensor at a time, and opens the
// session from its path; `file-warm` opens that entry without building). `--load-dtypes fp32,int8,q4` (default fp32), `--load-ways stream,map` (default both),
// `--load-session-config key=value,…` (ORT session config entries, e.g. session.disable_prepacking=1).
// Prints numbers, never asserts; progress on stderr. One 0.5B child at a time.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { generate } from '../src/engine/generate';
import { loadLora } from '../src/engine/lora';
import { EngineModel } from '../src/engine/model';
import { configureOrt } from '../src/engine/session';
import { loadModel, openModel, storeWeights } from '../src/engine/weights';
import { folderSource } from '../src/hub/folder-files-node';
import { FileGraphStore, folderIdentity } from '../src/cli/graph-cache';
import { loadSample, log, type LoadSample, type Runtime } from './lib';

export type LoadWay = 'stream' | 'map' | 'file' | 'file-warm';
export type LoadDtype = 'fp32' | 'int8' | 'q4';

const MODEL = '.cache/bench-qwen0.5b';
const ADAPTER = '.cache/bench-qwen0.5b-lora';
/** the graph cache of the file ways (git-ignored; removed before each `file` case) */
const GRAPHS = '.cache/bench-graphs';
const PROMPT = 33;
const NEW_TOKENS = 8;

export interface LoadFigures {
  runtime: Runtime;
  /** ORT session config entries the case ran with, if any */
  sessionConfig?: Record<string, string>;
  way: LoadWay;
  dtype: LoadDtype;
  /** weights read and the graph built (stream: both at once; map: the WeightMap, then the graph), s */
  buildS: number;
  /** ORT InferenceSession.create, s */
  sessionS: number;
  /** reading what models.ts keeps beyond the session (embedding, norm, K/V projections; not `map`), s */
  keptS: number;
  /** prompt prefill + 8 greedy tokens for the base and the finetuned row (one batch), s */
  answerS: number;
  /** from the start to the first answer, s */
  totalS: number;
  /** bytes of the graph handed to ORT (weights as built + protobuf) */
  graphBytes: number;
  /** peak resident set of the child (getrusage maxrss) */
  peakRssBytes: number;
  /** resident set once the session is open (and the kept tensors read) */
  rssCreatedBytes: number;
  /** the same after a full GC */
  rssGcBytes: number;
  /** resident set after the first answer */
  rssAfterBytes: number;
  /** whether the graph was built (false: opened from the graph cache) */
  graphBuilt: boolean;
  /** CPU seconds of the child, user and system */
  userS: number;
  systemS: number;
  load: [LoadSample, LoadSample];
}

interface ChildArgs {
  runtime: Runtime;
  way: LoadWay;
  dtype: LoadDtype;
  threads: number;
  /** ORT session config entries (e.g. session.disable_prepacking=1) */
  sessionConfig?: Record<string, string>;
}

function promptIds(vocab: number): number[] {
  return Array.from({ length: PROMPT }, (_, t) => (t * 7919 + 104729 + 11) % vocab);
}

/** One load in this process (the child). */
async function loadOnce(a: ChildArgs): Promise<Omit<LoadFigures, 'load'>> {
  configureOrt({ numThreads: a.threads, logLevel: 'error' });
  const backend = a.runtime === 'wasm' ? 'wasm' : 'node-cpu';
  const t0 = performance.now();
  let tSession = 0;
  let tOpened = 0;
  const onStage = (stage: string) => {
    if (stage === 'session') tSession = performance.now();
  };
  let engine: EngineModel;
  const opts = {
    backend,
    dtype: a.dtype,
    maxPositions: 2048,
    onStage,
    ...(a.sessionConfig ? { session: { sessionConfig: a.sessionConfig } } : {}),
  } as const;
  if (a.way === 'map') {
    const loaded = await loadModel(folderSource(MODEL));
    const lora = await loadLora(folderSource(ADAPTER), loaded.spec);
    engine = await EngineModel.create(loaded.spec, loaded.weights, { ...opts, lora });
  } else {
    const opened = await openModel(folderSource(MODEL));
    const lora = await loadLora(folderSource(ADAPTER), opened.spec);
    const weights = storeWeights(opened.spec, opened.store);
    // NOTE: the file ways identify the model and hash the adapter as the CLI does (counted in build)
    const graphStore =
      a.way === 'file' || a.way === 'file-warm'
        ? {
            store: new FileGraphStore(GRAPHS, { log }),
            source: JSON.stringify({
              model: await folderIdentity(MODEL),
              adapter: await folderIdentity(ADAPTER),
            }),
          }
        : undefined;
    engine = await EngineModel.create(opened.spec, weights, {
      ...opts,
      lora,
      ...(graphStore ? { graphStore } : {}),
    });
    weights.release();
    tOpened = performance.now();
    // what models.ts keeps beyond the session: the final norm and the K/V projections (the embedding and
    // an untied head are read only when a random perturbation or the lens asks, which this answer does not)
    const kept = [await weights.read('model.norm.weight')];
    for (let l = 0; l < opened.spec.numLayers; l++) {
      for (const t of ['k_proj', 'v_proj']) {
        kept.push(await weights.read(`model.layers.${l}.self_attn.${t}.weight`));
        if (opened.spec.qkvBias) kept.push(await weights.read(`model.layers.${l}.self_attn.${t}.bias`));
      }
    }
    (globalThis as { keptWeights?: unknown }).keptWeights = kept;
  }
  const tCreated = performance.now();
  if (!tOpened) tOpened = tCreated;
  const rssCreatedBytes = process.memoryUsage().rss;
  // NOTE: a full GC, so what the JS side still holds is told apart from garbage not yet collected
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  const rssGcBytes = process.memoryUsage().rss;
  const ids = promptIds(engine.spec.vocabSize);
  await generate(engine, {
    inputIds: [ids, ids],
    loraScale: [0, 1],
    maxNewTokens: NEW_TOKENS,
    stopTokens: [],
  });
  const tAnswer = performance.now();
  const ru = process.resourceUsage();
  return {
    runtime: a.runtime,
    ...(a.sessionConfig ? { sessionConfig: a.sessionConfig } : {}),
    way: a.way,
    dtype: a.dtype,
    buildS: (tSession - t0) / 1000,
    sessionS: (tOpened - tSession) / 1000,
    keptS: (tCreated - tOpened) / 1000,
    answerS: (tAnswer - tCreated) / 1000,
    totalS: (tAnswer - t0) / 1000,
    graphBytes: engine.graphBytes,
    graphBuilt: engine.graphBuilt,
    peakRssBytes: ru.maxRSS * 1024,
    rssCreatedBytes,
    rssGcBytes,
    rssAfterBytes: process.memoryUsage().rss,
    userS: ru.userCPUTime / 1e6,
    systemS: ru.systemCPUTime / 1e6,
  };
}

const SELF = fileURLToPath(import.meta.url);

export async function measureLoad(
  runtimes: readonly Runtime[],
  threads: number,
  dtypes: readonly LoadDtype[],
  ways: readonly LoadWay[],
  sessionConfig?: Record<string, string>,
): Promise<LoadFigures[]> {
  if (!existsSync(`${MODEL}/config.json`) || !existsSync(`${ADAPTER}/adapter_config.json`)) {
    log(`load: ${MODEL} or ${ADAPTER} missing (npx tsx scripts/fixtures/real-shapes.ts); skipped`);
    return [];
  }
  const out: LoadFigures[] = [];
  for (const runtime of runtimes) {
    for (const dtype of dtypes) {
      for (const way of ways) {
        if ((way === 'file' || way === 'file-warm') && runtime !== 'node_cpu') {
          log(`load: ${runtime} ${way}: graph files open on node_cpu only; skipped`);
          continue;
        }
        if (way === 'file') rmSync(GRAPHS, { recursive: true, force: true });
        const hasEntry = existsSync(GRAPHS) && readdirSync(GRAPHS).some((e) => !e.startsWith('.'));
        if (way === 'file-warm' && ways[ways.indexOf(way) - 1] !== 'file' && !hasEntry) {
          // NOTE: the entry this dtype's file-warm opens, built by an unrecorded child first
          log(`load: ${runtime} ${dtype} file-warm: building its graph file first (not measured)`);
          const prep: ChildArgs = { runtime, way: 'file', dtype, threads };
          spawnSync(process.execPath, [...process.execArgv, SELF, '--load-child', JSON.stringify(prep)], {
            stdio: ['ignore', 'ignore', 'inherit'],
          });
        }
        const args: ChildArgs = { runtime, way, dtype, threads, ...(sessionConfig ? { sessionConfig } : {}) };
        log(`load: ${runtime} ${dtype} ${way} (child process)`);
        const before = loadSample();
        // NOTE: a fresh process per case: peak RSS is a process's high-water mark
        const r = spawnSync(
          process.execPath,
          [...process.execArgv, SELF, '--load-child', JSON.stringify(args)],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
        );
        const line = r.stdout.trim().split('\n').pop() ?? '';
        if (r.status !== 0 || !line.startsWith('{')) {
          log(`load: ${runtime} ${dtype} ${way} failed (exit ${r.status}, signal ${r.signal})`);
          continue;
        }
        const f = {
          ...(JSON.parse(line) as Omit<LoadFigures, 'load'>),
          load: [before, loadSample()] as [LoadSample, LoadSample],
        };
        log(
          `load: ${runtime} ${dtype} ${way}: build ${f.buildS.toFixed(1)} s, session ${f.sessionS.toFixed(1)} s, kept ${f.keptS.toFixed(1)} s, ` +
            `answer ${f.answerS.toFixed(1)} s; peak RSS ${(f.peakRssBytes / 1e9).toFixed(2)} GB = ` +
            `${(f.peakRssBytes / f.graphBytes).toFixed(2)}× the graph${f.graphBuilt ? '' : ' (graph opened, not built)'}`,
        );
        out.push(f);
      }
    }
  }
  return out;
}

const gb = (b: number): string => (b / 1e9).toFixed(2);

export function loadTable(rows: readonly LoadFigures[]): string {
  const head =
    '| runtime | dtype | way | build s | session s | kept s | answer s | total s | graph GB | peak RSS GB | peak ÷ graph | RSS open / after GC / after answer GB | CPU user / sys s | load |\n' +
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |';
  const body = rows.map(
    (r) =>
      `| ${r.runtime} | ${r.dtype} | ${r.way}${
        r.sessionConfig
          ? ` (${Object.entries(r.sessionConfig)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')})`
          : ''
      }${r.way === 'file-warm' && r.graphBuilt ? ' (built: no entry for this key)' : ''} | ${r.buildS.toFixed(1)} | ${r.sessionS.toFixed(1)} | ${r.keptS.toFixed(1)} | ${r.answerS.toFixed(1)} | ` +
      `${r.totalS.toFixed(1)} | ${gb(r.graphBytes)} | ${gb(r.peakRssBytes)} | ${(r.peakRssBytes / r.graphBytes).toFixed(2)} | ` +
      `${gb(r.rssCreatedBytes)} / ${gb(r.rssGcBytes)} / ${gb(r.rssAfterBytes)} | ${r.userS.toFixed(1)} / ${r.systemS.toFixed(1)} | ${r.load[0].load[0]}–${r.load[1].load[0]} |`,
  );
  return [
    '### Load: Qwen2.5-0.5B-shaped LoRA pair (one session), cached files → first answer',
    '',
    head,
    ...body,
  ].join('\n');
}

if (process.argv[2] === '--load-child') {
  loadOnce(JSON.parse(process.argv[3]) as ChildArgs).then(
    (f) => {
      process.stdout.write(`${JSON.stringify(f)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`load child failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
