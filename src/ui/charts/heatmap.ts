// Draws the layer × position patching heatmap into an <svg> with d3: one <rect> per cell (NaN cells
// included, grey), layer numbers on the left (the layer the map points to marked), token texts below
// (coloured by segment), a colour legend.
// Rendering only: it must never decide what a cell means or start a computation (callbacks do that).
import * as d3 from 'd3';
import type { SegmentName } from '../../lab/spec/experiment';
import { tickLabel } from '../format';
import { cellColour, heatmapLayout, MEAN_COLUMN } from './scales';

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
  const { colour, domain, diverging } = cellColour(data.values);
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

  // Legend: a vertical gradient with its domain.
  const lh = Math.max(40, Math.min(140, nL * cellH));
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
  const lx = margin.left + nP * cellW + (data.rowMeans ? MEAN_COLUMN : 0) + 18;
  const gradId = `hm-grad-${Math.random().toString(36).slice(2, 8)}`;
  const grad = svg
    .append('defs')
    .append('linearGradient')
    .attr('id', gradId)
    .attr('x1', 0)
    .attr('x2', 0)
    .attr('y1', 1)
    .attr('y2', 0);
  const stops = d3.range(0, 1.0001, 0.1);
  grad
    .selectAll('stop')
    .data(stops)
    .join('stop')
    .attr('offset', (t) => `${t * 100}%`)
    .attr('stop-color', (t) => colour(domain[0] + t * (domain[1] - domain[0])));
  const legend = svg.append('g').attr('class', 'legend').attr('transform', `translate(${lx},${margin.top})`);
  legend
    .append('rect')
    .attr('width', 10)
    .attr('height', lh)
    .attr('fill', `url(#${gradId})`)
    .attr('stroke', '#bbb');
  const ls = d3.scaleLinear().domain(domain).range([lh, 0]);
  const ticks = diverging ? [domain[0], 0, domain[1]] : [domain[0], domain[1]];
  legend
    .selectAll('text.tick')
    .data(ticks)
    .join('text')
    .attr('class', 'tick')
    .attr('x', 14)
    .attr('y', (t) => ls(t))
    .attr('dy', '0.35em')
    .attr('fill', '#333')
    .text((t) => d3.format('.2~f')(t));
  legend
    .append('text')
    .attr('x', 0)
    .attr('y', lh + 14)
    .attr('fill', '#555')
    .text(data.metric.split(' of ')[0]);
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
