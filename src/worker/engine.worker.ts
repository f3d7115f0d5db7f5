// The engine's home in the browser: a Web Worker answering typed requests from the UI (load, run,
// sweep, drift, …) and streaming tokens and progress back. The UI thread never runs a model; this file
// must never touch the DOM, and never lets one failed request take the worker down.
/// <reference lib="webworker" />
import { configureOrt, type BackendRequest } from '../engine/session';
import { urlSource } from '../engine/source';
import { clearWorkerCache, resolveBrowserSource } from './hub-sources';
import { hubToken } from '../engine/hub-token';
import { parseSpec, type ExperimentSpec, type ModelSource } from '../lab/experiment';
import { Lab, AbortedError } from '../lab/runner';
import { probeBackend, type BackendProbe } from './backend-probe';
import { selfCheck } from './selfcheck';
import { handleEvalRequest } from './eval-handler';
import type { EngineInfo, WorkerMessage, WorkerRequest } from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (msg: WorkerMessage) => scope.postMessage(msg);

// NOTE: ORT-web would fetch its .wasm from a CDN; the app serves its own copy under /ort/.
configureOrt({ wasmPaths: new URL('/ort/', scope.location.origin).href, logLevel: 'error' });

function resolveSource(s: ModelSource) {
  // NOTE: download progress and cancellation belong to the newest request in flight (the one that
  // asked for this load); the Hub token is the worker's in-memory one (engine/hub-token.ts).
  const id = [...controllers.keys()].pop();
  return resolveBrowserSource(s, {
    origin: scope.location.origin,
    signal: id !== undefined ? controllers.get(id)?.signal : undefined,
    onProgress: (progress) => {
      if (id !== undefined) post({ id, type: 'progress', progress });
    },
  });
}

let probe: BackendProbe | null = null;
const labs = new Map<BackendRequest, Lab>();
const controllers = new Map<number, AbortController>();
let currentLab: Lab | null = null;

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

function labFor(spec: ExperimentSpec, id: number): Lab {
  const backend = backendFor(spec);
  let lab = labs.get(backend);
  if (!lab) {
    lab = new Lab({
      resolveSource,
      backend,
      maxPositions: 1024,
      onProgress: (p) => post({ id, type: 'progress', progress: p }),
    });
    labs.set(backend, lab);
  }
  currentLab = lab;
  return lab;
}

function specOf(json: unknown): ExperimentSpec {
  const parsed = parseSpec(json);
  if (!parsed.ok) throw new Error(`invalid experiment spec:\n${parsed.errors.join('\n')}`);
  return parsed.spec;
}

async function announceBackend(id: number, lab: Lab, spec: ExperimentSpec): Promise<void> {
  probe ??= await probeBackend(scope.navigator);
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

async function info(): Promise<EngineInfo> {
  const lab = currentLab;
  if (!lab) return { backend: 'none', models: [], memory: { weights: 0, kvCache: 0 } };
  const loaded = lab.registry.loaded();
  let weights = 0;
  const models = loaded.map(({ id, entry, model }) => {
    const bytes = model.parameterCount * 4;
    weights += bytes;
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

async function handle(req: WorkerRequest): Promise<void> {
  const ctl = new AbortController();
  controllers.set(req.id, ctl);
  const signal = ctl.signal;
  try {
    switch (req.type) {
      case 'probe':
        probe ??= await probeBackend(scope.navigator);
        post({ id: req.id, type: 'probe', backend: probe });
        return;
      case 'cancel':
        controllers.get(req.target)?.abort();
        return;
      case 'prepare': {
        const spec = specOf(req.spec);
        const lab = labFor(spec, req.id);
        const { view } = await lab.prepare(spec);
        await announceBackend(req.id, lab, spec);
        post({ id: req.id, type: 'prompt-done', prompt: view });
        return;
      }
      case 'run': {
        const spec = specOf(req.spec);
        const lab = labFor(spec, req.id);
        const result = await lab.run(spec, {
          signal,
          onPrompt: (prompt) => {
            post({ id: req.id, type: 'prompt', prompt });
            void announceBackend(req.id, lab, spec);
          },
          onToken: (condition, tokenId, text) =>
            post({ id: req.id, type: 'token', condition, tokenId, text }),
          onCondition: (result) => post({ id: req.id, type: 'condition', result }),
        });
        post({ id: req.id, type: 'run-done', result });
        return;
      }
      case 'sweep': {
        const spec = specOf(req.spec);
        const result = await labFor(spec, req.id).sweep(spec, {
          component: req.component,
          positions: req.positions,
          signal,
          onProgress: (partial, done, total) =>
            post({ id: req.id, type: 'sweep', result: partial, done, total }),
        });
        post({ id: req.id, type: 'sweep-done', result });
        return;
      }
      case 'layer-sweep': {
        const spec = specOf(req.spec);
        const r = await labFor(spec, req.id).layerSweep(spec, req.component, req.positions, signal);
        post({ id: req.id, type: 'layer-sweep-done', result: { ...r, done: true } });
        return;
      }
      case 'drift': {
        const spec = specOf(req.spec);
        post({ id: req.id, type: 'drift-done', result: await labFor(spec, req.id).drift(spec) });
        return;
      }
      case 'neighbours': {
        const spec = specOf(req.spec);
        const neighbours = await labFor(spec, req.id).neighbours(spec, req.model, req.tokenId, req.n);
        post({ id: req.id, type: 'neighbours', tokenId: req.tokenId, neighbours });
        return;
      }
      case 'tokenize': {
        const spec = specOf(req.spec);
        post({ id: req.id, type: 'tokenize', tokens: await labFor(spec, req.id).tokenize(spec, req.text) });
        return;
      }
      case 'hub-token':
        hubToken.set(req.token);
        post({ id: req.id, type: 'hub-token', ok: true });
        return;
      case 'clear-cache':
        post({ id: req.id, type: 'clear-cache', removed: await clearWorkerCache(req.repo) });
        return;
      case 'selfcheck': {
        const origin = scope.location.origin;
        const result = await selfCheck(
          urlSource(new URL('/fixtures/tiny-llama/', origin).href),
          urlSource(new URL('/fixtures/tiny-llama-lora/', origin).href),
          req.backends,
        );
        post({ id: req.id, type: 'selfcheck', result });
        return;
      }
      case 'info':
        post({ id: req.id, type: 'info', info: await info() });
        return;
      case 'eval':
      case 'eval-load':
      case 'eval-clear': {
        const spec = specOf(req.spec);
        await handleEvalRequest(req, { lab: labFor(spec, req.id), spec, post, signal });
        return;
      }
    }
  } catch (e) {
    if (signal.aborted || e instanceof AbortedError || (e instanceof Error && e.name === 'AbortError')) {
      post({ id: req.id, type: 'cancelled' });
    } else {
      post({ id: req.id, type: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  } finally {
    controllers.delete(req.id);
  }
}

scope.onmessage = (event: MessageEvent<WorkerRequest>) => {
  void handle(event.data);
};
