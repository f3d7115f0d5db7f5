// The heatmap in words, above the map: which layer it points to (or that none stands out), the strongest
// single cell, what the colour scale means (scaled to this map, not to 1), the per-layer patch when it
// has been run, and a warning when base and finetuned nearly agree on the first answer token (then every
// cell is noise). Must never compute a cell; it reads the sweep's values and the summary of them.
import type { PatchComponent } from '../../lab/spec/experiment';
import type { HeatmapSummary } from '../charts/heatmap-summary';
import { displayToken, formatMetric } from '../format';
import { MIN_FIRST_TOKEN_GAP } from '../verdicts';

interface Props {
  summary: HeatmapSummary;
  component: PatchComponent;
  /** the map's row label for a layer number ("out" for the residual after the last layer) */
  rowName: (layer: number) => string;
  /** restoration per layer with every prefix position of that layer patched, when run for this map */
  perLayer: { layers: number[]; values: number[]; positions: number } | null;
  /** KL(base ‖ finetuned) at the first answer token, from a current card; null when unknown */
  gap: number | null;
}

const f2 = (v: number) => formatMetric(v, 2);
const f3 = (v: number) => formatMetric(v, 3);

export function HeatmapReading({ summary, component, rowName, perLayer, gap }: Props) {
  const [top, next] = summary.ranked;
  const cell = summary.cell;
  const name = (l: number) => {
    const r = rowName(l);
    if (component === 'kv') return `layer ${r}`;
    return r === 'out' ? 'the output of the last layer' : `the residual into layer ${r}`;
  };
  const best = perLayer
    ? perLayer.layers
        .map((layer, i) => ({ layer, v: perLayer.values[i] }))
        .filter((x) => Number.isFinite(x.v))
        .sort((a, b) => b.v - a.v)
    : [];
  return (
    <div
      className="heatmap-reading small"
      data-testid="heatmap-summary"
      data-layer={summary.standsOut && top ? top.layer : 'none'}
    >
      {gap !== null && gap < MIN_FIRST_TOKEN_GAP && (
        <p className="warn" data-testid="heatmap-noise-warning">
          Base and Finetuned nearly agree on the first answer token of this question (KL{' '}
          {formatMetric(gap, 3)} nats), so restoration, a ratio over that gap, is noise in every cell. Ask a
          question where their first answer tokens differ.
        </p>
      )}
      {top ? (
        summary.standsOut ? (
          <p>
            <b>Which layer: {name(top.layer)}.</b> Its cells restore the most on average ({f3(top.mean)} per
            position{next ? `; next ${name(next.layer)}, ${f3(next.mean)}` : ''}).
          </p>
        ) : (
          <p>
            <b>No single layer stands out</b> when one position is patched at a time: the layers’ averages are
            close (
            {summary.ranked
              .slice(0, 3)
              .map((r) => `${name(r.layer)} ${f3(r.mean)}`)
              .join(', ')}
            ).
          </p>
        )
      ) : (
        <p className="muted">No cell has a value yet.</p>
      )}
      {cell && (
        <p>
          Strongest single cell: {name(cell.layer)} at position {cell.position}{' '}
          <code>{displayToken(cell.label)}</code>, {f2(cell.value)}. Colours are scaled to this map: the
          legend’s top is {f2(summary.scaleTop)}, while 1 would mean fully back to Base’s first answer token
          {summary.negative ? '; orange cells move it further from Base' : ''}.
        </p>
      )}
      {best.length > 0 ? (
        <p data-testid="per-layer-reading">
          With all {perLayer!.positions} prefix positions of one layer patched at once: {name(best[0].layer)}{' '}
          restores the most ({f2(best[0].v)})
          {best[1] ? `, then ${name(best[1].layer)} (${f2(best[1].v)})` : ''}.
        </p>
      ) : (
        <p className="muted">
          “Per layer” below patches every prefix position of one layer at once: the clearest answer to which
          layer carries the effect.
        </p>
      )}
      {component === 'resid' && (
        <p className="muted">
          Row “out” is the stream after the last layer: from prefix positions it cannot change the answer, so
          it stays at 0.
        </p>
      )}
    </div>
  );
}
