// Turns lab results into files a person can keep: results JSON, per-condition CSV, sweep-grid CSV.
// Pure functions returning strings; must never touch the DOM (save-file.ts saves them) or include
// anything but results and the spec they came from (no keys, no tokens of credentials).
import type { ConditionResult, DriftResult, PromptView, SweepResult } from '../lab/spec/results';
import type { RunOrigin } from '../lab/export/results-file';

/** One CSV field: quoted when needed; text that a spreadsheet would run as a formula is defused. */
export function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  let s = v;
  // NOTE: =, +, -, @ (and tab/CR) at the start make Excel/Sheets evaluate the cell (CSV injection).
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(fields: readonly (string | number | boolean | null | undefined)[]): string {
  return fields.map(csvField).join(',');
}

export const CONDITION_COLUMNS = [
  'id',
  'label',
  'model',
  'done',
  'kl_to_base',
  'restoration',
  'reference_margin',
  'trials_best',
  'trials_avg',
  'patch',
  'prompt_tokens',
  'edited_tokens',
  'answer_tokens',
  'answer',
  'top_next_token',
  'top_next_prob',
  'error',
] as const;

/** One row per condition, in the given order (the spec's order). */
export function conditionsToCsv(results: readonly ConditionResult[]): string {
  const lines = [CONDITION_COLUMNS.join(',')];
  for (const r of results) {
    const top = r.nextToken[0];
    lines.push(
      csvRow([
        r.id,
        r.label,
        r.model,
        r.done,
        r.metrics.klToBase,
        r.metrics.restoration,
        r.metrics.referenceMargin,
        r.metrics.trialsBest,
        r.metrics.trialsAvg,
        r.patchSummary,
        r.prompt.tokens.length,
        r.prompt.tokens.filter((t) => t.edited).length,
        r.tokenIds.length,
        r.text,
        top?.text,
        top?.prob,
        r.error,
      ]),
    );
  }
  return lines.join('\n') + '\n';
}

/** The sweep grid in long form: one row per layer × position cell. */
export function sweepToCsv(sweep: SweepResult): string {
  const lines = [csvRow(['component', 'metric', 'layer', 'position', 'token', 'value'])];
  sweep.layers.forEach((layer, li) => {
    sweep.positions.forEach((pos, pi) => {
      const v = sweep.values[li * sweep.positions.length + pi];
      lines.push(csvRow([sweep.component, sweep.metric, layer, pos, sweep.positionLabels[pi], v]));
    });
  });
  return lines.join('\n') + '\n';
}

/** Prefix drift per layer: layer, L_K, L_V. */
export function driftToCsv(drift: DriftResult): string {
  // the paper-code proxy (k_proj / v_proj before the input norm) as two more columns when present
  const c = drift.code;
  const lines = [csvRow(['layer', 'l_k', 'l_v', ...(c ? ['l_k_paper_code', 'l_v_paper_code'] : [])])];
  drift.layers.forEach((layer, i) =>
    lines.push(csvRow([layer, drift.lk[i], drift.lv[i], ...(c ? [c.lk[i], c.lv[i]] : [])])),
  );
  return lines.join('\n') + '\n';
}

export interface ResultsDocument {
  kind: 'piggyback-lab/results';
  /** the spec the results came from, as it was when they were computed */
  spec: unknown;
  backend: string | null;
  prompt: PromptView | null;
  conditions: ConditionResult[];
  sweeps: SweepResult[];
  drift: DriftResult | null;
  /** where it ran (lab/export/results-file.ts), so an imported copy says so */
  ranOn?: RunOrigin;
}

/** Results JSON; NaN (not computed) becomes null so the file is valid JSON. */
export function resultsToJson(doc: ResultsDocument): string {
  return JSON.stringify(
    doc,
    (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  );
}
