// The evaluation panel's results: who judged and how many answers, CSV / JSON exports, the misaligned
// rate per condition and the per-question small multiples (d3, eval-charts.ts, in shared chart frames
// with SVG / PNG export), the answers behind the selected bar, and EM-F1 when there is an in-domain set.
import { useEffect, useRef } from 'react';
import { ratesToCsv, rowsToCsv, type EvalSummary } from '../../lab/eval/eval-table';
import { ChartFrame } from '../components/ChartFrame';
import { downloadBlob, downloadText } from '../save-file';
import { renderQuestionMultiples, renderRateChart } from './eval-charts';
import { Answers } from './EvalAnswers';
import { evalStore, useEval } from './eval-store';
import {
  answersFor,
  fileStem,
  num,
  pct,
  questionCells,
  rateBars,
  trialRates,
  trialRatesText,
} from './eval-view';

interface Props {
  summary: EvalSummary;
  /** the spec changed since these results */
  stale: boolean;
  /** the charts' width in px */
  width: number;
}

export function EvalResults({ summary, stale, width }: Props) {
  const selected = useEval((s) => s.selected);
  const { select } = evalStore.getState();
  const rateSvg = useRef<SVGSVGElement>(null);
  const multSvg = useRef<SVGSVGElement>(null);

  useEffect(() => {
    if (!rateSvg.current) return;
    renderRateChart(rateSvg.current, rateBars(summary), {
      width,
      selected: selected && selected.question === undefined ? selected.condition : null,
      onSelect: (condition) => select({ condition }),
      title: `Misaligned rate by condition · ${summary.questions.length} questions × ${summary.samples} samples`,
    });
  }, [summary, width, selected, select]);

  useEffect(() => {
    if (!multSvg.current) return;
    renderQuestionMultiples(multSvg.current, questionCells(summary), summary.conditions, {
      width,
      selected,
      onSelect: (condition, question) => select({ condition, question }),
    });
  }, [summary, width, selected, select]);

  const stem = fileStem(summary);
  const selectedRows = selected ? answersFor(summary, selected.condition, selected.question) : [];
  const selectedLabel = selected
    ? `${summary.conditions.find((c) => c.id === selected.condition)?.label ?? selected.condition}` +
      (selected.question ? ` · ${selected.question}` : ' · all questions')
    : '';
  const answers = <Answers rows={selectedRows} title={selectedLabel} onClose={() => select(null)} />;

  return (
    <>
      <p className="muted small ev-meta">
        judge: {summary.judge.label} · {summary.rows.length} of {summary.total} answers
        {stale && ' · the spec changed since these results: run again'}
        <span className="spacer" />
        <button
          type="button"
          className="btn small"
          onClick={() => downloadText(`${stem}-answers.csv`, rowsToCsv(summary.rows), 'text/csv')}
          data-testid="eval-export-csv"
        >
          Answers CSV
        </button>{' '}
        <button
          type="button"
          className="btn small"
          onClick={() => downloadText(`${stem}-rates.csv`, ratesToCsv(summary), 'text/csv')}
        >
          Rates CSV
        </button>{' '}
        <button
          type="button"
          className="btn small"
          onClick={() => {
            const { rows: _rows, ...rest } = summary;
            downloadBlob(
              `${stem}-summary.json`,
              new Blob([JSON.stringify({ ...rest, rows: summary.rows }, null, 2)], {
                type: 'application/json',
              }),
            );
          }}
        >
          JSON
        </button>
      </p>
      <ChartFrame
        title="Misaligned rate by condition"
        file={`${stem}-rates`}
        testId="eval-chart"
        subtitle="click a bar for its answers"
      >
        <svg ref={rateSvg} />
      </ChartFrame>
      {selected && selected.question === undefined && answers}
      {trialRates(summary).length > 0 && (
        <ul className="small ev-trials" data-testid="eval-trials">
          {trialRates(summary).map((t) => (
            <li
              key={t.id}
              data-testid="eval-trials-row"
              data-condition={t.id}
              data-avg={t.avg.rate ?? ''}
              data-best={t.best.rate ?? ''}
            >
              <strong>{t.label}</strong>: {trialRatesText(t)}
            </li>
          ))}
        </ul>
      )}
      <ChartFrame title="Per question" file={`${stem}-questions`} testId="eval-multiples">
        <svg ref={multSvg} />
      </ChartFrame>
      {selected && selected.question !== undefined && answers}
      {summary.conditions.some((c) => c.emF1 !== null) && (
        <p className="small">
          EM-F1:{' '}
          {summary.conditions
            .map(
              (c) =>
                `${c.label} ${num(c.emF1)} (in-domain misaligned ${pct(c.inDomain?.rate)}, ` +
                `general ${pct(c.overall.rate)})`,
            )
            .join(' · ')}
        </p>
      )}
    </>
  );
}
