// The engine's home in the browser: a Web Worker answering typed requests from the UI (load, run,
// sweep, drift, …) and streaming tokens and progress back. Models that are not the embedded demo are
// preflighted (configs and adapters only, preflight.ts) before their weights download; it also holds
// the Hub token and endpoint and the folders the user picked, in memory. The UI thread never runs a
// model; this file must never touch the DOM, and never lets one failed request take the worker down.
/// <reference lib="webworker" />
import { isAbort } from '../common/abort';
import { errorMessage } from '../common/errors';
import { configureOrt, wasmThreadsFor, type BackendRequest } from '../engine/session';
import type { FileSource } from '../engine/files';
import { urlSource } from '../hub/url-files';
import { blobFolderSource } from '../hub/browser-files';
import { clearDownloadCache, resolveBrowserSource } from './hub-sources';
import { hubToken } from '../hub/token';
import { DEFAULT_HUB_ENDPOINT } from '../hub/hub-api';
import { problemOf } from './load-problem';
import {
  confirmKey,
  modelsToCheck,
  preflightJudgeOrThrow,
  preflightOrThrow,
  preflightTarget,
} from './preflight';
import { parseSpec, type ExperimentSpec, type ModelEntry, type ModelSource } from '../lab/spec/experiment';
import { Lab } from '../lab/run/lab';
import { exportPlanFromLab } from '../lab/export/resolve';
import { probeBackend, type BackendProbe } from './backend-probe';
import { selfCheck } from './selfcheck';
import { evalHandlers, type EvalHandlerContext } from './eval-handler';
import type {
  AnsweredType,
  EngineInfo,
  LoadProgress,
  LocalFile,
  RequestHandlers,
  RequestOf,
  ResponseBody,
  SpecJson,
  WorkerMessage,
  WorkerRequest,
} from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (msg: WorkerMessage) => scope.postMessage(msg);

// NOTE: ORT-web would fetch its .wasm from a CDN; the app serves its own copy under /ort/. The page is
// cross-origin isolated (vite.config.ts headers), so WASM gets a thread pool (1 thread when it is not).
const wasmThreads = wasmThreadsFor({
  crossOriginIsolated: scope.crossOriginIsolated,
  hardwareConcurrency: scope.navigator.hardwareConcurrency,
});
configureOrt({
  wasmPaths: new URL('/ort/', scope.location.origin).href,
  logLevel: 'error',
  numThreads: wasmThreads,
});
/** the backend probe, with the WASM thread count this worker configured */
const probeHere = async (): Promise<BackendProbe> => ({
  ...(await probeBackend(scope.navigator)),
  wasmThreads,
});

let probe: BackendProbe | null = null;
const labs = new Map<BackendRequest, Lab>();
const controllers = new Map<number, AbortController>();
let currentLab: Lab | null = null;
/** ids of the model requests in flight (the engine queue sends one at a time), oldest first */
const modelRequests = new Set<number>();
/** set from the models panel only (null: the public Hub); the token is sent to this host alone */
let hubEndpoint: string | null = null;
/** folders the user picked or dropped, by the name the spec's `local` source uses */
const localFolders = new Map<string, FileSource>();
/** adapter → base mappings the user accepted (confirmKey) */
const confirmed = new Set<string>();
/**
 * The spec of the newest model request that succeeded (the models the panel shows). A request whose
 * models or template fail leaves it, and `currentLab`, as they were: the previous pair stays loaded
 * and usable (the registry keeps every model it loaded).
 */
let lastSpec: ExperimentSpec | null = null;
/** the spec and lab each model request in flight got from labReady, adopted when it succeeds */
const readyFor = new Map<number, { spec: ExperimentSpec; lab: Lab }>();
/** models sections (with dtype and device) that passed the preflight */
const preflighted = new Set<string>();
/** the WebAssembly heap the memory check assumes (the page's `?wasm-heap=`); undefined: 4 GiB */
let wasmHeapBytes: number | undefined;

const MODEL_REQUESTS: ReadonlySet<WorkerRequest['type']> = new Set([
  'prepare',
  'run',
  'sweep',
  'layer-sweep',
  'drift',
  'lens',
  'attention',
  'neighbours',
  'tokenize',
  'export-plan',
  'eval',
  'eval-load',
  'eval-clear',
  'judge-answers',
]);

/** The model request that loads belong to: the newest in flight. */
const loadRequest = (): number | undefined => [...modelRequests].pop();

function postProgress(progress: LoadProgress): void {
  const id = loadRequest();
  if (id !== undefined) post({ id, type: 'progress', progress });
}

function resolveSource(s: ModelSource, prefetch = true) {
  // NOTE: download progress and cancellation belong to the model request in flight (the one that
  // asked for this load); the Hub token is the worker's in-memory one (hub/token.ts).
  const id = loadRequest();
  return resolveBrowserSource(s, {
    origin: scope.location.origin,
    endpoint: hubEndpoint ?? undefined,
    signal: id !== undefined ? controllers.get(id)?.signal : undefined,
    onProgress: postProgress,
    prefetch,
    local: (path) => localFolders.get(path),
  });
}

function backendFor(spec: ExperimentSpec): BackendRequest {
  switch (spec.runtime.device) {
    case 'webgpu':
      return 'webgpu';
    case 'wasm':
      return 'wasm';
    default:
      return 'auto';
  }
}

function labFor(spec: ExperimentSpec): Lab {
  const backend = backendFor(spec);
  let lab = labs.get(backend);
  if (!lab) {
    lab = new Lab({
      resolveSource: (s) => resolveSource(s),
      backend,
      maxPositions: 1024,
      onProgress: postProgress,
    });
    labs.set(backend, lab);
  }
  return lab;
}

/**
 * The lab for a spec, after the preflight of its non-demo models (configs and adapters only): an
 * adapter that does not fit, a base to confirm or a dtype that cannot fit stops here, before any
 * weights are downloaded. A models section that passed once is not checked again.
 */
async function labReady(spec: ExperimentSpec): Promise<Lab> {
  const models = modelsToCheck(spec);
  const key = JSON.stringify([models, spec.runtime, [...confirmed].sort(), wasmHeapBytes ?? null]);
  if (Object.keys(models).length > 0 && !preflighted.has(key)) {
    probe ??= await probeHere();
    postProgress({ stage: 'preflight', model: Object.keys(models).join(', '), loaded: 0, total: 1 });
    await preflightOrThrow(spec, {
      resolveSource: (s) => resolveSource(s, false),
      target: preflightTarget(spec.runtime.device, probe, wasmHeapBytes),
      confirmed,
    });
    postProgress({ stage: 'preflight', model: Object.keys(models).join(', '), loaded: 1, total: 1 });
    preflighted.add(key);
  }
  const lab = labFor(spec);
  const id = loadRequest();
  if (id !== undefined) readyFor.set(id, { spec, lab });
  return lab;
}

function localFolder(name: string, files: LocalFile[]): { files: number; bytes: number } {
  const source = blobFolderSource(
    files.map((f) => ({ path: f.path, blob: f.file })),
    name,
  );
  localFolders.set(name, source);
  return { files: files.length, bytes: files.reduce((n, f) => n + f.file.size, 0) };
}

function specOf(json: unknown): ExperimentSpec {
  const parsed = parseSpec(json);
  if (!parsed.ok) throw new Error(`invalid experiment spec:\n${parsed.errors.join('\n')}`);
  return parsed.spec;
}

async function announceBackend(id: number, lab: Lab, spec: ExperimentSpec): Promise<void> {
  probe ??= await probeHere();
  const handles = await lab.registry.handles(spec);
  const first = handles.values().next().value;
  if (!first) return;
  const b = first.model.engine.backend;
  post({
    id,
    type: 'backend',
    backend: {
      ...probe,
      used: b.kind + (b.adapter ? ` · ${b.adapter}` : ''),
      ...(b.reason ? { fallbackReason: b.reason } : {}),
    },
  });
}

/**
 * The loaded models of the last spec prepared, under that spec's keys (the registry keeps earlier
 * specs' models too, under their own keys); a base served by its adapter's session at dose 0 is listed
 * with that session.
 */
function loadedForSpec(lab: Lab): ReturnType<Lab['registry']['loaded']> {
  const loaded = lab.registry.loaded();
  if (!lastSpec) return loaded;
  const sig = (e: ModelEntry) => JSON.stringify([e.source, e.adapter ?? null]);
  const out: ReturnType<Lab['registry']['loaded']> = [];
  for (const [id, e] of Object.entries(lastSpec.models)) {
    const own = loaded.find((l) => sig(l.entry) === sig(e));
    const shared = e.adapter
      ? undefined
      : loaded.find((l) => l.entry.adapter && JSON.stringify(l.entry.source) === JSON.stringify(e.source));
    const hit = own ?? shared;
    if (hit) out.push({ ...hit, id, entry: e });
  }
  return out;
}

async function info(): Promise<EngineInfo> {
  const lab = currentLab;
  if (!lab) return { backend: 'none', models: [], memory: { weights: 0, kvCache: 0 } };
  const loaded = loadedForSpec(lab);
  let weights = 0;
  const counted = new Set<object>();
  const models = loaded.map(({ id, entry, model }) => {
    // the bytes the session's graph holds (weights as built: 4-bit in q4), else fp32 parameters
    const bytes = model.engine.graphBytes || model.parameterCount * 4;
    // NOTE: a base that shares its adapter's session holds no weights of its own.
    if (!counted.has(model)) weights += bytes;
    counted.add(model);
    return {
      key: id,
      source:
        entry.source.kind === 'demo' ? `embedded demo (${entry.source.name})` : JSON.stringify(entry.source),
      arch: model.arch.modelType,
      numLayers: model.arch.numLayers,
      hidden: model.arch.hiddenSize,
      vocab: model.arch.vocabSize,
      adapter: model.hasAdapter,
      dtype: model.engine.dtype,
      bytes,
    };
  });
  const b = loaded[0]?.model.engine.backend;
  return {
    backend: b ? b.kind + (b.adapter ? ` · ${b.adapter}` : '') : 'none',
    models,
    memory: { weights, kvCache: 0 },
  };
}

/**
 * One handler per answered request type, each returning that type's response (`RequestHandlers`,
 * protocol.ts: request `X` → `X-done`); events are posted on the way. A handler throws on failure or
 * cancel, and `handle` turns that into 'error' / 'cancelled'.
 */
const handlers: RequestHandlers<AbortSignal> = {
  async probe(req) {
    if (req.wasmHeapBytes !== undefined) wasmHeapBytes = req.wasmHeapBytes;
    probe ??= await probeHere();
    return { type: 'probe-done', backend: probe };
  },
  async prepare(req) {
    const spec = specOf(req.spec);
    const lab = await labReady(spec);
    const { view } = await lab.prepare(spec);
    await announceBackend(req.id, lab, spec);
    return { type: 'prepare-done', prompt: view };
  },
  async run(req, signal) {
    const spec = specOf(req.spec);
    const lab = await labReady(spec);
    const result = await lab.run(spec, {
      signal,
      // the cards count every random-perturbation trial by its own answer
      trialAnswers: true,
      onPrompt: (prompt) => {
        post({ id: req.id, type: 'prompt', prompt });
        announceBackend(req.id, lab, spec).catch(() => undefined);
      },
      onToken: (condition, tokenId, text) => post({ id: req.id, type: 'token', condition, tokenId, text }),
      onCondition: (result) => post({ id: req.id, type: 'condition', result }),
    });
    return { type: 'run-done', result };
  },
  async sweep(req, signal) {
    const spec = specOf(req.spec);
    const result = await (
      await labReady(spec)
    ).sweep(spec, {
      component: req.component,
      positions: req.positions,
      perHead: req.perHead,
      signal,
      onProgress: (partial, done, total) => post({ id: req.id, type: 'sweep', result: partial, done, total }),
    });
    return { type: 'sweep-done', result };
  },
  async attention(req, signal) {
    const spec = specOf(req.spec);
    const result = await (
      await labReady(spec)
    ).attention(spec, {
      answerTokens: req.answerTokens,
      signal,
      onProgress: (done, total) => post({ id: req.id, type: 'attention-progress', done, total }),
    });
    return { type: 'attention-done', result };
  },
  async 'layer-sweep'(req, signal) {
    const spec = specOf(req.spec);
    const r = await (await labReady(spec)).layerSweep(spec, req.component, req.positions, signal);
    return { type: 'layer-sweep-done', result: { ...r, done: true } };
  },
  async drift(req) {
    const spec = specOf(req.spec);
    return { type: 'drift-done', result: await (await labReady(spec)).drift(spec) };
  },
  async lens(req, signal) {
    const spec = specOf(req.spec);
    return { type: 'lens-done', result: await (await labReady(spec)).lens(spec, signal) };
  },
  async neighbours(req) {
    const spec = specOf(req.spec);
    const neighbours = await (await labReady(spec)).neighbours(spec, req.model, req.tokenId, req.n);
    return { type: 'neighbours-done', tokenId: req.tokenId, neighbours };
  },
  async tokenize(req) {
    const spec = specOf(req.spec);
    return { type: 'tokenize-done', tokens: await (await labReady(spec)).tokenize(spec, req.text) };
  },
  async 'export-plan'(req) {
    const spec = specOf(req.spec);
    return { type: 'export-plan-done', plan: await exportPlanFromLab(await labReady(spec), spec) };
  },
  async 'hub-token'(req) {
    hubToken.set(req.token);
    return { type: 'hub-token-done', ok: true };
  },
  async 'clear-cache'(req) {
    return { type: 'clear-cache-done', removed: await clearDownloadCache(req.repo) };
  },
  async 'hub-endpoint'(req) {
    const ep = req.endpoint?.trim() || null;
    if (ep !== null && !/^https?:\/\/[^/\s]+/.test(ep))
      throw new Error(`"${ep}" is not a Hub endpoint: expected http(s)://host`);
    hubEndpoint = ep ? ep.replace(/\/+$/, '') : null;
    return { type: 'hub-endpoint-done', endpoint: hubEndpoint ?? DEFAULT_HUB_ENDPOINT };
  },
  async 'local-folder'(req) {
    return { type: 'local-folder-done', name: req.name, ...localFolder(req.name, req.files) };
  },
  async 'confirm-base'(req) {
    confirmed.add(confirmKey(req.adapter, req.base));
    return { type: 'confirm-base-done', ok: true };
  },
  async selfcheck(req) {
    const origin = scope.location.origin;
    const result = await selfCheck(
      urlSource(new URL('/fixtures/tiny-llama/', origin).href),
      urlSource(new URL('/fixtures/tiny-llama-lora/', origin).href),
      req.backends,
      [
        {
          model: urlSource(new URL('/fixtures/tiny-gemma3/', origin).href),
          adapter: urlSource(new URL('/fixtures/tiny-gemma3-lora/', origin).href),
        },
        { model: urlSource(new URL('/fixtures/tiny-gemma2/', origin).href), adapter: null },
      ],
    );
    return { type: 'selfcheck-done', result };
  },
  async info() {
    return { type: 'info-done', info: await info() };
  },
  // the evaluation requests: eval-handler.ts, given the lab of the request's spec
  eval: async (req, signal) => evalHandlers.eval(req, await evalContext(req, signal)),
  'eval-load': async (req, signal) => evalHandlers['eval-load'](req, await evalContext(req, signal)),
  'eval-clear': async (req, signal) => evalHandlers['eval-clear'](req, await evalContext(req, signal)),
  'judge-answers': async (req, signal) => evalHandlers['judge-answers'](req, await evalContext(req, signal)),
};

async function evalContext(req: { spec: SpecJson }, signal: AbortSignal): Promise<EvalHandlerContext> {
  const spec = specOf(req.spec);
  const checkJudge = async (source: ModelSource) => {
    probe ??= await probeHere();
    await preflightJudgeOrThrow(spec, source, {
      resolveSource: (s) => resolveSource(s, false),
      target: preflightTarget(spec.runtime.device, probe, wasmHeapBytes),
      confirmed,
    });
  };
  return { lab: await labReady(spec), spec, post, signal, checkJudge };
}

/** Runs the handler of `type` (K ties the request to its handler and its response). */
function answer<K extends AnsweredType>(
  type: K,
  req: RequestOf<K>,
  signal: AbortSignal,
): Promise<ResponseBody<K>> {
  return handlers[type](req, signal);
}

async function handle(req: WorkerRequest): Promise<void> {
  if (req.type === 'cancel') {
    controllers.get(req.target)?.abort();
    return;
  }
  const ctl = new AbortController();
  controllers.set(req.id, ctl);
  if (MODEL_REQUESTS.has(req.type)) modelRequests.add(req.id);
  const signal = ctl.signal;
  try {
    const body = await answer(req.type, req, signal);
    const ready = readyFor.get(req.id);
    if (ready) [lastSpec, currentLab] = [ready.spec, ready.lab];
    post({ ...body, id: req.id });
  } catch (e) {
    // NOTE: a failure must come back as an answer, never escape: even when posting it fails (a value
    // that cannot be cloned), a plain error message still goes out.
    try {
      if (signal.aborted || isAbort(e)) {
        post({ id: req.id, type: 'cancelled' });
      } else {
        const problem = problemOf(e);
        post({
          id: req.id,
          type: 'error',
          message: errorMessage(e),
          ...(problem ? { problem } : {}),
        });
      }
    } catch (postFailure) {
      post({ id: req.id, type: 'error', message: `${errorMessage(e)} (${errorMessage(postFailure)})` });
    }
  } finally {
    controllers.delete(req.id);
    modelRequests.delete(req.id);
    readyFor.delete(req.id);
  }
}

scope.onmessage = (event: MessageEvent<WorkerRequest>) => {
  void handle(event.data);
};
