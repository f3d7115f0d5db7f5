// Draws a small horizontal bar chart of the next-token distribution (top-k tokens and probabilities)
// with d3. Rendering only; token texts are set with .text(), never as HTML.
import * as d3 from 'd3';
import type { TokenProb } from '../../lab/spec/results';
import { tickLabel } from '../format';

export function renderNextTokenBars(
  svgEl: SVGSVGElement,
  tokens: readonly TokenProb[],
  width: number,
  highlight?: number,
): void {
  const rows = tokens.slice(0, 6);
  const rowH = 15;
  const margin = { top: 2, right: 38, bottom: 2, left: 72 };
  const height = margin.top + margin.bottom + rowH * Math.max(rows.length, 1);
  const svg = d3.select(svgEl);
  svg.selectAll('*').remove();
  svg
    .attr('width', width)
    .attr('height', height)
    .attr('viewBox', `0 0 ${width} ${height}`)
    .attr('font-family', 'system-ui, sans-serif')
    .attr('font-size', 10);
  const x = d3
    .scaleLinear()
    .domain([0, 1])
    .range([0, Math.max(10, width - margin.left - margin.right)]);
  const g = svg.append('g').attr('transform', `translate(${margin.left},${margin.top})`);
  const row = g
    .selectAll('g.row')
    .data(rows)
    .join('g')
    .attr('class', 'row')
    .attr('transform', (_d, i) => `translate(0,${i * rowH})`);
  row
    .append('rect')
    .attr('width', x(1))
    .attr('height', rowH - 3)
    .attr('fill', '#eef0f4');
  row
    .append('rect')
    .attr('width', (d) => x(Math.max(0, Math.min(1, d.prob))))
    .attr('height', rowH - 3)
    .attr('fill', (d) => (d.id === highlight ? '#3b6fb6' : '#7a9cc6'));
  row
    .append('text')
    .attr('x', -4)
    .attr('y', (rowH - 3) / 2)
    .attr('dy', '0.35em')
    .attr('text-anchor', 'end')
    .attr('fill', '#333')
    .text((d) => tickLabel(d.text, 12));
  row
    .append('text')
    .attr('x', x(1) + 4)
    .attr('y', (rowH - 3) / 2)
    .attr('dy', '0.35em')
    .attr('fill', '#555')
    .text((d) => d3.format('.0%')(d.prob));
}
