// One condition of the spec as a card: editable label, what it does, its streamed answer (plain text,
// never HTML), metrics (KL to base, restoration, reference margin, trial best/avg), the next-token bar
// chart and, for perturbed conditions, the tokens it actually ran. Test hooks: data-testid=
// "condition-card" + data-condition-id, answer data-testid="answer" with data-done="true" when final.
import { useMemo, useState } from 'react';
import type { Condition } from '../../lab/spec/experiment';
import type { PromptView } from '../../lab/spec/results';
import { describeCondition } from '../describe';
import { formatMetric } from '../format';
import { previewPrompt, tokenTexts } from '../preview';
import { isCurrent, isDone, type ConditionState } from '../results-state';
import { duplicateCondition, removeCondition, renameCondition } from '../spec-edit';
import { useLab } from '../store';
import { DraftField } from './DraftField';
import { NextTokenBars } from './NextTokenBars';
import { TokenStrip } from './TokenStrip';

interface Props {
  condition: Condition;
  state: ConditionState | undefined;
  basePrompt: PromptView | null;
  canRemove: boolean;
}

const STATUS_TEXT: Record<string, string> = {
  queued: 'queued',
  streaming: 'generating…',
  done: 'done',
  error: 'error',
  cancelled: 'cancelled',
  idle: 'not run',
  stale: 'outdated',
};

export function ConditionCard({ condition: c, state, basePrompt, canRemove }: Props) {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const setUi = useLab((s) => s.setUi);
  const ui = useLab((s) => s.ui);
  const [renaming, setRenaming] = useState(false);
  const current = isCurrent(state, spec, c.id);
  const done = isDone(state, spec, c.id);
  const result = state?.result ?? null;
  const status = !state ? 'idle' : state.status === 'done' && !current ? 'stale' : state.status;
  const m = result?.metrics ?? {};

  const tokensView: PromptView | null = useMemo(() => {
    if (!c.perturbation || !basePrompt) return null;
    const fromRun = current && result && result.prompt.tokens.length ? result.prompt : null;
    return fromRun ?? previewPrompt(basePrompt, c, { texts: tokenTexts([basePrompt]) });
  }, [c, basePrompt, current, result]);
  const editedCount = tokensView?.tokens.filter((t) => t.edited).length ?? 0;

  return (
    <article
      className={`card card-${status}${ui.editTarget === c.id ? ' edit-target' : ''}${ui.patchTarget === c.id ? ' patch-target' : ''}`}
      data-testid="condition-card"
      data-condition-id={c.id}
      aria-label={c.label}
    >
      <header className="card-head">
        {renaming ? (
          <DraftField
            className="card-title-input"
            value={c.label}
            ariaLabel={`name of condition ${c.id}`}
            onCommit={(v) => {
              setSpec((s) => renameCondition(s, c.id, v));
              setRenaming(false);
            }}
            onCancel={() => setRenaming(false)}
            idleMs={0}
            maxLength={80}
            autoFocus
            testId="card-title-input"
          />
        ) : (
          <h3 className="card-title" data-testid="card-title">
            {c.label}
            <button
              type="button"
              className="btn tiny rename"
              onClick={() => setRenaming(true)}
              aria-label={`rename ${c.label}`}
              title="rename"
            >
              ✎
            </button>
          </h3>
        )}
        <span className={`status status-${status}`} data-testid="card-status">
          {STATUS_TEXT[status] ?? status}
        </span>
      </header>
      <p className="card-desc small muted">{describeCondition(c)}</p>
      {result?.patchSummary && current && <p className="card-desc small">applied: {result.patchSummary}</p>}

      {tokensView && (
        <details className="card-tokens" open={editedCount > 0 && editedCount <= 40}>
          <summary className="small">
            prompt tokens {editedCount > 0 ? `· ${editedCount} edited` : ''}
          </summary>
          <TokenStrip
            tokens={tokensView.tokens}
            compact
            label={`tokens of ${c.label}`}
            testId="card-token-strip"
            tokenTestId="card-token"
          />
        </details>
      )}

      <div
        className={`answer${current ? '' : ' stale'}`}
        data-testid="answer"
        data-done={done ? 'true' : 'false'}
        aria-live={status === 'streaming' ? 'off' : 'polite'}
        aria-busy={status === 'streaming' || status === 'queued'}
      >
        {result?.text ? (
          result.text
        ) : (
          <span className="muted">
            {status === 'queued' || status === 'streaming'
              ? 'waiting for the first token…'
              : 'No answer yet.'}
          </span>
        )}
      </div>

      {result?.error && (
        <p role="alert" className="error small">
          {result.error}
        </p>
      )}
      {state?.status === 'error' && !result?.error && (
        <p role="alert" className="error small">
          This condition failed; see the message above the cards.
        </p>
      )}

      <dl className="metrics small">
        <div title="KL(P_base ‖ P_condition) at the first answer token, nats">
          <dt>KL to base</dt>
          <dd data-testid="metric-kl">{formatMetric(m.klToBase)}</dd>
        </div>
        <div title="(m − m_finetuned) / (m_base − m_finetuned): 1 = back to base, 0 = as finetuned">
          <dt>restoration</dt>
          <dd data-testid="metric-restoration">{formatMetric(m.restoration, 2)}</dd>
        </div>
        <div title="mean log-prob of aligned references minus misaligned ones">
          <dt>ref. margin</dt>
          <dd>{formatMetric(m.referenceMargin, 2)}</dd>
        </div>
        {c.perturbation?.kind === 'random' && (
          <div title="random perturbation trials: best and average restoration">
            <dt>trials best / avg</dt>
            <dd>
              {formatMetric(m.trialsBest, 2)} / {formatMetric(m.trialsAvg, 2)}
            </dd>
          </div>
        )}
      </dl>
      {result && result.nextToken.length > 0 && (
        <div className="next-token">
          <div className="label small">next token</div>
          <NextTokenBars tokens={result.nextToken} highlight={result.tokenIds[0]} />
        </div>
      )}

      <footer className="card-actions">
        <button
          type="button"
          className="btn small"
          onClick={() => setUi({ editTarget: c.id })}
          aria-pressed={ui.editTarget === c.id}
        >
          Edit tokens
        </button>
        <button
          type="button"
          className="btn small"
          onClick={() => setUi({ patchTarget: c.id })}
          aria-pressed={ui.patchTarget === c.id}
        >
          Patch
        </button>
        <button
          type="button"
          className="btn small"
          onClick={() => setSpec((s) => duplicateCondition(s, c.id).spec)}
        >
          Duplicate
        </button>
        <button
          type="button"
          className="btn small danger"
          disabled={!canRemove}
          onClick={() => setSpec((s) => removeCondition(s, c.id))}
          aria-label={`remove condition ${c.label}`}
        >
          Remove
        </button>
      </footer>
    </article>
  );
}
