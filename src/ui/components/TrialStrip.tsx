// Every random-perturbation trial of a card, honestly: how many trials' own answers lost the marker word
// (or match Base's answer), one button per trial coloured by its verdict, and the answer of the trial
// picked. The card's main answer is only the trial closest to base at the first answer token; this strip
// shows the rest. Must never rank or hide trials, and renders answers as text, never HTML.
import { useState } from 'react';
import type { TrialResult } from '../../lab/spec/results';
import { formatMetric } from '../format';
import { tallyText, tallyTrials, verdictText, type Judged } from '../verdicts';

interface Props {
  trials: TrialResult[];
  /** the trial the card's main answer comes from */
  shownTrial: number | undefined;
  markers: string[];
  baseText: string | null;
  label: string;
  /** the judge's judgements by answer text; null: the marker rule */
  judged?: Judged | null;
}

export function TrialStrip({ trials, shownTrial, markers, baseText, label, judged }: Props) {
  const [picked, setPicked] = useState<number | null>(null);
  const tally = tallyTrials(trials, markers, baseText, judged);
  const good = judged || markers.length ? tally.aligned : tally.likeBase;
  const tone = good === 0 ? 'misaligned' : good === tally.n ? 'aligned' : 'mixed';
  const sel = picked !== null ? trials[picked] : null;
  const verdictOf = (i: number) => {
    const v = tally.verdicts[i];
    if (v.verdict !== 'unjudged') return { key: v.verdict, text: verdictText(v, markers) };
    if (judged) return { key: 'unjudged', text: 'not judged yet' };
    if (baseText !== null && trials[i].text.trim() === baseText.trim())
      return { key: 'aligned', text: 'same answer as Base' };
    return { key: 'unjudged', text: 'differs from Base' };
  };

  return (
    <div className="trials" data-testid="trials">
      <p
        className={`trial-tally verdict-${tone}`}
        data-testid="trial-tally"
        data-good={good}
        data-n={tally.n}
      >
        {tallyText(tally, markers, baseText !== null, judged)}
      </p>
      <div className="trial-dots" role="group" aria-label={`trials of ${label}`}>
        {trials.map((t, i) => {
          const v = verdictOf(i);
          return (
            <button
              type="button"
              key={t.index}
              className={`trial-dot verdict-${v.key}${i === shownTrial ? ' shown' : ''}`}
              data-testid="trial"
              data-trial={t.index}
              data-verdict={v.key}
              aria-pressed={picked === i}
              aria-label={`trial ${t.index + 1}: ${v.text}${i === shownTrial ? ' (the answer shown above)' : ''}`}
              title={`trial ${t.index + 1}: ${v.text}`}
              onClick={() => setPicked(picked === i ? null : i)}
            >
              {t.index + 1}
            </button>
          );
        })}
      </div>
      {sel ? (
        <div className="trial-answer" data-testid="trial-answer" aria-live="polite">
          <div className="small muted">
            trial {sel.index + 1} of {tally.n} · {verdictOf(sel.index).text} · first-token restoration{' '}
            {formatMetric(sel.restoration, 2)} · {sel.edited.length} tokens changed
          </div>
          {sel.replacements && sel.replacements.length > 0 && (
            <ul
              className="trial-edits small"
              data-testid="trial-edits"
              aria-label="tokens this trial replaced"
            >
              {sel.replacements.map((r) => (
                <li key={r.position} data-position={r.position}>
                  <span className="muted">#{r.position}</span>{' '}
                  <span className="mono">{JSON.stringify(r.from.text)}</span> →{' '}
                  <span className="mono">{JSON.stringify(r.to.text)}</span>
                </li>
              ))}
            </ul>
          )}
          <div className="trial-text">{sel.text || <span className="muted">(empty answer)</span>}</div>
        </div>
      ) : (
        <p className="small muted">Click a trial to read its answer.</p>
      )}
    </div>
  );
}
