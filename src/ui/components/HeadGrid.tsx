// A layer × head grid drawn with the shared heatmap renderer (charts/heatmap.ts, the patching heatmap's),
// with its own read-out: "layer l · head h · value". Used by the attention-mass and per-head views.
// Must never compute the values it draws.
import { useEffect, useRef, useState } from 'react';
import { renderHeatmap, type HeatmapCell, type HeatmapData } from '../charts/heatmap';
import { formatMetric } from '../format';
import { useWidth } from '../hooks/useWidth';

interface Props {
  data: HeatmapData;
  /** what a column is, in the read-out: "head" or "KV head" */
  columnName: string;
  testId: string;
  label: string;
  onCellClick?: (cell: HeatmapCell) => void;
  /** read-out tail for a clickable cell */
  clickHint?: string;
}

export function HeadGrid({ data, columnName, testId, label, onCellClick, clickHint }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const svg = useRef<SVGSVGElement>(null);
  const width = useWidth(box, 600);
  const [hover, setHover] = useState<HeatmapCell | null>(null);
  // NOTE: a few heads would stretch to the panel's width; keep the cells near square
  const w = Math.max(320, Math.min(width, 200 + data.positions.length * 40));
  useEffect(() => {
    if (!svg.current) return;
    renderHeatmap(svg.current, data, { width: w, onHover: setHover, onClick: onCellClick });
  }, [data, w, onCellClick]);
  return (
    <div className="heatmap">
      <div ref={box} className="chart-scroll">
        <svg ref={svg} data-testid={testId} role="img" aria-label={label} />
      </div>
      <p className="readout small" aria-live="polite" data-testid={`${testId}-readout`}>
        {hover ? (
          <>
            layer <b>{hover.layer}</b> · {columnName} <b>{hover.position}</b> · {data.metric}{' '}
            <b>{formatMetric(hover.value)}</b>
            {onCellClick && clickHint && <span className="muted"> — {clickHint}</span>}
          </>
        ) : (
          <span className="muted">Hover a cell to read its value.</span>
        )}
      </p>
    </div>
  );
}
