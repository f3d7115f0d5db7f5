// Plots: the layer × position patching heatmap (run / progress / cancel, hover value, click a cell to add
// that patch as a condition), prefix drift per layer (L_K, L_V) and restoration by layer; each exportable
// as SVG / PNG and its data as CSV. Must never compute a plotted value itself except plain per-row
// summaries of the heatmap, which it labels as such.
import { useCallback, useId, useMemo } from 'react';
import type { PatchComponent } from '../../lab/spec/experiment';
import type { HeatmapCell, HeatmapData } from '../charts/heatmap';
import { heatmapRows, readPerLayer, summarizeHeatmap } from '../charts/heatmap-summary';
import type { LayerSeries } from '../charts/layer-lines';
import { rowSummaries } from '../charts/scales';
import { downloadText } from '../save-file';
import { driftToCsv, sweepToCsv } from '../export-results';
import { formatMetric } from '../format';
import { isCurrent, promptKey } from '../results-state';
import { useSession } from '../session-context';
import { addCellPatchCondition } from '../spec-edit';
import { labStore, useLab } from '../store';
import { AttentionMass } from './AttentionMass';
import { ChartFrame } from './ChartFrame';
import { HeadSweep } from './HeadSweep';
import { Heatmap } from './Heatmap';
import { HeatmapReading } from './HeatmapReading';
import { LayerLines } from './LayerLines';
import { LogitLens } from './LogitLens';
import { ProgressRow } from './RunControls';

const COMP_LABEL = { kv: 'K/V', resid: 'residual' } as const;

export function PlotsPanel() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const notify = useLab((s) => s.notify);
  const prompt = useLab((s) => s.prompt);
  const sweep = useLab((s) => s.sweep);
  const layerSweep = useLab((s) => s.layerSweep);
  const drift = useLab((s) => s.drift);
  const session = useSession();
  const uid = useId();
  const comp = sweep.component;
  const result = sweep.results[comp];
  const key = promptKey(spec);
  const stale = !!result && sweep.key !== key;

  const conditions = useLab((s) => s.conditions);
  const reading = useMemo(() => {
    if (!result) return null;
    // NOTE: a residual sweep has one row per site, numLayers + 1 of them (the last: after the last layer)
    const numLayers = result.component === 'resid' ? result.layers.length - 1 : result.layers.length;
    const rows = heatmapRows(result.component, result.layers, numLayers);
    return { summary: summarizeHeatmap(result), rows };
  }, [result]);
  const perLayer = useMemo(
    () =>
      layerSweep.result && layerSweep.key === key && layerSweep.result.component === comp
        ? { ...readPerLayer(layerSweep.result), positions: layerSweep.result.positions.length }
        : null,
    [layerSweep.result, layerSweep.key, key, comp],
  );
  const data: HeatmapData | null = useMemo(() => {
    if (!result || !reading) return null;
    const top = reading.summary.standsOut ? reading.summary.ranked[0] : undefined;
    return {
      layers: result.layers,
      positions: result.positions,
      positionLabels: result.positionLabels,
      segments: result.positions.map((p) => prompt?.tokens[p]?.segment),
      values: result.values,
      metric: result.metric,
      rowLabels: reading.rows.labels,
      rowTitle: reading.rows.title,
      highlightRow: top ? result.layers.indexOf(top.layer) : null,
      rowMeans: rowSummaries(result.values, result.layers.length, result.positions.length).mean,
      rowKey: reading.rows.key,
      reference:
        perLayer && Number.isFinite(perLayer.full)
          ? { value: perLayer.full, label: 'full prefix patch' }
          : null,
    };
  }, [result, prompt, reading, perLayer]);
  // The first-token gap the sweep's restoration divides by, from any card current for this spec.
  const gap = useMemo(() => {
    for (const c of spec.conditions) {
      const st = conditions[c.id];
      const v = st?.result?.metrics.klFinetuned;
      if (isCurrent(st, spec, c.id) && typeof v === 'number') return v;
    }
    return null;
  }, [spec, conditions]);

  const onCell = useCallback(
    (cell: HeatmapCell) => {
      let id = '';
      const ok = setSpec((s) => {
        const r = addCellPatchCondition(s, {
          component: comp,
          layer: cell.layer,
          position: cell.position,
          tokenText: cell.label,
        });
        id = r.id;
        return r.spec;
      });
      if (ok)
        notify(
          'info',
          `Added condition “${id}”: ${COMP_LABEL[comp]} patch at layer ${cell.layer}, position ${cell.position}.`,
        );
    },
    [comp, setSpec, notify],
  );

  const running = sweep.status === 'running';
  const driftSeries: LayerSeries[] = useMemo(
    () =>
      drift.result
        ? [
            { name: 'L_K', colour: '#3b6fb6', values: drift.result.lk },
            { name: 'L_V', colour: '#c0672b', values: drift.result.lv, dashed: true },
            // the paper's released code: k_proj / v_proj of the residual before the input norm
            ...(drift.result.code
              ? [
                  { name: 'L_K (paper code)', colour: '#7fa3d9', values: drift.result.code.lk },
                  { name: 'L_V (paper code)', colour: '#e0a77f', values: drift.result.code.lv, dashed: true },
                ]
              : []),
          ]
        : [],
    [drift.result],
  );

  const restoration = useMemo((): { layers: number[]; series: LayerSeries[]; note: string } | null => {
    if (layerSweep.result) {
      const r = layerSweep.result;
      return {
        layers: r.layers,
        series: [
          { name: `${COMP_LABEL[r.component]}, all prefix positions`, colour: '#3b6fb6', values: r.values },
          // NOTE: the same value at every layer: the reference line, every layer patched at once
          {
            name: 'every layer at once',
            colour: '#1d2330',
            values: r.layers.map(() => r.allLayers),
            dashed: true,
          },
        ],
        note: `patching one layer at a time at ${r.positions.length} positions · ${r.metric}`,
      };
    }
    if (result) {
      const { mean, max } = rowSummaries(result.values, result.layers.length, result.positions.length);
      return {
        layers: result.layers,
        series: [
          { name: 'max over positions', colour: '#3b6fb6', values: max },
          { name: 'mean over positions', colour: '#7a9cc6', values: mean, dashed: true },
        ],
        note: `from the ${COMP_LABEL[result.component]} heatmap (one position at a time) · ${result.metric}`,
      };
    }
    return null;
  }, [layerSweep.result, result]);

  return (
    <section className="panel plots" aria-labelledby={`${uid}-h`}>
      <h2 id={`${uid}-h`}>Plots</h2>
      <ChartFrame
        title="Patching heatmap"
        file={`heatmap-${comp}`}
        exportable={!!data}
        subtitle={data ? `${data.layers.length} layers × ${data.positions.length} positions` : undefined}
        actions={
          <span className="row">
            <label className="field inline small">
              <span>component</span>
              <select
                value={comp}
                disabled={running}
                onChange={(e) => setSweepComponent(e.target.value as PatchComponent)}
                aria-label="heatmap component"
              >
                <option value="kv">K/V</option>
                <option value="resid">residual</option>
              </select>
            </label>
            {running ? (
              <button type="button" className="btn small" onClick={() => session?.cancelSweep()}>
                Cancel
              </button>
            ) : (
              <button
                type="button"
                className="btn small primary"
                onClick={() => void session?.sweep(comp)}
                data-testid="run-sweep"
              >
                {result ? 'Re-run sweep' : 'Run sweep'}
              </button>
            )}
            {result && (
              <button
                type="button"
                className="btn small"
                onClick={() => downloadText(`sweep-${comp}.csv`, sweepToCsv(result), 'text/csv')}
              >
                CSV
              </button>
            )}
          </span>
        }
      >
        {running && (
          <ProgressRow label="sweep progress" testId="sweep-progress" done={sweep.done} total={sweep.total} />
        )}
        {sweep.status === 'error' && sweep.error && (
          <p role="alert" className="error small">
            The sweep failed: {sweep.error}
          </p>
        )}
        {sweep.status === 'cancelled' && (
          <p className="muted small">Sweep cancelled; cells computed so far are kept.</p>
        )}
        {stale && (
          <p className="muted small">The prompt or models changed since this sweep; re-run it to update.</p>
        )}
        {data && reading && !running && (
          <HeatmapReading
            summary={reading.summary}
            component={comp}
            rowName={(l) => reading.rows.names[data.layers.indexOf(l)] ?? `layer ${l}`}
            perLayer={perLayer}
            perLayerRunning={layerSweep.status === 'running'}
            gap={stale ? null : gap}
          />
        )}
        {data ? (
          <Heatmap data={data} onCellClick={onCell} componentLabel={COMP_LABEL[comp]} />
        ) : (
          !running && (
            <p className="empty muted">
              Patch base into finetuned one layer and one prefix position at a time: “Run sweep” fills a layer
              × position map of the effect. Click a cell to add it as a condition.
            </p>
          )
        )}
      </ChartFrame>

      <div className="plot-pair">
        <ChartFrame
          title="Prefix drift per layer"
          file="prefix-drift"
          exportable={!!drift.result}
          subtitle={
            drift.result
              ? `L_KV = ${formatMetric(drift.result.lkv, 4)}${drift.result.code ? ` · paper code (un-normed): ${formatMetric(drift.result.code.lkv, 4)}` : ''}`
              : undefined
          }
          actions={
            <span className="row">
              <button
                type="button"
                className="btn small"
                disabled={drift.status === 'running'}
                onClick={() => void session?.drift()}
              >
                {drift.status === 'running' ? 'Computing…' : drift.result ? 'Recompute' : 'Compute'}
              </button>
              {drift.result && (
                <button
                  type="button"
                  className="btn small"
                  onClick={() => downloadText('prefix-drift.csv', driftToCsv(drift.result!), 'text/csv')}
                >
                  CSV
                </button>
              )}
            </span>
          }
        >
          {drift.status === 'error' && drift.error && (
            <p role="alert" className="error small">
              Drift failed: {drift.error}
            </p>
          )}
          {drift.result ? (
            <LayerLines
              layers={drift.result.layers}
              series={driftSeries}
              yLabel="relative drift"
              label="prefix drift per layer: L_K and L_V"
              testId="drift-chart"
            />
          ) : (
            drift.status !== 'error' && (
              <p className="empty muted">
                How far the finetune moved the prefix keys and values, per layer (TReFT’s L_K, L_V): ‖k −
                k_base‖² / ‖k_base‖² averaged over prefix positions.
              </p>
            )
          )}
        </ChartFrame>

        <ChartFrame
          title="Restoration by layer"
          file="restoration-by-layer"
          exportable={!!restoration}
          subtitle={restoration?.note}
          actions={
            layerSweep.status === 'running' ? (
              <button type="button" className="btn small" onClick={() => session?.cancelLayerSweep()}>
                Cancel
              </button>
            ) : (
              <button type="button" className="btn small" onClick={() => void session?.layerSweep(comp)}>
                Per layer ({COMP_LABEL[comp]})
              </button>
            )
          }
        >
          {layerSweep.status === 'running' && (
            <div className="progress-row" role="status">
              <progress aria-label="layer sweep progress" />
              <span className="small muted">patching one layer at a time…</span>
            </div>
          )}
          {layerSweep.status === 'error' && layerSweep.error && (
            <p role="alert" className="error small">
              Layer sweep failed: {layerSweep.error}
            </p>
          )}
          {restoration ? (
            <LayerLines
              layers={restoration.layers}
              series={restoration.series}
              yLabel="restoration"
              yInclude={[0, 1]}
              label="restoration by layer"
              testId="restoration-chart"
            />
          ) : (
            <p className="empty muted">
              Run the heatmap sweep or “Per layer” to see which layers carry the effect.
            </p>
          )}
        </ChartFrame>
      </div>

      <div className="plot-pair">
        <AttentionMass />
        <HeadSweep />
      </div>

      <LogitLens />
    </section>
  );
}

function setSweepComponent(component: PatchComponent): void {
  const s = labStore.getState();
  labStore.setState({
    sweep: { ...s.sweep, component, status: s.sweep.results[component] ? 'done' : 'idle', error: null },
  });
}
