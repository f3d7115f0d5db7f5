// Models panel: which base / finetuned pair the spec uses (the embedded demo by default, a catalog of
// known pairs, a hub id or URL, a local folder), an optional LoRA adapter, runtime preferences, the
// backend actually in use and the memory held. Edits go into the spec; it must never load a model
// itself (the worker does, through the session).
import { useId, useState } from 'react';
import { defaultSpec, type ExperimentSpec, type ModelEntry, type ModelSource } from '../../lab/experiment';
import { CATALOG } from '../catalog';
import { describeSource, formatBytes, parseHubRef } from '../format';
import { useLab } from '../store';

type Mode = 'demo' | 'catalog' | 'hub' | 'url' | 'local';

function modeOf(models: ExperimentSpec['models']): Mode {
  const kinds = Object.values(models).map((m) => m.source.kind);
  if (kinds.every((k) => k === 'demo')) return 'demo';
  if (CATALOG.some((c) => JSON.stringify(c.models) === JSON.stringify(models))) return 'catalog';
  if (kinds.includes('url')) return 'url';
  if (kinds.includes('local')) return 'local';
  return 'hub';
}

function jsHeap(): number | null {
  const m = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
  return m ? m.usedJSHeapSize : null;
}

export function ModelsPanel() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const notify = useLab((s) => s.notify);
  const backend = useLab((s) => s.backend);
  const backendUsed = useLab((s) => s.backendUsed);
  const backendError = useLab((s) => s.backendError);
  const info = useLab((s) => s.info);
  const loading = useLab((s) => s.loading);
  const promptStatus = useLab((s) => s.promptStatus);
  const promptError = useLab((s) => s.promptError);
  const [mode, setMode] = useState<Mode>(() => modeOf(spec.models));
  const [baseRef, setBaseRef] = useState('');
  const [ftRef, setFtRef] = useState('');
  const [adapterRef, setAdapterRef] = useState('');
  const [baseUrl, setBaseUrl] = useState('');
  const [ftUrl, setFtUrl] = useState('');
  const uid = useId();

  const setModels = (models: Record<string, ModelEntry>) => setSpec((s) => ({ ...s, models: { ...models } }));

  const useHub = () => {
    const base = parseHubRef(baseRef);
    const ft = ftRef.trim() ? parseHubRef(ftRef) : base;
    const adapter = adapterRef.trim() ? parseHubRef(adapterRef) : null;
    if (!base || !ft || (adapterRef.trim() && !adapter)) {
      notify('error', 'Expected hub ids like "owner/name" or "owner/name@revision".');
      return;
    }
    const finetuned: ModelEntry = { source: ft, role: 'finetuned' };
    if (adapter) finetuned.adapter = adapter;
    setModels({ base: { source: base, role: 'base' }, finetuned });
  };
  const useUrls = () => {
    const b: ModelSource = { kind: 'url', url: baseUrl.trim() };
    const f: ModelSource = { kind: 'url', url: ftUrl.trim() || baseUrl.trim() };
    setModels({ base: { source: b, role: 'base' }, finetuned: { source: f, role: 'finetuned' } });
  };

  const heap = jsHeap();
  // NOTE: what the engine reports belongs to the last models that loaded; not to sources that failed.
  const modelInfo = new Map((promptStatus === 'error' ? [] : (info?.models ?? [])).map((m) => [m.key, m]));

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

      {mode === 'demo' && modeOf(spec.models) !== 'demo' && (
        <button type="button" className="btn" onClick={() => setModels(defaultSpec().models)}>
          Use the embedded demo pair
        </button>
      )}
      {mode === 'catalog' && (
        <div className="stack">
          <ul className="plain catalog">
            {CATALOG.map((c) => (
              <li key={c.id}>
                <button type="button" className="btn link" onClick={() => setModels(c.models)} title={c.note}>
                  {c.label}
                </button>
              </li>
            ))}
          </ul>
          <p className="muted small">
            Loading from the hub is coming soon; until then the engine will say it cannot load these.
          </p>
        </div>
      )}
      {mode === 'hub' && (
        <div className="stack">
          <label className="field">
            <span>Base</span>
            <input
              value={baseRef}
              onChange={(e) => setBaseRef(e.target.value)}
              placeholder="owner/name@revision"
            />
          </label>
          <label className="field">
            <span>Finetuned</span>
            <input
              value={ftRef}
              onChange={(e) => setFtRef(e.target.value)}
              placeholder="(same as base when only an adapter)"
            />
          </label>
          <label className="field">
            <span>LoRA adapter</span>
            <input
              value={adapterRef}
              onChange={(e) => setAdapterRef(e.target.value)}
              placeholder="optional: owner/adapter"
            />
          </label>
          <button type="button" className="btn" onClick={useHub} disabled={!baseRef.trim()}>
            Use these models
          </button>
          <p className="muted small">
            Hub loading is coming soon (the hub issue); the spec and links already carry it.
          </p>
        </div>
      )}
      {mode === 'url' && (
        <div className="stack">
          <label className="field">
            <span>Base URL</span>
            <input
              value={baseUrl}
              onChange={(e) => setBaseUrl(e.target.value)}
              placeholder="https://…/model/"
            />
          </label>
          <label className="field">
            <span>Finetuned URL</span>
            <input
              value={ftUrl}
              onChange={(e) => setFtUrl(e.target.value)}
              placeholder="https://…/finetuned/"
            />
          </label>
          <button type="button" className="btn" onClick={useUrls} disabled={!baseUrl.trim()}>
            Use these models
          </button>
          <p className="muted small">Loading by URL is coming soon.</p>
        </div>
      )}
      {mode === 'local' && (
        <div className="stack">
          <label className="field">
            <span>Folder</span>
            <input type="file" disabled aria-describedby={`${uid}-local`} />
          </label>
          <p id={`${uid}-local`} className="muted small">
            Picking a local model folder is coming soon.
          </p>
        </div>
      )}

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
            <option value="fp16">fp16</option>
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
            {backendUsed?.fallbackReason && <span className="muted"> ({backendUsed.fallbackReason})</span>}
          </dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd>
            {info
              ? `${formatBytes(info.memory.weights)} weights · ${formatBytes(info.memory.kvCache)} KV`
              : 'models: —'}
            {heap !== null && <span className="muted"> · page {formatBytes(heap)}</span>}
          </dd>
        </div>
      </dl>

      {loading && promptStatus === 'running' && (
        <div className="loading small" role="status">
          {loading.stage} {loading.model}
          <progress max={loading.total || 1} value={loading.loaded} aria-label={`loading ${loading.model}`} />
        </div>
      )}
      {promptStatus === 'error' && promptError && (
        <p role="alert" className="error small">
          Could not load the models: {promptError}
        </p>
      )}
    </section>
  );
}
