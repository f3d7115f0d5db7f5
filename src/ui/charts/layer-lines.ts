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
  const height = opts.height ?? 200;
  const margin = { top: 22, right: 16, bottom: 34, left: 52 };
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
  let lx = 0;
  for (const s of series) {
    const g = legend.append('g').attr('transform', `translate(${lx},0)`);
    g.append('line')
      .attr('x1', 0)
      .attr('x2', 14)
      .attr('y1', 0)
      .attr('y2', 0)
      .attr('stroke', s.colour)
      .attr('stroke-width', 2)
      .attr('stroke-dasharray', s.dashed ? '4 3' : null);
    g.append('text').attr('x', 18).attr('dy', '0.35em').attr('fill', '#333').text(s.name);
    lx += 30 + s.name.length * 6;
  }
}
