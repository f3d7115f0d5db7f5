// The logit lens as a grid: residual sites (rows) × conditions (columns), each cell the probability of
// one tracked token at one position, with that site's top-k for the hover and the click; and the CSV of
// the whole result. Pure: no DOM, no computation of a plotted value beyond picking it out.
import type { LensResult, LensToken } from '../../lab/spec/results';
import { csvRow } from '../export-results';

export interface LensCell {
  site: number;
  condition: string;
  /** probability of the tracked token; NaN where the condition failed */
  value: number;
  top: LensToken[];
}

export interface LensGrid {
  sites: number[];
  conditions: { id: string; label: string; error?: string }[];
  /** row-major [site][condition] */
  cells: LensCell[];
}

/** The cells for tracked token `m` at position index `pos` of every condition. */
export function lensGrid(r: LensResult, m: number, pos: number): LensGrid {
  const cells: LensCell[] = [];
  r.sites.forEach((site, i) => {
    for (const c of r.conditions) {
      const p = c.positions[Math.min(pos, c.positions.length - 1)];
      cells.push({
        site,
        condition: c.id,
        value: p ? (p.tracked[i]?.[m] ?? NaN) : NaN,
        top: p?.top[i] ?? [],
      });
    }
  });
  return {
    sites: r.sites,
    conditions: r.conditions.map((c) => ({
      id: c.id,
      label: c.label,
      ...(c.error ? { error: c.error } : {}),
    })),
    cells,
  };
}

/** White → blue by probability in [0, 1]; grey for NaN. */
export function probColour(p: number): string {
  if (!Number.isFinite(p)) return '#e6e6e6';
  const t = Math.max(0, Math.min(1, p));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 33)},${mix(255, 84)},${mix(255, 166)})`;
}

/** a token's text on one line: control characters escaped as in JSON (a newline token is `\n`) */
const esc = (t: string): string => JSON.stringify(t).slice(1, -1);

/** condition, position, next token, site, tracked token probabilities…, top-k tokens with probabilities */
export function lensToCsv(r: LensResult): string {
  const head = [
    'condition',
    'position',
    'token',
    'next',
    'site',
    ...r.tracked.map((t) => `p(${esc(t.text)}) [${t.role}]`),
    ...Array.from({ length: r.topK }, (_, i) => [`top${i + 1}`, `top${i + 1}_prob`]).flat(),
  ];
  const lines = [csvRow(head)];
  for (const c of r.conditions) {
    for (const p of c.positions) {
      r.sites.forEach((site, i) => {
        lines.push(
          csvRow([
            c.id,
            p.position,
            esc(p.label),
            esc(p.next?.text ?? ''),
            site,
            ...p.tracked[i],
            ...p.top[i].flatMap((t) => [esc(t.text), t.prob]),
          ]),
        );
      });
    }
  }
  return lines.join('\n') + '\n';
}
