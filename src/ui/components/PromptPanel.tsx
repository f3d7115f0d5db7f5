// Prompt panel: the conversation (system, user, template arguments such as the date), the rendered
// prompt as a token strip coloured by segment, the token editor for the selected token, and the
// perturbation controls for the edit-target condition. Edits change the spec; the worker renders and
// tokenizes (prepare). Must never tokenize or render templates on this thread.
import { useId, useMemo, useState } from 'react';
import questions from '../../lab/eval/em_questions.json';
import { SEGMENT_NAMES } from '../../lab/spec/experiment';
import { setSystem, setTemplateArg, setUser } from '../spec-edit';
import { useLab } from '../store';
import { DraftField } from './DraftField';
import { PerturbControls } from './PerturbControls';
import { TokenEditor } from './TokenEditor';
import { TokenStrip } from './TokenStrip';

const QUESTIONS = Object.entries((questions as { questions: Record<string, string> }).questions);

export function PromptPanel() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const prompt = useLab((s) => s.prompt);
  const promptStatus = useLab((s) => s.promptStatus);
  // NOTE: the Models panel shows a failed load (its message and actions); this panel only points there
  const ui = useLab((s) => s.ui);
  const setUi = useLab((s) => s.setUi);
  const uid = useId();
  const [argKey, setArgKey] = useState('');
  const [argValue, setArgValue] = useState('');

  const conv = spec.conversation;
  const target = spec.conditions.find((c) => c.id === ui.editTarget) ?? spec.conditions[0];
  const patchTarget = spec.conditions.find((c) => c.id === ui.patchTarget);
  const picked = useMemo(() => {
    const pos = patchTarget?.patch?.positions;
    return new Set(typeof pos === 'object' ? pos.explicit : []);
  }, [patchTarget]);
  const marked = useMemo(() => {
    const out = new Set<number>();
    if (!prompt || target.perturbation?.kind !== 'edits') return out;
    for (const e of target.perturbation.edits) {
      const [start, end] = prompt.segments[e.segment];
      if (start + e.index < end) out.add(start + e.index);
    }
    return out;
  }, [prompt, target]);
  const counts = prompt
    ? SEGMENT_NAMES.map((s) => [s, prompt.segments[s][1] - prompt.segments[s][0]] as const)
    : [];
  const dateArg = conv.templateArgs.date_string;
  const otherArgs = Object.entries(conv.templateArgs).filter(([k]) => k !== 'date_string');

  const onToken = (i: number) => {
    if (ui.pickPositions && ui.patchTarget) {
      setSpec((s) => {
        const c = s.conditions.find((x) => x.id === ui.patchTarget);
        if (!c?.patch) return s;
        const old = typeof c.patch.positions === 'object' ? c.patch.positions.explicit : [];
        const next = old.includes(i) ? old.filter((p) => p !== i) : [...old, i].sort((a, b) => a - b);
        if (next.length === 0) return s;
        return {
          ...s,
          conditions: s.conditions.map((x) =>
            x.id === c.id && x.patch ? { ...x, patch: { ...x.patch, positions: { explicit: next } } } : x,
          ),
        };
      });
      return;
    }
    setUi({ selectedToken: ui.selectedToken === i ? null : i });
  };

  return (
    <section className="panel" aria-labelledby={`${uid}-h`}>
      <h2 id={`${uid}-h`}>Prompt</h2>
      <div className="conv-grid">
        <div className="field">
          <div className="row">
            <label htmlFor={`${uid}-sys`}>System</label>
            <label className="check small">
              <input
                type="checkbox"
                checked={conv.system === null}
                onChange={(e) => setSpec((s) => setSystem(s, e.target.checked ? null : ''))}
              />
              template default
            </label>
          </div>
          {conv.system === null ? (
            <p className="muted small" id={`${uid}-sys`}>
              No system message: the chat template adds its default (if it has one).
            </p>
          ) : (
            <DraftField
              id={`${uid}-sys`}
              multiline
              rows={2}
              value={conv.system}
              onCommit={(v) => setSpec((s) => setSystem(s, v))}
              placeholder="(empty system message)"
              maxLength={8000}
            />
          )}
        </div>
        <div className="field">
          <div className="row">
            <label htmlFor={`${uid}-user`}>User</label>
            <select
              className="small"
              aria-label="evaluation question presets"
              value=""
              onChange={(e) => e.target.value && setSpec((s) => setUser(s, e.target.value))}
            >
              <option value="">Paper questions…</option>
              {QUESTIONS.map(([k, q]) => (
                <option key={k} value={q}>
                  {k.replace(/_/g, ' ')}
                </option>
              ))}
            </select>
          </div>
          <DraftField
            id={`${uid}-user`}
            multiline
            rows={2}
            value={conv.user}
            onCommit={(v) => setSpec((s) => setUser(s, v))}
            maxLength={8000}
            testId="user-input"
          />
        </div>
        <div className="field">
          <label htmlFor={`${uid}-date`}>Date (date_string)</label>
          <DraftField
            id={`${uid}-date`}
            value={typeof dateArg === 'string' ? dateArg : dateArg === undefined ? '' : String(dateArg)}
            onCommit={(v) => setSpec((s) => setTemplateArg(s, 'date_string', v.trim() || undefined))}
            placeholder={String(prompt?.templateArgs.date_string ?? 'template default, e.g. 26 Jul 2024')}
          />
          <div className="args small">
            {otherArgs.map(([k, v]) => (
              <span key={k} className="tag">
                {k} = {String(v)}{' '}
                <button
                  type="button"
                  className="btn tiny"
                  aria-label={`remove template argument ${k}`}
                  onClick={() => setSpec((s) => setTemplateArg(s, k, undefined))}
                >
                  ✕
                </button>
              </span>
            ))}
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                const v = argValue === 'true' ? true : argValue === 'false' ? false : argValue;
                if (argKey.trim() && setSpec((s) => setTemplateArg(s, argKey.trim(), v))) {
                  setArgKey('');
                  setArgValue('');
                }
              }}
            >
              <input
                aria-label="template argument name"
                placeholder="argument"
                value={argKey}
                onChange={(e) => setArgKey(e.target.value)}
                size={10}
              />
              <input
                aria-label="template argument value"
                placeholder="value"
                value={argValue}
                onChange={(e) => setArgValue(e.target.value)}
                size={10}
              />
              <button type="submit" className="btn small" disabled={!argKey.trim()}>
                Add
              </button>
            </form>
          </div>
        </div>
      </div>

      <div className="strip-head row wrap">
        <h3>Tokens</h3>
        {counts.map(([s, n]) => (
          <span key={s} className={`chip seg-${s}`}>
            {s} {n}
          </span>
        ))}
        <span className="spacer" />
        <label className="field inline small">
          <span>Edits go to</span>
          <select
            value={target.id}
            onChange={(e) => setUi({ editTarget: e.target.value })}
            aria-label="condition that token edits change"
          >
            {spec.conditions.map((c) => (
              <option key={c.id} value={c.id}>
                {c.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {ui.pickPositions && (
        <p className="hint small" role="status">
          Picking patch positions: click tokens to add or remove them (patch controls → “Done picking” to
          stop).
        </p>
      )}
      {promptStatus === 'running' && !prompt && (
        <p className="muted">Loading the models and rendering the prompt…</p>
      )}
      {promptStatus === 'error' && (
        <p className="muted" data-testid="prompt-load-failed">
          No prompt: the models did not load or the prompt could not be rendered (the message and what to do
          are in the Models panel).
        </p>
      )}
      {!prompt && promptStatus !== 'running' && promptStatus !== 'error' && (
        <p className="muted">The rendered prompt appears here once the models are loaded.</p>
      )}
      {prompt && (
        <div className={promptStatus === 'running' || promptStatus === 'error' ? 'stale' : undefined}>
          <TokenStrip
            tokens={prompt.tokens}
            selected={ui.selectedToken}
            picked={picked}
            marked={marked}
            onSelect={onToken}
            label="prompt tokens: click one to edit it"
          />
          {ui.selectedToken !== null && prompt.tokens[ui.selectedToken] && !ui.pickPositions && (
            <TokenEditor prompt={prompt} index={ui.selectedToken} target={target} />
          )}
        </div>
      )}
      <PerturbControls key={target.id} prompt={prompt} target={target} />
    </section>
  );
}
