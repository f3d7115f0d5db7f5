// Draws the layer × position patching heatmap into an <svg> with d3: one <rect> per cell (NaN cells
// included, grey), layer numbers on the left (the layer the map points to marked), token texts below
// (coloured by segment), and under them the colour legend on its fixed restoration scale (−1 … 1, never
// fitted to the data) with the full-prefix patch marked on it as the reference.
// Rendering only: it must never decide what a cell means or start a computation (callbacks do that).
import * as d3 from 'd3';
import type { SegmentName } from '../../lab/spec/experiment';
import { tickLabel } from '../format';
import { heatmapLayout, LABEL_BAND, LEGEND_WIDTH, legendOffset, restorationColour } from './scales';

export interface HeatmapData {
  layers: number[];
  positions: number[];
  positionLabels: string[];
  /** segment of each column, for the coloured band under the axis */
  segments?: (SegmentName | undefined)[];
  /** row-major layers × positions */
  values: number[];
  metric: string;
  /** tick text per row (default the layer number), e.g. "out" for the residual after the last layer */
  rowLabels?: string[];
  /** the row axis title (default "layer") */
  rowTitle?: string;
  /** a row to mark as the one the map points to (bold tick, dashed outline) */
  highlightRow?: number | null;
  /** per-row means of the finite cells, written right of the grid (a plain summary, labelled "mean") */
  rowMeans?: number[];
  /** the full-prefix patch of the same component, marked on the legend (null: not computed yet) */
  reference?: { value: number; label: string } | null;
  /** one line under the legend saying what the rows are (e.g. a residual map's sites) */
  rowKey?: string;
}

export interface HeatmapCell {
  row: number;
  col: number;
  layer: number;
  position: number;
  label: string;
  value: number;
}

export interface HeatmapOptions {
  width: number;
  /** the keyboard / click focus, outlined */
  focus?: { row: number; col: number } | null;
  onHover?: (cell: HeatmapCell | null) => void;
  onClick?: (cell: HeatmapCell) => void;
}

const SEGMENT_FILL: Record<SegmentName, string> = { prefix: '#f4c95d', query: '#7fb3f5', postfix: '#a8d5a2' };

export function cellAt(data: HeatmapData, row: number, col: number): HeatmapCell {
  return {
    row,
    col,
    layer: data.layers[row],
    position: data.positions[col],
    label: data.positionLabels[col] ?? String(data.positions[col]),
    value: data.values[row * data.positions.length + col],
  };
}

export function renderHeatmap(svgEl: SVGSVGElement, data: HeatmapData, opts: HeatmapOptions): void {
  const nL = data.layers.length;
  const nP = data.positions.length;
  const layout = heatmapLayout(nL, nP, opts.width);
  const { margin, cellW, cellH } = layout;
  const { colour, domain } = restorationColour();
  const svg = d3.select(svgEl);
  svg.selectAll('*').remove();
  svg
    .attr('width', layout.width)
    .attr('height', layout.height)
    .attr('viewBox', `0 0 ${layout.width} ${layout.height}`)
    .attr('font-family', 'system-ui, sans-serif')
    .attr('font-size', 10);

  const grid = svg
    .append('g')
    .attr('class', 'cells')
    .attr('transform', `translate(${margin.left},${margin.top})`);
  const cells: HeatmapCell[] = [];
  for (let r = 0; r < nL; r++) for (let c = 0; c < nP; c++) cells.push(cellAt(data, r, c));

  grid
    .selectAll('rect.cell')
    .data(cells)
    .join('rect')
    .attr('class', 'cell')
    .attr('x', (d) => d.col * cellW)
    .attr('y', (d) => d.row * cellH)
    .attr('width', Math.max(1, cellW - 1))
    .attr('height', Math.max(1, cellH - 1))
    .attr('fill', (d) => colour(d.value))
    .attr('data-layer', (d) => d.layer)
    .attr('data-position', (d) => d.position)
    .attr('data-value', (d) => (Number.isFinite(d.value) ? d.value.toFixed(4) : 'NaN'))
    .style('cursor', opts.onClick ? 'pointer' : 'default')
    .on('mouseenter', (_e, d) => opts.onHover?.(d))
    .on('mouseleave', () => opts.onHover?.(null))
    .on('click', (_e, d) => opts.onClick?.(d));

  const hl = data.highlightRow;
  if (hl !== undefined && hl !== null && hl >= 0 && hl < nL) {
    grid
      .append('rect')
      .attr('class', 'top-layer')
      .attr('x', -2)
      .attr('y', hl * cellH - 2)
      .attr('width', nP * cellW + 3)
      .attr('height', cellH + 3)
      .attr('fill', 'none')
      .attr('stroke', '#2f5f9e')
      .attr('stroke-width', 1.5)
      .attr('stroke-dasharray', '4 2')
      .attr('pointer-events', 'none');
  }
  grid.append('rect').attr('class', 'focus').attr('fill', 'none').attr('pointer-events', 'none');
  drawHeatmapFocus(svgEl, data, opts.width, opts.focus ?? null);

  // Layer axis: every layer when rows are tall enough, else every other.
  const step = cellH >= 12 ? 1 : 2;
  svg
    .append('g')
    .attr('class', 'y-axis')
    .attr('transform', `translate(${margin.left - 4},${margin.top})`)
    .selectAll('text')
    .data(data.layers.map((l, i) => ({ l, i })).filter((d) => d.i % step === 0 || d.i === hl))
    .join('text')
    .attr('x', 0)
    .attr('y', (d) => d.i * cellH + cellH / 2)
    .attr('dy', '0.35em')
    .attr('text-anchor', 'end')
    .attr('fill', (d) => (d.i === hl ? '#2f5f9e' : '#333'))
    .attr('font-weight', (d) => (d.i === hl ? 700 : null))
    .text((d) => data.rowLabels?.[d.i] ?? d.l);
  svg
    .append('text')
    .attr('transform', `translate(11,${margin.top + (nL * cellH) / 2}) rotate(-90)`)
    .attr('text-anchor', 'middle')
    .attr('fill', '#555')
    .text(data.rowTitle ?? 'layer');

  // Segment band and token labels under the grid.
  const xAxis = svg
    .append('g')
    .attr('class', 'x-axis')
    .attr('transform', `translate(${margin.left},${margin.top + nL * cellH})`);
  if (data.segments) {
    xAxis
      .selectAll('rect.seg')
      .data(data.segments.map((s, i) => ({ s, i })))
      .join('rect')
      .attr('class', 'seg')
      .attr('x', (d) => d.i * cellW)
      .attr('y', 2)
      .attr('width', Math.max(1, cellW - 1))
      .attr('height', 4)
      .attr('fill', (d) => (d.s ? SEGMENT_FILL[d.s] : '#ccc'));
  }
  const labelEvery = cellW >= 11 ? 1 : Math.ceil(11 / cellW);
  xAxis
    .selectAll('text')
    .data(data.positionLabels.map((t, i) => ({ t, i })).filter((d) => d.i % labelEvery === 0))
    .join('text')
    .attr('transform', (d) => `translate(${d.i * cellW + cellW / 2},10) rotate(-55)`)
    .attr('text-anchor', 'end')
    .attr('dy', '0.35em')
    .attr('fill', '#333')
    .text((d) => tickLabel(d.t, 11));

  // Row means right of the grid, in the column the layout reserves for them.
  if (data.rowMeans) {
    const means = svg
      .append('g')
      .attr('class', 'row-means')
      .attr('transform', `translate(${margin.left + nP * cellW + 4},${margin.top})`);
    means.append('text').attr('y', -3).attr('fill', '#555').text('mean');
    means
      .selectAll('text.row-mean')
      .data(data.rowMeans.map((v, i) => ({ v, i })))
      .join('text')
      .attr('class', 'row-mean')
      .attr('y', (d) => d.i * cellH + cellH / 2)
      .attr('dy', '0.35em')
      .attr('fill', (d) => (d.i === hl ? '#2f5f9e' : '#333'))
      .attr('font-weight', (d) => (d.i === hl ? 700 : null))
      .text((d) => (Number.isFinite(d.v) ? d3.format('.3f')(d.v) : '–'));
  }
  drawLegend(svg, data, colour, domain, margin.left, margin.top + nL * cellH + LABEL_BAND);
}

type Svg = d3.Selection<SVGSVGElement, unknown, null, undefined>;

/**
 * The colour legend: a horizontal bar over the fixed domain with 0 = Finetuned and 1 = Base, the
 * reference (full-prefix patch) as a dark tick with its value above the bar, then the metric and the row
 * key. `data-domain` carries the domain so tests can see it does not follow the data.
 */
function drawLegend(
  svg: Svg,
  data: HeatmapData,
  colour: (v: number) => string,
  domain: [number, number],
  x: number,
  y: number,
): void {
  const legend = svg
    .append('g')
    .attr('class', 'legend')
    .attr('data-testid', 'heatmap-legend')
    .attr('data-domain', domain.join(','))
    .attr('transform', `translate(${x},${y})`);
  const gradId = `hm-grad-${Math.random().toString(36).slice(2, 8)}`;
  legend
    .append('defs')
    .append('linearGradient')
    .attr('id', gradId)
    .selectAll('stop')
    .data(d3.range(0, 1.0001, 0.05))
    .join('stop')
    .attr('offset', (t) => `${t * 100}%`)
    .attr('stop-color', (t) => colour(domain[0] + t * (domain[1] - domain[0])));
  const barY = 14;
  legend
    .append('rect')
    .attr('y', barY)
    .attr('width', LEGEND_WIDTH)
    .attr('height', 10)
    .attr('fill', `url(#${gradId})`)
    .attr('stroke', '#bbb');
  // NOTE: other maps share this renderer (attention Δ prefix mass, also within −1 … 1): only a
  // restoration map's ends mean Finetuned and Base
  const restoration = data.metric.startsWith('restoration');
  const ticks: { v: number; text: string; anchor: string }[] = [
    { v: domain[0], text: d3.format('.0f')(domain[0]).replace('-', '−'), anchor: 'start' },
    { v: 0, text: restoration ? '0 = Finetuned' : '0', anchor: 'middle' },
    { v: domain[1], text: `${d3.format('.0f')(domain[1])}${restoration ? ' = Base' : ''}`, anchor: 'end' },
  ];
  legend
    .selectAll('text.tick')
    .data(ticks)
    .join('text')
    .attr('class', 'tick')
    .attr('x', (t) => legendOffset(t.v, domain, LEGEND_WIDTH))
    .attr('y', barY + 22)
    .attr('text-anchor', (t) => t.anchor)
    .attr('fill', '#333')
    .text((t) => t.text);
  const ref = data.reference;
  if (ref && Number.isFinite(ref.value)) {
    const rx = legendOffset(ref.value, domain, LEGEND_WIDTH);
    const g = legend
      .append('g')
      .attr('class', 'reference')
      .attr('data-testid', 'heatmap-reference')
      .attr('data-value', ref.value.toFixed(4));
    g.append('line')
      .attr('x1', rx)
      .attr('x2', rx)
      .attr('y1', barY - 3)
      .attr('y2', barY + 13)
      .attr('stroke', '#1d2330')
      .attr('stroke-width', 2);
    g.append('text')
      .attr('x', rx)
      .attr('y', barY - 5)
      .attr('text-anchor', rx > LEGEND_WIDTH / 2 ? 'end' : 'start')
      .attr('fill', '#1d2330')
      .attr('font-weight', 600)
      .text(`${ref.label}: ${d3.format('.2f')(ref.value)}`);
  }
  legend
    .append('text')
    .attr('y', barY + 36)
    .attr('fill', '#555')
    .text(data.metric.replace(/ of KL\(base ‖ patched\)/, ''));
  if (data.rowKey)
    legend
      .append('text')
      .attr('class', 'row-key')
      .attr('y', barY + 49)
      .attr('fill', '#555')
      .text(data.rowKey);
}

/**
 * Moves the focus outline without redrawing the cells. NOTE: redrawing on focus would replace the cell
 * under the pointer between mousedown and mouseup, and the browser would then drop the click.
 */
export function drawHeatmapFocus(
  svgEl: SVGSVGElement,
  data: HeatmapData,
  width: number,
  focus: { row: number; col: number } | null,
): void {
  const { cellW, cellH } = heatmapLayout(data.layers.length, data.positions.length, width);
  const rect = d3.select(svgEl).select<SVGRectElement>('rect.focus');
  if (!focus || focus.row >= data.layers.length || focus.col >= data.positions.length) {
    rect.attr('visibility', 'hidden');
    return;
  }
  rect
    .attr('visibility', 'visible')
    .attr('x', focus.col * cellW - 1)
    .attr('y', focus.row * cellH - 1)
    .attr('width', cellW + 1)
    .attr('height', cellH + 1)
    .attr('stroke', '#1d2330')
    .attr('stroke-width', 2);
}
