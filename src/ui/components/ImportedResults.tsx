// Results files opened with "Import results" (a run of an exported Python script, another browser, the
// CLI), shown as cards beside the browser's own conditions: where it ran, the same metrics where the
// file has them, and whether each answer has the browser's current answer ids (or from which token it
// differs). Test hooks: data-testid="imported-results" per file, "imported-card" + data-condition-id,
// data-agrees="true" | "false" | "unknown" (no current browser answer, or another spec).
// Must never run anything or change the spec except through "Open its spec"; answers are model output,
// rendered as text only.
import { useId } from 'react';
import type { ConditionResult } from '../../lab/spec/results';
import { specHash } from '../../lab/spec/experiment';
import { originText } from '../../lab/export/results-file';
import { formatMetric } from '../format';
import { isDone } from '../results-state';
import { useLab } from '../store';
import { importedStore, useImported, type ImportedFile } from '../imported-results';
import './imported-results.css';

type Agreement = { agrees: 'true' | 'false' | 'unknown'; text: string };

function agreement(
  imported: ConditionResult,
  browser: ConditionResult | undefined,
  sameSpec: boolean,
): Agreement {
  if (!sameSpec) return { agrees: 'unknown', text: 'another spec than the browser’s' };
  if (!browser) return { agrees: 'unknown', text: 'no browser answer to compare yet' };
  if (imported.error || browser.error) return { agrees: 'false', text: 'one of them failed' };
  const a = imported.tokenIds;
  const b = browser.tokenIds;
  const samePrompt =
    imported.prompt.tokens.length === browser.prompt.tokens.length &&
    imported.prompt.tokens.every((t, i) => t.id === browser.prompt.tokens[i].id);
  if (!samePrompt) return { agrees: 'false', text: 'ran other prompt ids than the browser' };
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++)
    if (a[i] !== b[i]) return { agrees: 'false', text: `differs from the browser from token ${i}` };
  return { agrees: 'true', text: `same ${a.length} answer ids as the browser` };
}

function ImportedCard({
  c,
  browser,
  sameSpec,
}: {
  c: ConditionResult;
  browser?: ConditionResult;
  sameSpec: boolean;
}) {
  const m = c.metrics;
  const ag = agreement(c, browser, sameSpec);
  const top = c.nextToken[0];
  return (
    <article
      className="card imported-card"
      data-testid="imported-card"
      data-condition-id={c.id}
      data-agrees={ag.agrees}
      aria-label={`${c.label} (imported)`}
    >
      <header className="card-head">
        <h3 className="card-title">{c.label}</h3>
        <span className={`agree agree-${ag.agrees}`} data-testid="imported-agreement">
          {ag.agrees === 'true' ? '= browser' : ag.agrees === 'false' ? '≠ browser' : '?'}
        </span>
      </header>
      {c.patchSummary && <p className="card-desc small">applied: {c.patchSummary}</p>}
      {c.error && (
        <p className="error small" role="alert">
          {c.error}
        </p>
      )}
      <div className="answer" data-testid="imported-answer">
        {c.text || <span className="muted">No answer.</span>}
      </div>
      <p className="small muted" data-testid="imported-agreement-text">
        {ag.text}
      </p>
      <dl className="imported-metrics small">
        <dt>KL to base</dt>
        <dd>{formatMetric(m.klToBase)}</dd>
        <dt>restoration</dt>
        <dd>{formatMetric(m.restoration, 2)}</dd>
        {(m.trialsBest !== undefined && m.trialsBest !== null) || m.trialsAvg ? (
          <>
            <dt>trials best / avg</dt>
            <dd>
              {formatMetric(m.trialsBest, 2)} / {formatMetric(m.trialsAvg, 2)}
            </dd>
          </>
        ) : null}
        {top && (
          <>
            <dt>next token</dt>
            <dd>
              <span className="mono">{JSON.stringify(top.text)}</span> {formatMetric(top.prob, 2)}
            </dd>
          </>
        )}
      </dl>
    </article>
  );
}

function ImportedFilePanel({ f }: { f: ImportedFile }) {
  const spec = useLab((s) => s.spec);
  const conditions = useLab((s) => s.conditions);
  const setSpec = useLab((s) => s.setSpec);
  const uid = useId();
  const sameSpec = f.file.specHash === specHash(spec);
  const current = (id: string) => {
    const st = conditions[id];
    return isDone(st, spec, id) && st?.result ? st.result : undefined;
  };
  const agreeing = f.file.conditions.filter(
    (c) => agreement(c, current(c.id), sameSpec).agrees === 'true',
  ).length;
  return (
    <section className="panel imported" aria-labelledby={`${uid}-h`} data-testid="imported-results">
      <div className="row wrap panel-head">
        <h2 id={`${uid}-h`}>Imported: {f.name}</h2>
        <span className="spacer" />
        {!sameSpec && f.file.spec && (
          <button type="button" className="btn small" onClick={() => setSpec(f.file.spec!, 'file')}>
            Open its spec
          </button>
        )}
        <button
          type="button"
          className="btn small"
          onClick={() => importedStore.getState().remove(f.key)}
          aria-label={`close ${f.name}`}
        >
          Close
        </button>
      </div>
      <p className="small" data-testid="imported-origin">
        Ran on: <strong>{originText(f.file)}</strong>
      </p>
      <p className="small muted" data-testid="imported-summary">
        {sameSpec
          ? `${agreeing} of ${f.file.conditions.length} conditions have the browser’s answer ids.`
          : 'This file is from another spec than the one open here, so its answers are not compared.'}
      </p>
      {f.warnings.map((w) => (
        <p key={w} className="hint small">
          {w}
        </p>
      ))}
      <div className="card-grid">
        {f.file.conditions.map((c) => (
          <ImportedCard key={c.id} c={c} browser={current(c.id)} sameSpec={sameSpec} />
        ))}
      </div>
    </section>
  );
}

/** Every imported results file, one panel each (nothing when none is open). */
export function ImportedResults() {
  const files = useImported((s) => s.files);
  return (
    <>
      {files.map((f) => (
        <ImportedFilePanel key={f.key} f={f} />
      ))}
    </>
  );
}
