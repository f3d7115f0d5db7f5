// d3 drawings for the evaluation panel: the misaligned rate per condition with bootstrap 95 % intervals
// and each condition's answer composition (why answers were excluded), and per-question small
// multiples. Clicking (or Enter on) a bar selects it. Rendering only: every text is set with .text(),
// never as HTML, and it must never fetch, store or compute results.
import * as d3 from 'd3';
import {
  barCaption,
  pct,
  STATUS_COLOR,
  STATUS_LABEL,
  STATUS_ORDER,
  type QuestionCell,
  type RateBar,
} from './eval-view';

const FONT = 'system-ui, -apple-system, "Segoe UI", sans-serif';
const CONDITION_COLORS = d3.schemeTableau10;

const conditionColor = (i: number): string => CONDITION_COLORS[i % CONDITION_COLORS.length];

function clickable<E extends Element, D>(
  sel: d3.Selection<E, D, SVGGElement, unknown>,
  label: (d: D) => string,
  onSelect: (d: D) => void,
) {
  sel
    .attr('role', 'button')
    .attr('tabindex', 0)
    .attr('aria-label', label)
    .style('cursor', 'pointer')
    .on('click', (_e, d) => onSelect(d))
    .on('keydown', (e: Event, d) => {
      const key = (e as KeyboardEvent).key;
      if (key === 'Enter' || key === ' ') {
        e.preventDefault();
        onSelect(d);
      }
    });
}

/** Shortens a label to fit `width` px at ~6 px per character. */
function fit(text: string, width: number): string {
  const max = Math.max(4, Math.floor(width / 6));
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export interface RateChartOptions {
  width: number;
  selected?: string | null;
  onSelect?: (condition: string) => void;
  title?: string;
}

/** Bars of the misaligned rate per condition, interval whiskers, and a composition strip below each. */
export function renderRateChart(
  svgEl: SVGSVGElement,
  bars: readonly RateBar[],
  opts: RateChartOptions,
): void {
  const margin = { top: 44, right: 16, bottom: 108, left: 48 };
  const plotH = 220;
  const width = Math.max(320, opts.width);
  const height = margin.top + plotH + margin.bottom;
  const innerW = width - margin.left - margin.right;
  const svg = d3.select(svgEl);
  svg.selectAll('*').remove();
  svg
    .attr('width', width)
    .attr('height', height)
    .attr('viewBox', `0 0 ${width} ${height}`)
    .attr('font-family', FONT)
    .attr('font-size', 11)
    .attr('role', 'img')
    .attr('aria-label', opts.title ?? 'misaligned rate by condition');
  if (opts.title)
    svg.append('text').attr('x', margin.left).attr('y', 16).attr('font-weight', 600).text(opts.title);

  const x = d3
    .scaleBand<string>()
    .domain(bars.map((b) => b.id))
    .range([0, innerW])
    .padding(0.3);
  const y = d3.scaleLinear().domain([0, 1]).range([plotH, 0]);
  const g = svg.append('g').attr('transform', `translate(${margin.left},${margin.top})`);
  g.append('g')
    .call(
      d3
        .axisLeft(y)
        .ticks(5)
        .tickFormat((v) => `${Math.round(Number(v) * 100)}%`),
    )
    .call((a) => a.select('.domain').attr('stroke', '#9aa1ab'));
  g.append('g')
    .selectAll('line')
    .data(y.ticks(5))
    .join('line')
    .attr('x1', 0)
    .attr('x2', innerW)
    .attr('y1', (d) => y(d))
    .attr('y2', (d) => y(d))
    .attr('stroke', '#eef0f3');
  g.append('text')
    .attr('transform', `translate(-36,${plotH / 2}) rotate(-90)`)
    .attr('text-anchor', 'middle')
    .attr('fill', '#5d6573')
    .text('misaligned (of scored answers)');

  const col = g
    .selectAll<SVGGElement, RateBar>('g.ev-bar')
    .data(bars)
    .join('g')
    .attr('class', 'ev-bar')
    .attr('data-condition', (d) => d.id)
    .attr('data-rate', (d) => (d.rate === null ? '' : String(d.rate)))
    .attr('transform', (d) => `translate(${x(d.id) ?? 0},0)`);
  if (opts.onSelect) {
    const onSelect = opts.onSelect;
    clickable(
      col,
      (d) => `${d.label}: ${barCaption(d)}. Show the answers.`,
      (d) => onSelect(d.id),
    );
  }
  const bw = x.bandwidth();
  // hit area: the whole column, so a 0 % or unscored bar can still be clicked
  col
    .append('rect')
    .attr('width', bw)
    .attr('height', plotH)
    .attr('fill', (d) => (d.id === opts.selected ? '#e7eef8' : 'transparent'));
  col
    .filter((d) => d.rate !== null)
    .append('rect')
    .attr('class', 'ev-rate')
    .attr('x', bw * 0.15)
    .attr('width', bw * 0.7)
    .attr('y', (d) => y(d.rate ?? 0))
    .attr('height', (d) => Math.max(1, plotH - y(d.rate ?? 0)))
    .attr('fill', (d) => (d.id === opts.selected ? '#8e2a20' : STATUS_COLOR.misaligned));
  const ci = col.filter((d) => d.ci !== null);
  ci.append('line')
    .attr('x1', bw / 2)
    .attr('x2', bw / 2)
    .attr('y1', (d) => y(d.ci![0]))
    .attr('y2', (d) => y(d.ci![1]))
    .attr('stroke', '#222')
    .attr('stroke-width', 1.4);
  for (const end of [0, 1] as const)
    ci.append('line')
      .attr('x1', bw * 0.35)
      .attr('x2', bw * 0.65)
      .attr('y1', (d) => y(d.ci![end]))
      .attr('y2', (d) => y(d.ci![end]))
      .attr('stroke', '#222')
      .attr('stroke-width', 1.4);
  col
    .append('text')
    .attr('x', bw / 2)
    .attr('y', (d) => (d.rate === null ? plotH - 8 : Math.min(y(d.ci?.[1] ?? d.rate), plotH - 14) - 6))
    .attr('text-anchor', 'middle')
    .attr('font-weight', 600)
    .attr('fill', (d) => (d.rate === null ? '#8a909a' : '#222'))
    .text((d) => (d.rate === null ? 'no rate' : pct(d.rate)));
  col.append('title').text(
    (d) =>
      `${d.label}\n${barCaption(d)}` +
      (d.ci ? `\n95 % interval ${pct(d.ci[0])} – ${pct(d.ci[1])}` : '') +
      `\n${STATUS_ORDER.filter((s) => d.counts[s])
        .map((s) => `${d.counts[s]} ${STATUS_LABEL[s]}`)
        .join('\n')}`,
  );

  // Labels and the composition strip (every answer by status) under the axis.
  const below = col.append('g').attr('transform', `translate(0,${plotH})`);
  below
    .append('text')
    .attr('x', bw / 2)
    .attr('y', 16)
    .attr('text-anchor', 'middle')
    .attr('font-weight', (d) => (d.id === opts.selected ? 700 : 400))
    .text((d) => fit(d.label, bw + x.step() * x.paddingInner()));
  below
    .append('text')
    .attr('x', bw / 2)
    .attr('y', 30)
    .attr('text-anchor', 'middle')
    .attr('fill', '#5d6573')
    .attr('font-size', 10)
    .text((d) => barCaption(d));
  below.each(function (d) {
    const strip = d3.select(this).append('g').attr('transform', 'translate(0,38)');
    let acc = 0;
    for (const s of STATUS_ORDER) {
      const n = d.counts[s];
      if (!n || !d.rows) continue;
      strip
        .append('rect')
        .attr('x', (acc / d.rows) * bw)
        .attr('width', (n / d.rows) * bw)
        .attr('height', 10)
        .attr('fill', STATUS_COLOR[s])
        .append('title')
        .text(`${n} ${STATUS_LABEL[s]}`);
      acc += n;
    }
    if (!d.rows) strip.append('rect').attr('width', bw).attr('height', 10).attr('fill', '#f1f2f4');
  });

  // Legend of the composition colours.
  const legend = svg.append('g').attr('transform', `translate(${margin.left},${margin.top + plotH + 62})`);
  let lx = 0;
  let ly = 0;
  for (const s of STATUS_ORDER) {
    const label = STATUS_LABEL[s];
    const w = 16 + label.length * 5.6;
    if (lx + w > innerW) {
      lx = 0;
      ly += 15;
    }
    const item = legend.append('g').attr('transform', `translate(${lx},${ly})`);
    item.append('rect').attr('width', 9).attr('height', 9).attr('fill', STATUS_COLOR[s]);
    item
      .append('text')
      .attr('x', 13)
      .attr('y', 8.5)
      .attr('font-size', 10)
      .attr('fill', '#5d6573')
      .text(label);
    lx += w + 10;
  }
}

export interface MultiplesOptions {
  width: number;
  selected?: { condition: string; question?: string } | null;
  onSelect?: (condition: string, question: string) => void;
}

/** One small panel per question, one bar per condition (colour = condition), whiskers = 95 % interval. */
export function renderQuestionMultiples(
  svgEl: SVGSVGElement,
  cells: readonly QuestionCell[],
  conditions: readonly { id: string; label: string }[],
  opts: MultiplesOptions,
): void {
  const width = Math.max(320, opts.width);
  const legendH = 18 * Math.ceil(conditions.length / Math.max(1, Math.floor(width / 220)));
  const cellW = 170;
  const cols = Math.max(1, Math.floor(width / cellW));
  const w = width / cols;
  const cellH = 130;
  const pad = { top: 30, right: 8, bottom: 10, left: 30 };
  const rows = Math.ceil(cells.length / cols);
  const height = legendH + 8 + rows * cellH;
  const svg = d3.select(svgEl);
  svg.selectAll('*').remove();
  svg
    .attr('width', width)
    .attr('height', height)
    .attr('viewBox', `0 0 ${width} ${height}`)
    .attr('font-family', FONT)
    .attr('font-size', 10)
    .attr('role', 'img')
    .attr('aria-label', 'misaligned rate per question and condition');

  const perRow = Math.max(1, Math.floor(width / 220));
  const legend = svg.append('g');
  conditions.forEach((c, i) => {
    const item = legend
      .append('g')
      .attr('transform', `translate(${(i % perRow) * 220},${Math.floor(i / perRow) * 18})`);
    item.append('rect').attr('width', 10).attr('height', 10).attr('y', 2).attr('fill', conditionColor(i));
    item.append('text').attr('x', 14).attr('y', 11).text(fit(c.label, 200));
  });

  const y = d3
    .scaleLinear()
    .domain([0, 1])
    .range([cellH - pad.top - pad.bottom, 0]);
  const innerH = cellH - pad.top - pad.bottom;
  const panel = svg
    .selectAll<SVGGElement, QuestionCell>('g.ev-cell')
    .data(cells)
    .join('g')
    .attr('class', 'ev-cell')
    .attr('data-question', (d) => d.question)
    .attr(
      'transform',
      (_d, i) => `translate(${(i % cols) * w},${legendH + 8 + Math.floor(i / cols) * cellH})`,
    );
  panel
    .append('text')
    .attr('x', pad.left)
    .attr('y', 14)
    .attr('font-weight', 600)
    .text((d) => fit(d.question, w - pad.left))
    .append('title')
    .text((d) => d.text);
  const inner = panel.append('g').attr('transform', `translate(${pad.left},${pad.top})`);
  inner.each(function () {
    d3.select(this)
      .append('g')
      .call(
        d3
          .axisLeft(y)
          .ticks(2)
          .tickFormat((v) => `${Math.round(Number(v) * 100)}`),
      )
      .call((a) => a.select('.domain').attr('stroke', '#c3c8cf'));
  });
  const iw = w - pad.left - pad.right;
  const x = d3
    .scaleBand<number>()
    .domain(conditions.map((_c, i) => i))
    .range([0, iw])
    .padding(0.2);
  inner.each(function (cell) {
    const g = d3.select(this);
    g.append('line')
      .attr('x1', 0)
      .attr('x2', iw)
      .attr('y1', innerH)
      .attr('y2', innerH)
      .attr('stroke', '#c3c8cf');
    const b = g
      .selectAll<SVGGElement, RateBar>('g.ev-mbar')
      .data(cell.bars)
      .join('g')
      .attr('class', 'ev-mbar')
      .attr('data-condition', (d) => d.id)
      .attr('transform', (_d, i) => `translate(${x(i) ?? 0},0)`);
    if (opts.onSelect) {
      const onSelect = opts.onSelect;
      clickable(
        b,
        (d) => `${d.label} on ${cell.question}: ${barCaption(d)}. Show the answers.`,
        (d) => onSelect(d.id, cell.question),
      );
    }
    const bw = x.bandwidth();
    const sel = (d: RateBar) => opts.selected?.condition === d.id && opts.selected.question === cell.question;
    b.append('rect')
      .attr('width', bw)
      .attr('height', innerH)
      .attr('fill', (d) => (sel(d) ? '#e7eef8' : 'transparent'));
    b.filter((d) => d.rate !== null)
      .append('rect')
      .attr('y', (d) => y(d.rate ?? 0))
      .attr('width', bw)
      .attr('height', (d) => Math.max(1, innerH - y(d.rate ?? 0)))
      .attr('fill', (d) => conditionColor(cell.bars.findIndex((c) => c.id === d.id)))
      .attr('stroke', (d) => (sel(d) ? '#222' : 'none'));
    b.filter((d) => d.rate === null)
      .append('text')
      .attr('x', bw / 2)
      .attr('y', innerH - 3)
      .attr('text-anchor', 'middle')
      .attr('fill', '#9aa1ab')
      .text('–');
    b.filter((d) => d.ci !== null)
      .append('line')
      .attr('x1', bw / 2)
      .attr('x2', bw / 2)
      .attr('y1', (d) => y(d.ci![0]))
      .attr('y2', (d) => y(d.ci![1]))
      .attr('stroke', '#222');
    b.append('title').text((d) => `${d.label} · ${cell.question}\n${barCaption(d)}`);
  });
}
