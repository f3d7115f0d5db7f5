// Hub ids or URLs for the base, an optional full finetune and an optional LoRA adapter: the models
// panel's "hub" and "URL" modes. Builds the spec's models section; must never load anything (the
// worker does on the next run) and never take a token (HubAccess does).
import { useId, useState } from 'react';
import type { ExperimentSpec, ModelEntry, ModelSource } from '../../lab/spec/experiment';
import { parseHubRef } from '../format';

type Kind = 'hub' | 'url';

function refOf(s: ModelSource | undefined, kind: Kind): string {
  if (!s) return '';
  if (kind === 'hub' && s.kind === 'hub') return s.revision ? `${s.repo}@${s.revision}` : s.repo;
  if (kind === 'url' && s.kind === 'url') return s.url;
  return '';
}

function parseUrl(text: string): ModelSource | null {
  try {
    const u = new URL(text.trim());
    return u.protocol === 'http:' || u.protocol === 'https:' ? { kind: 'url', url: u.href } : null;
  } catch {
    return null;
  }
}

/** The models section for a base, an optional finetune (default: the base) and an optional adapter. */
export function buildModels(
  kind: Kind,
  baseText: string,
  ftText: string,
  adapterText: string,
): ExperimentSpec['models'] | string {
  const parse = (t: string) => (kind === 'hub' ? parseHubRef(t) : parseUrl(t));
  const what = kind === 'hub' ? 'a Hub id like "owner/name" or "owner/name@revision"' : 'an http(s) URL';
  const base = parse(baseText);
  if (!base) return `Base: expected ${what}.`;
  const ft = ftText.trim() ? parse(ftText) : base;
  if (!ft) return `Finetuned: expected ${what}.`;
  const adapter = adapterText.trim() ? parse(adapterText) : null;
  if (adapterText.trim() && !adapter) return `LoRA adapter: expected ${what}.`;
  const finetuned: ModelEntry = { source: ft, role: 'finetuned' };
  if (adapter) finetuned.adapter = adapter;
  if (!adapter && !ftText.trim()) return 'Give a finetuned model or a LoRA adapter to compare with the base.';
  return { base: { source: base, role: 'base' }, finetuned };
}

export function HubModelForm({
  kind,
  models,
  onUse,
}: {
  kind: Kind;
  models: ExperimentSpec['models'];
  onUse: (models: ExperimentSpec['models']) => void;
}) {
  const uid = useId();
  const [base, setBase] = useState(() => refOf(models.base?.source, kind));
  const [ft, setFt] = useState(() => {
    const f = models.finetuned;
    return f && JSON.stringify(f.source) !== JSON.stringify(models.base?.source) ? refOf(f.source, kind) : '';
  });
  const [adapter, setAdapter] = useState(() => refOf(models.finetuned?.adapter, kind));
  const [error, setError] = useState<string | null>(null);
  const hub = kind === 'hub';
  const use = () => {
    const m = buildModels(kind, base, ft, adapter);
    if (typeof m === 'string') setError(m);
    else {
      setError(null);
      onUse(m);
    }
  };
  return (
    <form
      className="stack"
      onSubmit={(e) => {
        e.preventDefault();
        use();
      }}
      aria-describedby={`${uid}-note`}
    >
      <label className="field">
        <span>Base</span>
        <input
          value={base}
          onChange={(e) => setBase(e.target.value)}
          placeholder={hub ? 'Qwen/Qwen2.5-0.5B-Instruct' : 'https://host/owner/base'}
          aria-label={`base ${hub ? 'hub id' : 'URL'}`}
          spellCheck={false}
        />
      </label>
      <label className="field">
        <span>LoRA adapter (the organism)</span>
        <input
          value={adapter}
          onChange={(e) => setAdapter(e.target.value)}
          placeholder={hub ? 'owner/adapter (optional)' : 'https://host/owner/adapter (optional)'}
          aria-label={`adapter ${hub ? 'hub id' : 'URL'}`}
          spellCheck={false}
        />
      </label>
      <label className="field">
        <span>Full finetune (instead of an adapter)</span>
        <input
          value={ft}
          onChange={(e) => setFt(e.target.value)}
          placeholder={hub ? 'owner/finetuned (optional)' : 'https://host/owner/finetuned (optional)'}
          aria-label={`finetuned ${hub ? 'hub id' : 'URL'}`}
          spellCheck={false}
        />
      </label>
      {error && (
        <p role="alert" className="error small">
          {error}
        </p>
      )}
      <button type="submit" className="btn primary" disabled={!base.trim()}>
        Load these models
      </button>
      <p id={`${uid}-note`} className="muted small">
        {hub
          ? 'Downloaded from the Hub endpoint below into this browser’s cache; configs and adapters are checked before the weights are fetched.'
          : 'A URL in the Hub’s layout (https://host/owner/name) is read like a Hub repo; any other URL must serve config.json, the safetensors and the tokenizer files (with CORS).'}
      </p>
    </form>
  );
}
