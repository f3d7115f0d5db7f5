// Per-head K/V patching: a layers × KV-heads map, each cell patching one KV head's K/V at every prefix
// position from base into the finetuned model (the worker's 'sweep' with perHead). Run / progress /
// cancel; a click adds that per-head patch as a condition; CSV, SVG and PNG exports. Must never compute
// a plotted value itself.
import { useCallback, useMemo, useRef, useState } from 'react';
import { isAbort } from '../../common/abort';
import { errorMessage } from '../../common/errors';
import type { SweepResult } from '../../lab/spec/results';
import { headSweepHeatmap, headSweepToCsv } from '../attention-view';
import type { HeatmapCell } from '../charts/heatmap';
import type { Job } from '../engine-queue';
import { promptKey } from '../results-state';
import { useSession } from '../session-context';
import { addHeadPatchCondition } from '../spec-edit';
import { useLab } from '../store';
import { ChartFrame } from './ChartFrame';
import { HeadGrid } from './HeadGrid';
import { CsvButton, ProgressRow, RunOrCancel } from './RunControls';

export function HeadSweep() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const notify = useLab((s) => s.notify);
  const session = useSession();
  const [result, setResult] = useState<SweepResult | null>(null);
  const [key, setKey] = useState<string | null>(null);
  const [status, setStatus] = useState<'idle' | 'running' | 'done' | 'error' | 'cancelled'>('idle');
  const [error, setError] = useState<string | null>(null);
  const [progress, setProgress] = useState({ done: 0, total: 0 });
  const job = useRef<Job<unknown> | null>(null);
  const stale = !!result && key !== promptKey(spec);

  const run = async () => {
    const queue = session?.engineQueue;
    if (!queue) return;
    job.current?.cancel();
    setStatus('running');
    setError(null);
    setProgress({ done: 0, total: 0 });
    const k = promptKey(spec);
    const j = queue.submit({ type: 'sweep', spec, component: 'kv', perHead: true }, (e) => {
      if (e.type !== 'sweep' || job.current !== j) return;
      setResult(e.result);
      setProgress({ done: e.done, total: e.total });
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

  const onCell = useCallback(
    (cell: HeatmapCell) => {
      let id = '';
      const ok = setSpec((s) => {
        const r = addHeadPatchCondition(s, { layer: cell.layer, head: cell.position });
        id = r.id;
        return r.spec;
      });
      if (ok)
        notify(
          'info',
          `Added condition “${id}”: K/V patch of KV head ${cell.position} at layer ${cell.layer}, prefix.`,
        );
    },
    [setSpec, notify],
  );

  const data = useMemo(() => (result ? headSweepHeatmap(result) : null), [result]);
  const running = status === 'running';

  return (
    <ChartFrame
      title="Per-head K/V patching"
      file="head-sweep"
      exportable={!!data}
      testId="head-sweep-panel"
      subtitle={
        result
          ? `${result.layers.length} layers × ${result.positions.length} KV heads · ${result.patchedPositions?.length ?? 0} prefix positions each`
          : undefined
      }
      actions={
        <span className="row">
          <RunOrCancel
            running={running}
            onRun={() => void run()}
            onCancel={cancel}
            label={result ? 'Re-run per head' : 'Run per head'}
            testId="run-head-sweep"
          />
          {result && <CsvButton file="head-sweep.csv" csv={() => headSweepToCsv(result)} />}
        </span>
      }
    >
      {running && (
        <ProgressRow
          label="per-head sweep progress"
          testId="head-sweep-progress"
          done={progress.done}
          total={progress.total}
        />
      )}
      {status === 'error' && error && (
        <p role="alert" className="error small">
          The per-head sweep failed: {error}
        </p>
      )}
      {status === 'cancelled' && <p className="muted small">Cancelled; cells computed so far are kept.</p>}
      {stale && (
        <p className="muted small">The prompt or models changed since this sweep; re-run it to update.</p>
      )}
      {data ? (
        <HeadGrid
          data={data}
          columnName="KV head"
          testId="head-sweep-heatmap"
          label={`per-head K/V patching: ${data.layers.length} layers by ${data.positions.length} KV heads`}
          onCellClick={onCell}
          clickHint="click adds this per-head patch as a condition"
        />
      ) : (
        !running && (
          <p className="empty muted">
            Which heads carry it? Each cell patches one KV head’s keys and values at every prefix position
            from base into the finetuned model (the other heads keep the finetuned model’s own), one layer at
            a time. With grouped-query attention a KV head serves several query heads.
          </p>
        )
      )}
    </ChartFrame>
  );
}
