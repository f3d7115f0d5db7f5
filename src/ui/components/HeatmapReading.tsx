// The heatmap in words, above the map: the strongest layer (the per-layer patch, every prefix position of
// one layer at once, read against the full-prefix patch), the strongest position (the strongest single
// cell), which layer the one-position cells point to on average, what the fixed colour scale means, and a
// warning when base and finetuned nearly agree on the first answer token (then every cell is noise).
// Must never compute a cell; it reads the sweep's values and the summaries of them.
import type { PatchComponent } from '../../lab/spec/experiment';
import { shareWords, type HeatmapSummary, type PerLayerReading } from '../charts/heatmap-summary';
import { displayToken, formatMetric } from '../format';
import { MIN_FIRST_TOKEN_GAP } from '../verdicts';

interface Props {
  summary: HeatmapSummary;
  component: PatchComponent;
  /** plain name of a row, e.g. "layer 2", "the embeddings (residual into layer 0)" */
  rowName: (layer: number) => string;
  /** the per-layer patch for this map (null: not run, or for other models / prompt) */
  perLayer: (PerLayerReading & { positions: number }) | null;
  /** the per-layer patch is running */
  perLayerRunning: boolean;
  /** KL(base ‖ finetuned) at the first answer token, from a current card; null when unknown */
  gap: number | null;
}

const f2 = (v: number) => formatMetric(v, 2);
const f3 = (v: number) => formatMetric(v, 3);

export function HeatmapReading({ summary, component, rowName, perLayer, perLayerRunning, gap }: Props) {
  const [top, next] = summary.ranked;
  const cell = summary.cell;
  const name = rowName;
  const best = perLayer?.ranked ?? [];
  const full = perLayer && Number.isFinite(perLayer.full) ? perLayer.full : null;
  const ofFull = (v: number) =>
    full !== null && full > 0 ? `${shareWords(v / full)} of the full prefix patch’s ${f2(full)}` : null;
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
      {best.length > 0 && best[0].value <= 0 ? (
        <p data-testid="per-layer-reading" data-layer="none" data-full={full ?? 'NaN'}>
          <b>No single layer restores it:</b> with all {perLayer!.positions} prefix positions of one layer
          patched at once, the best is {name(best[0].layer)} ({f2(best[0].value)}).
          {full !== null &&
            ` Every layer at once (the full prefix patch, the mark on the legend): ${f2(full)}.`}
        </p>
      ) : best.length > 0 ? (
        <p data-testid="per-layer-reading" data-layer={best[0].layer} data-full={full ?? 'NaN'}>
          <b>
            Strongest layer: {name(best[0].layer)}
            {!perLayer!.clear && best[1] ? `, narrowly ahead of ${name(best[1].layer)}` : ''}.
          </b>{' '}
          With all {perLayer!.positions} prefix positions of one layer patched at once, {name(best[0].layer)}{' '}
          restores the most ({f2(best[0].value)}
          {ofFull(best[0].value) ? `: ${ofFull(best[0].value)}` : ''})
          {best[1] ? `; next ${name(best[1].layer)} (${f2(best[1].value)})` : ''}.
          {full !== null &&
            ` Every layer at once (the full prefix patch, the mark on the legend): ${f2(full)}.`}
        </p>
      ) : (
        <p className="muted">
          {perLayerRunning
            ? 'Patching every prefix position of one layer at once, for the strongest layer…'
            : '“Per layer” below patches every prefix position of one layer at once: the clearest answer to which layer carries the effect.'}
        </p>
      )}
      {cell && (
        <p data-testid="strongest-position" data-position={cell.position}>
          <b>
            Strongest position: {cell.position} <code>{displayToken(cell.label)}</code>.
          </b>{' '}
          Patched alone, at {name(cell.layer)}, it restores {f2(cell.value)}
          {ofFull(cell.value) ? `: ${ofFull(cell.value)}` : ''}.
        </p>
      )}
      {top ? (
        summary.standsOut ? (
          <p>
            One position at a time, {name(top.layer)} restores the most on average ({f3(top.mean)} per
            position
            {next ? `; next ${name(next.layer)}, ${f3(next.mean)}` : ''}).
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
      <p className="muted">
        Colours are on a fixed scale: white = Finetuned’s first answer token (0), dark purple = fully back to
        Base’s (1){summary.negative ? ', orange = further from Base' : ''}; they are never stretched to fit
        this map.
      </p>
      {component === 'resid' && (
        <p className="muted">
          Row 0 is the token embeddings (the stream into layer 0), row n the stream into layer n; row “out” is
          the stream after the last layer: from prefix positions it cannot change the answer, so it stays at
          0.
        </p>
      )}
    </div>
  );
}
