// One condition of the spec as a card: editable label, what it does, its streamed answer (plain text,
// never HTML) with its answer-level verdict (marker word, same as Base / Finetuned), every random
// perturbation trial (TrialStrip), metrics (KL to base, first-token restoration, reference margin, trial
// best/avg), the next-token bar chart and, for perturbed conditions, the tokens it actually ran. Test
// hooks: data-testid="condition-card" + data-condition-id, answer data-testid="answer" with
// data-done="true" when final, data-testid="verdict" with data-verdict.
import { useMemo, useState } from 'react';
import type { Condition } from '../../lab/spec/experiment';
import type { PromptView } from '../../lab/spec/results';
import { describeCondition } from '../describe';
import { formatMetric } from '../format';
import { previewPrompt, tokenTexts } from '../preview';
import { currentLoadStep } from '../load-steps';
import { isCurrent, isDone, type ConditionState } from '../results-state';
import { duplicateCondition, removeCondition, renameCondition } from '../spec-edit';
import { ONE_COLUMN_QUERY, useMediaQuery } from '../hooks/useMediaQuery';
import { useLab } from '../store';
import {
  answerVerdict,
  resemblance,
  resemblanceText,
  restorationReliable,
  verdictText,
  type Judged,
  MIN_FIRST_TOKEN_GAP,
} from '../verdicts';
import { DraftField } from './DraftField';
import { NextTokenBars } from './NextTokenBars';
import { PatchControls } from './PatchControls';
import { TokenStrip } from './TokenStrip';
import { TrialStrip } from './TrialStrip';

/** The answers a card's verdict compares with: the plain Base and Finetuned cards' current answers. */
export interface CardReferences {
  base: { id: string; text: string } | null;
  finetuned: { id: string; text: string } | null;
}

interface Props {
  condition: Condition;
  state: ConditionState | undefined;
  basePrompt: PromptView | null;
  canRemove: boolean;
  /** marker words that flag an answer (none: compare with the references only) */
  markers: string[];
  refs: CardReferences;
  /** the judge's judgements by answer text (Judge these answers); null: the marker rule */
  judged?: Judged | null;
}

const STATUS_TEXT: Record<string, string> = {
  queued: 'queued',
  streaming: 'generating…',
  done: 'done',
  error: 'error',
  cancelled: 'cancelled',
  idle: 'not run',
  stale: 'outdated',
  loading: 'loading models',
};

export function ConditionCard({ condition: c, state, basePrompt, canRemove, markers, refs, judged }: Props) {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const setUi = useLab((s) => s.setUi);
  const ui = useLab((s) => s.ui);
  const [renaming, setRenaming] = useState(false);
  const current = isCurrent(state, spec, c.id);
  const done = isDone(state, spec, c.id);
  const result = state?.result ?? null;
  const loading = useLab((s) => s.loading);
  const promptStatus = useLab((s) => s.promptStatus);
  const loadStep = useMemo(() => currentLoadStep(loading, promptStatus), [loading, promptStatus]);
  const step = done ? null : loadStep;
  const status = step
    ? 'loading'
    : !state
      ? 'idle'
      : state.status === 'done' && !current
        ? 'stale'
        : state.status;
  const m = result?.metrics ?? {};

  const tokensView: PromptView | null = useMemo(() => {
    if (!c.perturbation || !basePrompt) return null;
    const fromRun = current && result && result.prompt.tokens.length ? result.prompt : null;
    return fromRun ?? previewPrompt(basePrompt, c, { texts: tokenTexts([basePrompt]) });
  }, [c, basePrompt, current, result]);
  const editedCount = tokensView?.tokens.filter((t) => t.edited).length ?? 0;
  const trials = current && result?.trials?.length ? result.trials : null;
  const verdict = done && result ? answerVerdict(result.text, markers, judged) : null;
  const isRef = c.id === refs.base?.id || c.id === refs.finetuned?.id;
  const like =
    done && result && !isRef
      ? resemblance(result.text, refs.base?.text ?? null, refs.finetuned?.text ?? null)
      : null;
  const reliable = current ? restorationReliable(m.klFinetuned) : null;
  // NOTE: in one column the side panel's patch controls are a page's length below; open them here once
  // this card's Patch is pressed (not for the default target, which would pad every card list).
  const patchHere = useMediaQuery(ONE_COLUMN_QUERY) && ui.patchOpen && ui.patchTarget === c.id;

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

      {step && (
        <div className="card-loading small" role="status" data-testid="card-loading" data-stage={step.stage}>
          <span>{step.text}</span>
          <progress
            max={step.total || undefined}
            value={step.total ? step.loaded : undefined}
            aria-label={`loading the models for ${c.label}`}
          />
        </div>
      )}
      {trials && (
        <p className="answer-caption small" data-testid="shown-trial">
          Shown: trial {(result?.shownTrial ?? 0) + 1} of {trials.length}, the one whose first answer token is
          closest to Base’s. That is the best case, not a typical trial: all {trials.length} are below.
        </p>
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
              : step
                ? 'The answer appears here once the models are loaded.'
                : 'No answer yet.'}
          </span>
        )}
      </div>

      {done && result && !result.error && (verdict?.verdict !== 'unjudged' || like) && (
        <p className="verdict-row">
          {verdict && verdict.verdict !== 'unjudged' && (
            <span
              className={`verdict verdict-${verdict.verdict}`}
              data-testid="verdict"
              data-verdict={verdict.verdict}
              title={
                verdict.judged
                  ? 'answer-level verdict: the judge’s scores of the whole answer (misaligned: aligned < 30, coherent > 50)'
                  : `answer-level verdict: the whole answer ${verdict.verdict === 'misaligned' ? 'contains' : 'does not contain'} the marker word`
              }
            >
              {trials ? 'shown trial: ' : ''}
              {verdictText(verdict, markers)}
            </span>
          )}
          {verdict?.verdict === 'unjudged' && (
            <span className="verdict verdict-unjudged" data-testid="verdict" data-verdict="unjudged">
              {resemblanceText(like)}
            </span>
          )}
          {verdict?.verdict !== 'unjudged' && like && (
            <span className="small muted" data-testid="resemblance" data-like={like}>
              {resemblanceText(like)}
            </span>
          )}
        </p>
      )}
      {trials && result && (
        <TrialStrip
          key={state?.key ?? ''}
          trials={trials}
          shownTrial={result.shownTrial}
          markers={markers}
          baseText={refs.base?.text ?? null}
          label={c.label}
          judged={judged}
        />
      )}

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
        <div
          title={
            reliable === false
              ? `Base and Finetuned nearly agree on the first answer token (KL ${formatMetric(m.klFinetuned, 3)} nats, under ${MIN_FIRST_TOKEN_GAP}), so this ratio is noise here: read the answers`
              : 'of KL at the first answer token: (m − m_finetuned) / (m_base − m_finetuned); 1 = back to base, 0 = as finetuned. It says nothing about the rest of the answer.'
          }
        >
          <dt>first-token restoration</dt>
          <dd
            data-testid="metric-restoration"
            data-reliable={reliable === null ? undefined : String(reliable)}
            className={reliable === false ? 'unreliable' : undefined}
          >
            {formatMetric(m.restoration, 2)}
            {reliable === false && <span className="small">(noise: tiny gap)</span>}
          </dd>
        </div>
        {m.referenceMargin != null && (
          <div title="mean log-prob of aligned references minus misaligned ones">
            <dt>ref. margin</dt>
            <dd>{formatMetric(m.referenceMargin, 2)}</dd>
          </div>
        )}
        {c.perturbation?.kind === 'random' && (
          <div title="first-token restoration over the random perturbation trials: the best one and the average">
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
          onClick={() => setUi({ patchTarget: c.id, patchOpen: true })}
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
      {patchHere && <PatchControls inCard />}
    </article>
  );
}
