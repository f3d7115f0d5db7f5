// Models panel: which base / finetuned pair the spec uses — the embedded demo organism (with a choice
// of finetune), a catalog of known real pairs, Hub ids, URLs or local folders, with a LoRA adapter —
// plus Hub access (token, endpoint, cache), download progress and load errors with what to do, runtime
// preferences, the backend actually in use and the memory held. Edits go into the spec; it must never
// load a model itself (the worker does, through the session) and never hold a token.
import { useId, useState } from 'react';
import type { CatalogPair } from '../../lab/run/catalog';
import { defaultSpec, type ExperimentSpec } from '../../lab/spec/experiment';
import { formatBytes } from '../../common/format';
import { fallbackNote, recommendWasm } from '../backend-label';
import { describeSource } from '../format';
import { useSession } from '../session-context';
import { replaceModels } from '../spec-edit';
import { useLab } from '../store';
import { wasmHeapFromQuery } from '../wasm-heap';
import { CatalogPicker, isCatalogPair } from './CatalogPicker';
import { DemoModelPicker, demoFinetuneOf } from './DemoModelPicker';
import { HubAccess } from './HubAccess';
import { HubModelForm } from './HubModelForm';
import { LoadStatus } from './LoadStatus';
import { LocalFolderPicker } from './LocalFolderPicker';

type Mode = 'demo' | 'catalog' | 'hub' | 'url' | 'local';

function modeOf(models: ExperimentSpec['models']): Mode {
  const kinds = Object.values(models).flatMap((m) => [m.source.kind, ...(m.adapter ? [m.adapter.kind] : [])]);
  if (kinds.every((k) => k === 'demo')) return 'demo';
  if (isCatalogPair(models)) return 'catalog';
  if (kinds.includes('local')) return 'local';
  if (kinds.includes('url')) return 'url';
  return 'hub';
}

function jsHeap(): number | null {
  const m = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
  return m ? m.usedJSHeapSize : null;
}

export function ModelsPanel() {
  const session = useSession();
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const notify = useLab((s) => s.notify);
  const backend = useLab((s) => s.backend);
  const backendUsed = useLab((s) => s.backendUsed);
  const backendError = useLab((s) => s.backendError);
  const info = useLab((s) => s.info);
  const promptStatus = useLab((s) => s.promptStatus);
  const origin = useLab((s) => s.origin);
  const [mode, setMode] = useState<Mode>(() => modeOf(spec.models));
  // NOTE: models that arrive from a link, a file or a lesson switch the mode to match; edits made
  // here do not (a half-filled form stays in its mode).
  const modelsKey = JSON.stringify(spec.models);
  const [seenModels, setSeenModels] = useState(modelsKey);
  if (modelsKey !== seenModels) {
    setSeenModels(modelsKey);
    if (origin !== 'edit') setMode(modeOf(spec.models));
  }
  const uid = useId();

  const setModels = (
    models: ExperimentSpec['models'],
    templateArgs?: Record<string, string | number | boolean>,
  ) => {
    const same = JSON.stringify(models) === JSON.stringify(spec.models);
    let dropped: string[] = [];
    const ok = setSpec((s) => {
      const r = replaceModels(s, models, templateArgs);
      dropped = r.dropped;
      return r.spec;
    });
    if (ok && dropped.length > 0)
      notify(
        'info',
        `Removed conditions that used models no longer in the experiment: ${dropped.join(', ')}.`,
      );
    // NOTE: the same models again (a folder picked anew, a fixed token) change no prompt, so no run starts.
    if (ok && same && promptStatus === 'error') void session?.retryLoad();
  };
  const pickCatalog = (c: CatalogPair) => setModels(c.models, c.templateArgs);

  const heap = jsHeap();
  const wasmHeap = typeof location === 'undefined' ? null : wasmHeapFromQuery(location.search);
  // NOTE: what the engine reports belongs to the last models that loaded; not to sources that failed.
  // NOTE: nor while a load is in flight (the previous models' numbers would sit next to the new names).
  const modelInfo = new Map(
    (promptStatus === 'error' || promptStatus === 'running' ? [] : (info?.models ?? [])).map((m) => [
      m.key,
      m,
    ]),
  );

  return (
    <section className="panel" aria-labelledby={`${uid}-h`}>
      <h2 id={`${uid}-h`}>Models</h2>
      <label className="field">
        <span>Pair</span>
        <select value={mode} onChange={(e) => setMode(e.target.value as Mode)} aria-label="model pair source">
          <option value="demo">Embedded demo (offline)</option>
          <option value="catalog">Known pairs (catalog)</option>
          <option value="hub">Hugging Face hub id</option>
          <option value="url">URL</option>
          <option value="local">Local folder</option>
        </select>
      </label>

      {mode === 'demo' && <DemoModelPicker models={spec.models} onChange={(m) => setModels(m)} />}
      {mode === 'catalog' && (
        <CatalogPicker models={spec.models} dtype={spec.runtime.dtype} onPick={pickCatalog} />
      )}
      {(mode === 'hub' || mode === 'url') && (
        <HubModelForm key={mode} kind={mode} models={spec.models} onUse={(m) => setModels(m)} />
      )}
      {mode === 'local' && <LocalFolderPicker models={spec.models} onUse={(m) => setModels(m)} />}
      <LoadStatus
        onPickFolder={() => setMode('local')}
        onBackToDemo={
          mode === 'demo' && demoFinetuneOf(spec.models)
            ? null
            : () => {
                setMode('demo');
                const d = defaultSpec();
                setModels(d.models, d.conversation.templateArgs);
              }
        }
      />
      {mode !== 'demo' && mode !== 'local' && <HubAccess open={mode === 'hub'} />}

      <dl className="model-list">
        {Object.entries(spec.models).map(([key, m]) => {
          const mi = modelInfo.get(key);
          return (
            <div key={key} className="model-row">
              <dt>{key}</dt>
              <dd>
                <span className="mono small">{describeSource(m.source)}</span>
                {m.adapter && <span className="tag">LoRA {describeSource(m.adapter)}</span>}
                {mi && (
                  <span className="muted small">
                    {' '}
                    · {mi.arch}, {mi.numLayers} layers, {mi.dtype}, {formatBytes(mi.bytes)}
                  </span>
                )}
              </dd>
            </div>
          );
        })}
      </dl>

      {recommendWasm(backend, backendUsed, spec.runtime.device) && (
        <p className="notice small" role="note" data-testid="recommend-wasm">
          This WebGPU is software emulation on the CPU ({backend?.adapter}), many times slower than WASM on
          the same CPU.{' '}
          <button
            type="button"
            className="btn small"
            data-testid="use-wasm"
            onClick={() => setSpec((s) => ({ ...s, runtime: { ...s.runtime, device: 'wasm' } }))}
          >
            Use WASM
          </button>
        </p>
      )}
      <div className="row wrap">
        <label className="field inline">
          <span>Device</span>
          <select
            value={spec.runtime.device}
            onChange={(e) =>
              setSpec((s) => ({
                ...s,
                runtime: { ...s.runtime, device: e.target.value as ExperimentSpec['runtime']['device'] },
              }))
            }
          >
            <option value="auto">auto</option>
            <option value="webgpu">WebGPU</option>
            <option value="wasm">WASM</option>
          </select>
        </label>
        <label className="field inline">
          <span>Weights</span>
          <select
            value={spec.runtime.dtype}
            onChange={(e) =>
              setSpec((s) => ({
                ...s,
                runtime: { ...s.runtime, dtype: e.target.value as ExperimentSpec['runtime']['dtype'] },
              }))
            }
          >
            <option value="fp32">fp32</option>
            <option value="fp16">fp16 (WebGPU)</option>
            <option value="int8">8-bit (WASM)</option>
            <option value="q4">4-bit</option>
          </select>
        </label>
      </div>

      <dl className="facts small">
        <div>
          <dt>Backend</dt>
          <dd data-testid="backend-detail">
            {backend
              ? backend.kind === 'webgpu'
                ? `WebGPU (${backend.adapter ?? 'adapter'})`
                : `WASM — ${backend.reason}`
              : (backendError ?? 'detecting…')}
            {backendUsed && backendUsed.used !== backend?.kind && <> · running on {backendUsed.used}</>}
            {fallbackNote(backend, backendUsed) && (
              <span className="muted"> ({fallbackNote(backend, backendUsed)})</span>
            )}
            {backend?.wasmThreads !== undefined && (
              <span data-testid="wasm-threads" data-threads={backend.wasmThreads}>
                {' '}
                · WASM {backend.wasmThreads} {backend.wasmThreads === 1 ? 'thread' : 'threads'}
              </span>
            )}{' '}
            <a href="/check.html" target="_blank" rel="noopener" data-testid="selfcheck-link">
              check the engine here
            </a>
          </dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd>
            {info ? (
              <span data-testid="memory-weights" data-bytes={info.memory.weights}>
                {formatBytes(info.memory.weights)} weights · {formatBytes(info.memory.kvCache)} KV
              </span>
            ) : (
              'models: —'
            )}
            {heap !== null && <span className="muted"> · page {formatBytes(heap)}</span>}
            {wasmHeap && (
              <span data-testid="wasm-heap" data-bytes={wasmHeap.bytes}>
                {' '}
                · the memory check assumes a {wasmHeap.label} WebAssembly heap (set by ?wasm-heap=), not 4 GiB
              </span>
            )}
          </dd>
        </div>
      </dl>
    </section>
  );
}
