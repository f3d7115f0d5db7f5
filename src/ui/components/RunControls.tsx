// The small controls every on-demand plot shares: a run button that turns into Cancel while it runs, a
// CSV download of the result, and the progress row under the chart's title.
import { downloadText } from '../save-file';

/** "Run" (primary) while idle, "Cancel" while running. */
export function RunOrCancel(props: {
  running: boolean;
  onRun: () => void;
  onCancel: () => void;
  label: string;
  testId?: string;
}) {
  if (props.running)
    return (
      <button type="button" className="btn small" onClick={props.onCancel}>
        Cancel
      </button>
    );
  return (
    <button type="button" className="btn small primary" onClick={props.onRun} data-testid={props.testId}>
      {props.label}
    </button>
  );
}

/** Downloads `csv()` as `file` (text/csv). */
export function CsvButton(props: { file: string; csv: () => string; testId?: string }) {
  return (
    <button
      type="button"
      className="btn small"
      data-testid={props.testId}
      onClick={() => downloadText(props.file, props.csv(), 'text/csv')}
    >
      CSV
    </button>
  );
}

/**
 * A progress bar with its caption: determinate when `total` is known (> 0), with "done / total" and an
 * optional unit; indeterminate otherwise, captioned by `idle` ("starting…" by default).
 */
export function ProgressRow(props: {
  label: string;
  testId?: string;
  done?: number;
  total?: number;
  unit?: string;
  idle?: string;
}) {
  const { done = 0, total = 0 } = props;
  return (
    <div className="progress-row" role="status">
      <progress
        max={total || 1}
        value={total ? done : undefined}
        aria-label={props.label}
        data-testid={props.testId}
      />
      <span className="small muted">
        {total ? `${done} / ${total}${props.unit ? ` ${props.unit}` : ''}` : (props.idle ?? 'starting…')}
      </span>
    </div>
  );
}
