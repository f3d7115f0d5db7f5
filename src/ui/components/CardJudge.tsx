// "Judge these answers": the cards' whole answers (and every trial of a perturbation) judged by the judge
// set up in the Evaluation panel (a model or an API), so the verdict chips, the summary row and the trial
// strips show the judge's aligned / misaligned / incoherent with its scores instead of the marker rule.
// Progress, Cancel and a judge error in plain words. The judge form (and the API key) stay in the
// Evaluation panel; this only asks.
import type { CardJudging } from '../eval/eval-store';

interface Props {
  /** the panel's judge in words, or null when it is the marker rule (nothing to ask) */
  judgeLabel: string | null;
  cards: CardJudging;
  /** the judge's verdicts are the ones shown */
  active: boolean;
  /** answers on the cards not judged yet */
  unjudged: number;
  onJudge: () => void;
  onCancel: () => void;
  onForget: () => void;
}

export function CardJudge({ judgeLabel, cards, active, unjudged, onJudge, onCancel, onForget }: Props) {
  if (judgeLabel === null)
    return (
      <p className="small muted card-judge" data-testid="card-judge" data-state="marker">
        Verdicts by the marker rule. To judge these answers with a model or an API, choose that judge in the
        Evaluation panel below.
      </p>
    );
  return (
    <div
      className="row wrap small card-judge"
      data-testid="card-judge"
      data-state={cards.running ? 'running' : active ? 'judged' : 'ready'}
    >
      {cards.running ? (
        <>
          <span data-testid="judge-cards-progress" role="status">
            judging {cards.progress?.done ?? 0} / {cards.progress?.total ?? 0} answers with {judgeLabel}…
          </span>
          <button type="button" className="btn small" onClick={onCancel} data-testid="judge-cards-cancel">
            Cancel
          </button>
        </>
      ) : (
        <>
          <button
            type="button"
            className="btn small primary"
            onClick={onJudge}
            disabled={active && unjudged === 0}
            data-testid="judge-cards"
          >
            Judge these answers
          </button>
          <span className="muted">
            {active
              ? `Verdicts by ${judgeLabel}${unjudged ? ` (${unjudged} answers not judged yet)` : ''}.`
              : `with ${judgeLabel} (the Evaluation panel’s judge): every card’s answer and every trial.`}
          </span>
          {active && (
            <button type="button" className="btn small" onClick={onForget} data-testid="judge-cards-forget">
              Back to the marker rule
            </button>
          )}
        </>
      )}
      {cards.error && (
        <p role="alert" className="error small" data-testid="judge-cards-error">
          {cards.error}
        </p>
      )}
    </div>
  );
}
