// Results of one spec from two places (the browser and an exported script, two GPUs, fp32 and bf16),
// condition by condition: the same answer ids, or where they first differ (position and both tokens),
// the same prompt ids (a perturbed condition's shown trial), the same trial answers, and how far the
// first-token KL moved. Pure: it must never read files; it only compares what it is handed.

import type { ConditionResult } from '../spec/results';
import { originText, type ResultsFile } from './results-file';

/** A token of an answer (results hold answer ids, not per-token text). */
export interface TokenAt {
  id: number;
}

export interface ConditionComparison {
  id: string;
  label: string;
  /** present in a and in b */
  inA: boolean;
  inB: boolean;
  /** both present, no error in either, the same answer ids */
  sameAnswer: boolean;
  /** the first answer position where the ids differ (or one answer ends), with both tokens (null: ended) */
  firstDifference: { index: number; a: TokenAt | null; b: TokenAt | null } | null;
  /** the prompt ids each ran (a perturbed condition: its shown trial's) */
  samePrompt: boolean;
  /** per trial (both have trials with ids): the same answer ids */
  trials: { index: number; same: boolean }[] | null;
  shownTrial: { a: number | null; b: number | null };
  /** |KL_a − KL_b| of the first answer token, when both have it */
  klDifference: number | null;
  errors: { a: string | null; b: string | null };
}

export interface ResultsComparison {
  a: string;
  b: string;
  sameSpec: boolean;
  conditions: ConditionComparison[];
  /** conditions present in both with the same answer ids */
  identical: number;
  /** conditions in both that differ (answer, prompt or trials), or that one of them lacks */
  different: number;
}

function firstDifference(a: ConditionResult, b: ConditionResult): ConditionComparison['firstDifference'] {
  const n = Math.max(a.tokenIds.length, b.tokenIds.length);
  for (let i = 0; i < n; i++) {
    if (a.tokenIds[i] === b.tokenIds[i]) continue;
    const at = (c: ConditionResult): TokenAt | null => (i < c.tokenIds.length ? { id: c.tokenIds[i] } : null);
    return { index: i, a: at(a), b: at(b) };
  }
  return null;
}

const sameIds = (x: readonly number[] | undefined, y: readonly number[] | undefined) =>
  !!x && !!y && x.length === y.length && x.every((v, i) => v === y[i]);

/** Compares two results files condition by condition, in a's order and then b's extra conditions. */
export function compareResults(a: ResultsFile, b: ResultsFile): ResultsComparison {
  const ids = [...a.conditions.map((c) => c.id), ...b.conditions.map((c) => c.id)].filter(
    (id, i, all) => all.indexOf(id) === i,
  );
  const conditions = ids.map((id): ConditionComparison => {
    const ca = a.conditions.find((c) => c.id === id);
    const cb = b.conditions.find((c) => c.id === id);
    const both = !!ca && !!cb;
    const ok = both && !ca.error && !cb.error;
    const trials =
      both &&
      ca.trials &&
      cb.trials &&
      ca.trials.every((t) => t.tokenIds) &&
      cb.trials.every((t) => t.tokenIds)
        ? ca.trials.map((t) => ({
            index: t.index,
            same: sameIds(t.tokenIds, cb.trials!.find((u) => u.index === t.index)?.tokenIds),
          }))
        : null;
    const kA = ca?.metrics.klToBase;
    const kB = cb?.metrics.klToBase;
    return {
      id,
      label: (ca ?? cb)!.label,
      inA: !!ca,
      inB: !!cb,
      sameAnswer: ok && sameIds(ca.tokenIds, cb.tokenIds),
      firstDifference: ok ? firstDifference(ca, cb) : null,
      samePrompt:
        both &&
        sameIds(
          ca.prompt.tokens.map((t) => t.id),
          cb.prompt.tokens.map((t) => t.id),
        ),
      trials,
      shownTrial: { a: ca?.shownTrial ?? null, b: cb?.shownTrial ?? null },
      klDifference: typeof kA === 'number' && typeof kB === 'number' ? Math.abs(kA - kB) : null,
      errors: { a: ca?.error ?? null, b: cb?.error ?? null },
    };
  });
  const good = (c: ConditionComparison) =>
    c.sameAnswer && c.samePrompt && (c.trials ?? []).every((t) => t.same);
  return {
    a: originText(a),
    b: originText(b),
    sameSpec: a.specHash !== null && a.specHash === b.specHash,
    conditions,
    identical: conditions.filter(good).length,
    different: conditions.filter((c) => !good(c)).length,
  };
}

/** The comparison in words, one line per condition. */
export function comparisonText(c: ResultsComparison): string {
  const lines = [
    `a: ${c.a}`,
    `b: ${c.b}`,
    c.sameSpec ? 'the same spec' : 'NOT the same spec (different spec hashes): differences are expected',
    '',
  ];
  for (const x of c.conditions) {
    let what: string;
    if (!x.inA || !x.inB) what = `only in ${x.inA ? 'a' : 'b'}`;
    else if (x.errors.a || x.errors.b) what = `error: ${x.errors.a ?? x.errors.b}`;
    else if (!x.samePrompt) what = 'different prompt ids (another trial shown, or another tokenizer)';
    else if (x.sameAnswer) {
      const bad = (x.trials ?? []).filter((t) => !t.same).map((t) => t.index);
      what = bad.length ? `same answer; trials ${bad.join(', ')} differ` : 'same answer ids';
    } else {
      const d = x.firstDifference!;
      const tok = (t: TokenAt | null) => (t ? String(t.id) : 'end');
      what = `answers differ from token ${d.index} (a: ${tok(d.a)}, b: ${tok(d.b)})`;
    }
    const kl = x.klDifference === null ? '' : `  |ΔKL| ${x.klDifference.toExponential(1)}`;
    lines.push(`${x.sameAnswer && x.samePrompt ? '=' : '≠'} ${x.id}: ${what}${kl}`);
  }
  lines.push('', `${c.identical} identical, ${c.different} different`);
  return lines.join('\n') + '\n';
}
