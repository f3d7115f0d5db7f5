// Share and save: "Copy link" puts the spec (only the spec) in the URL fragment and the clipboard;
// export / import the spec as JSON; export results as JSON and CSV; "Export → Python" (one script for
// transformers or nnsight, resolved by the worker with the loaded models: the same experiment at a
// scale the browser cannot run) and "Import results" (a results file from such a script, the CLI or
// another browser, shown beside the browser's cards); undo the last edit. Must never put results,
// tokens or keys into a link or a script, and never apply an imported file that fails validation.
import { useId, useRef, useState } from 'react';
import { parseSpec } from '../../lab/spec/experiment';
import { encodeLink } from '../../lab/spec/link';
import type { ConditionResult } from '../../lab/spec/results';
import { downloadText } from '../save-file';
import { conditionsToCsv, resultsToJson } from '../export-results';
import { labStore, useLab } from '../store';
import { useSession } from '../session-context';
import { EXPORT_TARGETS, type ExportTarget } from '../../lab/export/script';
import { pythonScript, TARGET_NOTES } from '../python-export';
import { importedStore } from '../imported-results';
import { errorMessage } from '../../common/errors';

export function SharePanel() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const notify = useLab((s) => s.notify);
  const past = useLab((s) => s.past.length);
  const undo = useLab((s) => s.undo);
  const conditions = useLab((s) => s.conditions);
  const uid = useId();
  const file = useRef<HTMLInputElement>(null);
  const resultsFile = useRef<HTMLInputElement>(null);
  const session = useSession();
  const [target, setTarget] = useState<ExportTarget>('transformers');
  const [exporting, setExporting] = useState(false);
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
        ranOn: {
          place: 'browser',
          backend: st.backendUsed?.used ?? st.backend?.kind ?? 'unknown',
          host: window.location.host,
          platform: navigator.userAgent,
        },
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

  const exportPython = async () => {
    const queue = session?.engineQueue;
    if (!queue) {
      notify('error', 'The engine is not ready yet; try again in a moment.');
      return;
    }
    setExporting(true);
    try {
      // NOTE: the worker resolves the plan with the loaded models (tokenizer, sizes, embedding), in the
      // engine queue like any model request.
      const r = await queue.submit({ type: 'export-plan', spec }).done;
      downloadText(`${slugify(spec.name)}-${target}.py`, pythonScript(r.plan, target), 'text/x-python');
      notify('info', `Exported “${spec.name}” as a ${target} script.`);
    } catch (e) {
      notify('error', `Could not export the experiment: ${errorMessage(e)}`);
    } finally {
      setExporting(false);
    }
  };

  const importResults = async (f: File) => {
    const r = importedStore.getState().add(f.name, await f.text());
    if (!r.ok)
      notify('error', `“${f.name}” is not a Piggyback Lab results file; nothing was opened.`, r.errors);
    else notify('info', `Opened results from ${f.name}: they are shown below the conditions.`);
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
        <button
          type="button"
          className="btn small"
          onClick={() => resultsFile.current?.click()}
          title="open a results file (from an exported script, the CLI or another browser) beside these cards"
        >
          Import results
        </button>
        <input
          ref={resultsFile}
          type="file"
          accept=".json,application/json"
          hidden
          data-testid="import-results"
          onChange={(e) => {
            const f = e.target.files?.[0];
            e.target.value = '';
            if (f) void importResults(f);
          }}
        />
      </div>
      <div className="row wrap">
        <span className="label small">Python</span>
        <select
          value={target}
          onChange={(e) => setTarget(e.target.value as ExportTarget)}
          aria-label="export target"
          data-testid="export-target"
        >
          {EXPORT_TARGETS.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <button
          type="button"
          className="btn small"
          onClick={() => void exportPython()}
          disabled={exporting}
          data-testid="export-python"
          title="one self-contained Python script that runs this experiment with PyTorch and writes a results file"
        >
          {exporting ? 'Exporting…' : 'Export → Python'}
        </button>
      </div>
      <p className="hint small export-note" data-testid="export-python-note">
        {TARGET_NOTES[target]}
      </p>
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
