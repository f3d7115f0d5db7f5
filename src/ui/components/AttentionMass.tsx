// The attention view: where the answer positions' attention goes (prefix / query / postfix / earlier
// answer tokens), per layer averaged over heads, for every condition, and a layers × heads map of the
// finetuned − base prefix mass. Runs the worker's 'attention' request on demand (progress, cancel);
// exports CSV and the map as SVG / PNG. Must never compute a plotted value itself beyond the per-layer
// means over heads, which it labels.
import { useMemo, useRef, useState } from 'react';
import { isAbort } from '../../common/abort';
import { errorMessage } from '../../common/errors';
import type { AttentionResult } from '../../lab/spec/results';
import { attentionToCsv, prefixDiffHeatmap, regionMeans, strongestPrefixHead } from '../attention-view';
import type { Job } from '../engine-queue';
import { formatMetric } from '../format';
import { promptKey } from '../results-state';
import { useSession } from '../session-context';
import { useLab } from '../store';
import { ChartFrame } from './ChartFrame';
import { HeadGrid } from './HeadGrid';
import { CsvButton, ProgressRow, RunOrCancel } from './RunControls';

const REGION_COLOUR: Record<string, string> = {
  prefix: '#f4c95d',
  query: '#7fb3f5',
  postfix: '#a8d5a2',
  answer: '#c9a0dc',
};

export function AttentionMass() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const session = useSession();
  const [result, setResult] = useState<AttentionResult | null>(null);
  const [key, setKey] = useState<string | null>(null);
  const [status, setStatus] = useState<'idle' | 'running' | 'done' | 'error' | 'cancelled'>('idle');
  const [error, setError] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number }>({ done: 0, total: 0 });
  const job = useRef<Job<unknown> | null>(null);
  const answerTokens = spec.attention?.answerTokens ?? 1;
  const stale = !!result && key !== promptKey(spec) + JSON.stringify(spec.conditions);

  const run = async () => {
    const queue = session?.engineQueue;
    if (!queue) return;
    job.current?.cancel();
    setStatus('running');
    setError(null);
    setProgress({ done: 0, total: 0 });
    const k = promptKey(spec) + JSON.stringify(spec.conditions);
    const j = queue.submit({ type: 'attention', spec, answerTokens }, (e) => {
      if (e.type === 'attention-progress') setProgress({ done: e.done, total: e.total });
    });
    job.current = j;
    try {
      const r = await j.done;
      if (job.current !== j) return;
      setResult(r.result);
      setKey(k);
      setStatus('done');
    } catch (e) {
      if (job.current !== j) return;
      if (isAbort(e)) setStatus('cancelled');
      else {
        setStatus('error');
        setError(errorMessage(e));
      }
    }
  };
  const cancel = () => {
    job.current?.cancel();
    job.current = null;
    setStatus('cancelled');
  };

  const data = useMemo(() => (result ? prefixDiffHeatmap(result) : null), [result]);
  const strongest = useMemo(() => (result ? strongestPrefixHead(result) : null), [result]);
  const running = status === 'running';

  return (
    <ChartFrame
      title="Attention to the prefix"
      file="attention-prefix-diff"
      exportable={!!data}
      testId="attention-panel"
      subtitle={
        result
          ? `${result.layers.length} layers × ${result.heads} heads · from ${result.answerTokens === 1 ? 'the first answer position' : `${result.answerTokens} answer positions`}`
          : undefined
      }
      actions={
        <span className="row">
          <label className="field inline small">
            <span>answer positions</span>
            <select
              value={answerTokens}
              disabled={running}
              aria-label="answer positions"
              onChange={(e) => {
                const n = Number(e.target.value);
                setSpec((s) => {
                  if (n === 1) {
                    const { attention: _drop, ...rest } = s;
                    return rest;
                  }
                  return { ...s, attention: { answerTokens: n } };
                });
              }}
            >
              {[1, 4, 8, 16].map((n) => (
                <option key={n} value={n}>
                  {n === 1 ? 'first only' : `first ${n}`}
                </option>
              ))}
            </select>
          </label>
          <RunOrCancel
            running={running}
            onRun={() => void run()}
            onCancel={cancel}
            label={result ? 'Recompute' : 'Compute attention'}
            testId="run-attention"
          />
          {result && <CsvButton file="attention-mass.csv" csv={() => attentionToCsv(result)} />}
        </span>
      }
    >
      {running && (
        <ProgressRow
          label="attention progress"
          testId="attention-progress"
          done={progress.done}
          total={progress.total}
          unit="runs"
        />
      )}
      {status === 'error' && error && (
        <p role="alert" className="error small">
          Attention failed: {error}
        </p>
      )}
      {status === 'cancelled' && <p className="muted small">Cancelled.</p>}
      {stale && (
        <p className="muted small">
          The prompt, models or conditions changed since this; recompute to update.
        </p>
      )}
      {result && data ? (
        <>
          {strongest && (
            <p className="small" data-testid="attention-strongest">
              Largest change: layer <b>{strongest.layer}</b>, head <b>{strongest.head}</b> puts{' '}
              <b>{formatMetric(strongest.finetuned)}</b> of its attention on the prefix in the finetuned model
              vs <b>{formatMetric(strongest.base)}</b> in the base ({strongest.diff >= 0 ? '+' : ''}
              {formatMetric(strongest.diff)}).
            </p>
          )}
          <HeadGrid
            data={data}
            columnName="head"
            testId="attention-diff-heatmap"
            label={`prefix attention mass, finetuned minus base: ${result.layers.length} layers by ${result.heads} heads`}
          />
          <MassTable result={result} />
        </>
      ) : (
        !running && (
          <p className="empty muted">
            Does the answer lean on the prefix more after finetuning? “Compute attention” reads every layer’s
            attention probabilities at the answer positions, for each condition: the share on prefix, query,
            postfix and earlier answer tokens, and a layer × head map of finetuned − base on the prefix.
          </p>
        )
      )}
    </ChartFrame>
  );
}

/** Per condition and layer: the mean over heads of each region's share, as a stacked bar with numbers. */
function MassTable({ result }: { result: AttentionResult }) {
  return (
    <div className="chart-scroll">
      <table className="small attention-mass" data-testid="attention-mass-table">
        <caption className="muted small">
          share of attention (mean over {result.heads} heads) on{' '}
          {result.regions.map((g, i) => (
            <span key={g}>
              {i > 0 && ' · '}
              <span style={{ background: REGION_COLOUR[g], padding: '0 4px' }}>{g}</span>
            </span>
          ))}
        </caption>
        <thead>
          <tr>
            <th scope="col">condition</th>
            {result.layers.map((l) => (
              <th key={l} scope="col">
                layer {l}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {result.conditions.map((c) => {
            const means = c.error ? null : regionMeans(result, c.mass);
            return (
              <tr key={c.id} data-condition={c.id}>
                <th scope="row" title={c.answerText ? `answer so far: ${c.answerText}` : undefined}>
                  {c.label}
                </th>
                {result.layers.map((l, li) => (
                  <td key={l}>
                    {means ? (
                      <span
                        title={result.regions
                          .map((g, gi) => `${g} ${formatMetric(means[li][gi])}`)
                          .join(' · ')}
                      >
                        <span
                          className="mass-bar"
                          aria-hidden="true"
                          style={{ display: 'block', whiteSpace: 'nowrap' }}
                        >
                          {result.regions.map((g, gi) => (
                            <span
                              key={g}
                              style={{
                                display: 'inline-block',
                                height: 8,
                                width: `${Math.round(means[li][gi] * 64)}px`,
                                background: REGION_COLOUR[g],
                              }}
                            />
                          ))}
                        </span>{' '}
                        prefix <b>{formatMetric(means[li][0])}</b>
                      </span>
                    ) : (
                      <span className="error">{c.error}</span>
                    )}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
