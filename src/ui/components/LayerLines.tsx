// React wrapper around the d3 per-layer line chart (drift, restoration by layer); fits its container.
// Must never compute the plotted values.
import { useEffect, useRef } from 'react';
import { renderLayerLines, type LayerSeries } from '../charts/layer-lines';
import { useWidth } from '../hooks/useWidth';

interface Props {
  layers: number[];
  series: LayerSeries[];
  yLabel: string;
  yInclude?: number[];
  label: string;
  testId?: string;
}

export function LayerLines({ layers, series, yLabel, yInclude, label, testId }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const svg = useRef<SVGSVGElement>(null);
  const width = useWidth(box, 420);
  useEffect(() => {
    if (svg.current)
      renderLayerLines(svg.current, layers, series, { width: Math.max(260, width), yLabel, yInclude });
  }, [layers, series, yLabel, yInclude, width]);
  return (
    <div ref={box} className="chart-fit">
      <svg ref={svg} role="img" aria-label={label} data-testid={testId} />
    </div>
  );
}
