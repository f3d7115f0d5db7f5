// Draws per-layer line charts with d3 (prefix drift L_K / L_V per layer; restoration by layer): one
// line and dots per series, layer numbers on x, a legend. Rendering only; never computes the values.
import * as d3 from 'd3';

export interface LayerSeries {
  name: string;
  colour: string;
  /** one value per entry of `layers`; NaN leaves a gap */
  values: number[];
  dashed?: boolean;
}

export interface LayerLinesOptions {
  width: number;
  height?: number;
  yLabel: string;
  /** force the y domain to include these values (e.g. 0 and 1 for restoration) */
  yInclude?: number[];
}

export function renderLayerLines(
  svgEl: SVGSVGElement,
  layers: readonly number[],
  series: readonly LayerSeries[],
  opts: LayerLinesOptions,
): void {
  const width = opts.width;
  const margin = { top: 22, right: 16, bottom: 34, left: 52 };
  // NOTE: the legend wraps onto more rows when the chart is narrow (a phone); each extra row adds to
  // the top margin and to the height, so the plot area keeps its size and no name runs off the SVG.
  const legendRows = layoutLegend(
    series.map((s) => s.name),
    width - margin.left - 6 - margin.right,
  );
  const extra = (legendRows.length ? legendRows[legendRows.length - 1].row : 0) * LEGEND_ROW;
  margin.top += extra;
  const height = (opts.height ?? 200) + extra;
  const svg = d3.select(svgEl);
  svg.selectAll('*').remove();
  svg
    .attr('width', width)
    .attr('height', height)
    .attr('viewBox', `0 0 ${width} ${height}`)
    .attr('font-family', 'system-ui, sans-serif')
    .attr('font-size', 10);
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const lo = d3.min([...all, ...(opts.yInclude ?? [])]) ?? 0;
  const hi = d3.max([...all, ...(opts.yInclude ?? [])]) ?? 1;
  const x = d3
    .scalePoint<number>()
    .domain([...layers])
    .range([margin.left, width - margin.right])
    .padding(0.3);
  const y = d3
    .scaleLinear()
    .domain(lo === hi ? [lo - 1, hi + 1] : [lo, hi])
    .nice()
    .range([height - margin.bottom, margin.top]);

  const every = Math.ceil(layers.length / Math.max(1, Math.floor((width - 70) / 22)));
  svg
    .append('g')
    .attr('transform', `translate(0,${height - margin.bottom})`)
    .call(d3.axisBottom(x).tickValues(layers.filter((_l, i) => i % every === 0)))
    .call((g) => g.selectAll('text').attr('fill', '#333'));
  svg
    .append('text')
    .attr('x', (margin.left + width - margin.right) / 2)
    .attr('y', height - 4)
    .attr('text-anchor', 'middle')
    .attr('fill', '#555')
    .text('layer');
  svg
    .append('g')
    .attr('transform', `translate(${margin.left},0)`)
    .call(d3.axisLeft(y).ticks(5, '.2~g'))
    .call((g) => g.selectAll('text').attr('fill', '#333'));
  svg
    .append('text')
    .attr('transform', `translate(12,${(margin.top + height - margin.bottom) / 2}) rotate(-90)`)
    .attr('text-anchor', 'middle')
    .attr('fill', '#555')
    .text(opts.yLabel);

  for (const s of series) {
    const pts = layers.map((l, i) => ({ l, v: s.values[i] }));
    const line = d3
      .line<{ l: number; v: number }>()
      .defined((d) => Number.isFinite(d.v))
      .x((d) => x(d.l) ?? 0)
      .y((d) => y(d.v));
    svg
      .append('path')
      .attr('d', line(pts))
      .attr('fill', 'none')
      .attr('stroke', s.colour)
      .attr('stroke-width', 1.8)
      .attr('stroke-dasharray', s.dashed ? '4 3' : null);
    svg
      .append('g')
      .selectAll('circle')
      .data(pts.filter((d) => Number.isFinite(d.v)))
      .join('circle')
      .attr('cx', (d) => x(d.l) ?? 0)
      .attr('cy', (d) => y(d.v))
      .attr('r', 2.5)
      .attr('fill', s.colour)
      .append('title')
      .text((d) => `${s.name} · layer ${d.l}: ${d3.format('.4~g')(d.v)}`);
  }
  const legend = svg.append('g').attr('transform', `translate(${margin.left + 6},8)`);
  for (const [i, s] of series.entries()) {
    const { x: lx, row } = legendRows[i];
    const g = legend.append('g').attr('transform', `translate(${lx},${row * LEGEND_ROW})`);
    g.append('line')
      .attr('x1', 0)
      .attr('x2', 14)
      .attr('y1', 0)
      .attr('y2', 0)
      .attr('stroke', s.colour)
      .attr('stroke-width', 2)
      .attr('stroke-dasharray', s.dashed ? '4 3' : null);
    g.append('text').attr('x', 18).attr('dy', '0.35em').attr('fill', '#333').text(s.name);
  }
}

const LEGEND_ROW = 14;
/** an entry's width: the line's 18 px, the name at about 6 px a character (10 px font), 12 px gap */
const legendWidth = (name: string): number => 30 + name.length * 6;

/**
 * Places legend entries left to right, starting a new row when the next one would pass `maxWidth` (an
 * entry wider than a whole row gets a row of its own). Pure; exported for tests.
 */
export function layoutLegend(names: readonly string[], maxWidth: number): { x: number; row: number }[] {
  const out: { x: number; row: number }[] = [];
  let x = 0;
  let row = 0;
  for (const name of names) {
    const w = legendWidth(name);
    if (x > 0 && x + w - 12 > maxWidth) {
      row += 1;
      x = 0;
    }
    out.push({ x, row });
    x += w;
  }
  return out;
}
