// Share and save: "Copy link" puts the spec (only the spec) in the URL fragment and the clipboard;
// export / import the spec as JSON; export results as JSON and CSV; undo the last edit. Must never put
// results, tokens or keys into a link, and never apply an imported file that fails validation.
import { useId, useRef, useState } from 'react';
import { parseSpec } from '../../lab/spec/experiment';
import { encodeLink } from '../../lab/spec/link';
import type { ConditionResult } from '../../lab/spec/results';
import { downloadText } from '../save-file';
import { conditionsToCsv, resultsToJson } from '../export-results';
import { labStore, useLab } from '../store';

export function SharePanel() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const notify = useLab((s) => s.notify);
  const past = useLab((s) => s.past.length);
  const undo = useLab((s) => s.undo);
  const conditions = useLab((s) => s.conditions);
  const uid = useId();
  const file = useRef<HTMLInputElement>(null);
  const [link, setLink] = useState<string | null>(null);
  const [copyState, setCopyState] = useState<'copied' | 'shown' | null>(null);

  const copyLink = async () => {
    const r = encodeLink(spec, window.location.href);
    if (!r.ok) {
      notify('error', `Could not make a link: ${r.error.message}`, r.error.issues);
      return;
    }
    window.history.replaceState(null, '', r.url);
    setLink(r.url);
    try {
      await navigator.clipboard.writeText(r.url);
      setCopyState('copied');
    } catch {
      // NOTE: clipboard needs focus and permission; the link stays visible to copy by hand.
      setCopyState('shown');
    }
  };

  const results = (): ConditionResult[] => {
    const st = labStore.getState();
    return spec.conditions.map((c) => st.conditions[c.id]?.result).filter((r): r is ConditionResult => !!r);
  };

  const exportResultsJson = () => {
    const st = labStore.getState();
    const sweeps = [st.sweep.results.kv, st.sweep.results.resid].filter((x) => x !== undefined);
    downloadText(
      'piggyback-results.json',
      resultsToJson({
        kind: 'piggyback-lab/results',
        spec,
        backend: st.backendUsed?.used ?? st.backend?.kind ?? null,
        prompt: st.prompt,
        conditions: results(),
        sweeps,
        drift: st.drift.result,
      }),
      'application/json',
    );
  };

  const importFile = async (f: File) => {
    let json: unknown;
    try {
      json = JSON.parse(await f.text());
    } catch {
      notify('error', `“${f.name}” is not JSON.`);
      return;
    }
    const r = parseSpec(json);
    if (!r.ok) {
      notify('error', `“${f.name}” is not a valid experiment spec; nothing was changed.`, r.errors);
      return;
    }
    setSpec(r.spec, 'file');
    notify('info', `Loaded “${r.spec.name}” from ${f.name}.`);
  };

  const haveResults = spec.conditions.some((c) => conditions[c.id]?.result);
  const localFolders = [
    ...new Set(
      Object.values(spec.models)
        .flatMap((m) => [m.source, m.adapter])
        .flatMap((s) => (s?.kind === 'local' ? [s.path] : [])),
    ),
  ];

  return (
    <section className="panel" aria-labelledby={`${uid}-h`}>
      <h2 id={`${uid}-h`}>Share &amp; save</h2>
      <div className="row wrap">
        <button type="button" className="btn primary" onClick={() => void copyLink()} data-testid="copy-link">
          Copy link
        </button>
        <button
          type="button"
          className="btn"
          onClick={undo}
          disabled={past === 0}
          title="undo the last change to the experiment"
        >
          Undo
        </button>
      </div>
      {copyState && (
        <p className="small" role="status">
          {copyState === 'copied'
            ? 'Link copied. It holds the experiment spec only, never results.'
            : 'Copy this link:'}
        </p>
      )}
      {localFolders.length > 0 && (
        <p className="hint small" data-testid="share-local-note">
          The link names the local folders ({localFolders.join(', ')}) but cannot carry their files: whoever
          opens it must pick the same folders in the models panel.
        </p>
      )}
      {link && (
        <input
          className="mono small share-link"
          readOnly
          value={link}
          aria-label="share link"
          data-testid="share-link"
          onFocus={(e) => e.target.select()}
        />
      )}
      <div className="row wrap">
        <span className="label small">Spec</span>
        <button
          type="button"
          className="btn small"
          onClick={() =>
            downloadText(`${slugify(spec.name)}.json`, JSON.stringify(spec, null, 2), 'application/json')
          }
        >
          Export JSON
        </button>
        <button type="button" className="btn small" onClick={() => file.current?.click()}>
          Import JSON
        </button>
        <input
          ref={file}
          type="file"
          accept=".json,application/json"
          hidden
          data-testid="import-spec"
          onChange={(e) => {
            const f = e.target.files?.[0];
            e.target.value = '';
            if (f) void importFile(f);
          }}
        />
      </div>
      <div className="row wrap">
        <span className="label small">Results</span>
        <button type="button" className="btn small" disabled={!haveResults} onClick={exportResultsJson}>
          JSON
        </button>
        <button
          type="button"
          className="btn small"
          disabled={!haveResults}
          onClick={() => downloadText('piggyback-results.csv', conditionsToCsv(results()), 'text/csv')}
        >
          CSV
        </button>
      </div>
    </section>
  );
}

function slugify(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'experiment'
  );
}
