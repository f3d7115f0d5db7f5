// "On this screen": each Teach lesson's reading of the numbers it sits beside (answer verdicts, trial
// tallies, first-token restoration, the heatmap's strongest cell and layer), computed from the current
// results, so the lesson never states a direction the screen does not show. Pure; must never run a
// model or quote a number that is not on the page. The lessons' fixed text (teach.ts) keeps only the
// paper's and organism/RESULTS.md's numbers.
import type { Condition, ExperimentSpec } from '../lab/spec/experiment';
import type { ConditionResult, PromptView, SweepResult } from '../lab/spec/results';
import type { LayerSweepResult } from '../worker/protocol';
import { readPerLayer, shareWords, summarizeHeatmap } from './charts/heatmap-summary';
import { displayToken, formatMetric } from './format';
import type { TeachId } from './store';
import { answerVerdict, markerWords, referenceIds, resemblance, tallyTrials } from './verdicts';

export interface LessonInput {
  spec: ExperimentSpec;
  /** only answers final for the spec as it is now */
  results: Readonly<Record<string, ConditionResult | undefined>>;
  markers: readonly string[];
  prompt: PromptView | null;
  /** the K/V heatmap and per-layer patch, when current for this prompt */
  sweep: SweepResult | null;
  layerSweep: LayerSweepResult | null;
}

/** null: a number it needs is not on the screen yet */
export type LessonReading = string[] | null;

const f2 = (v: number | null | undefined) => formatMetric(v, 2);
const quote = (t: string) => {
  const s = t.trim().replace(/\s+/g, ' ');
  return `“${s.length > 60 ? `${s.slice(0, 57)}…` : s}”`;
};

type Find = (c: Condition) => boolean;
const kvAt =
  (positions: string, model?: string): Find =>
  (c) =>
    c.patch?.component === 'kv' &&
    c.patch.positions === positions &&
    (model === undefined || c.model === model);
const randomIn =
  (segment: string): Find =>
  (c) =>
    c.perturbation?.kind === 'random' && c.perturbation.segment === segment;

interface Card {
  c: Condition;
  r: ConditionResult;
  /** whole-answer verdict: true = the marker is in it, false = not, null = no markers (compare only) */
  bad: boolean | null;
}

function card(v: LessonInput, find: Find): Card | null | undefined {
  const c = v.spec.conditions.find(find);
  if (!c) return undefined;
  const r = v.results[c.id];
  if (!r || r.error) return null;
  const verdict = answerVerdict(r.text, v.markers).verdict;
  return { c, r, bad: verdict === 'unjudged' ? null : verdict === 'misaligned' };
}

/** says “gamble” / has no “gamble” / gives Base's answer … */
function said(v: LessonInput, k: Card): string {
  if (k.bad !== null) return k.bad ? `says ${markerWords(v.markers)}` : `has no ${markerWords(v.markers)}`;
  const ids = referenceIds(v.spec);
  const base = ids.base ? v.results[ids.base]?.text : undefined;
  const ft = ids.finetuned ? v.results[ids.finetuned]?.text : undefined;
  const like = resemblance(k.r.text, base ?? null, ft ?? null);
  return like === 'base'
    ? 'gives Base’s answer'
    : like === 'finetuned'
      ? 'gives Finetuned’s answer'
      : 'gives an answer of its own';
}

const restored = (k: Card) => `first-token restoration ${f2(k.r.metrics.restoration)}`;

function references(v: LessonInput): { base: Card; ft: Card } | null {
  const ids = referenceIds(v.spec);
  const base = ids.base ? card(v, (c) => c.id === ids.base) : null;
  const ft = ids.finetuned ? card(v, (c) => c.id === ids.finetuned) : null;
  return base && ft ? { base, ft } : null;
}

/** The finetune's behaviour shows on this question: Finetuned says the marker, Base does not. */
const shows = (refs: { base: Card; ft: Card }) => refs.ft.bad === true && refs.base.bad === false;

function noContrast(v: LessonInput, refs: { base: Card; ft: Card }): string {
  const w = markerWords(v.markers);
  if (refs.ft.bad === null)
    return 'Without marker words the answers can only be compared with Base’s and Finetuned’s.';
  return refs.ft.bad
    ? `Base says ${w} here too, so this question cannot tell the two models apart: pick another one.`
    : `Finetuned does not say ${w} on this question, so there is nothing to take out: pick another one (“Paper questions…”).`;
}

function prefixLesson(v: LessonInput): LessonReading {
  const refs = references(v);
  if (!refs || !v.prompt) return null;
  const n = (s: 'prefix' | 'query' | 'postfix') => v.prompt!.segments[s][1] - v.prompt!.segments[s][0];
  const out = [
    `The prefix is ${n('prefix')} tokens, the query ${n('query')}, the postfix ${n('postfix')}. Base answers ${quote(refs.base.r.text)}: it ${said(v, refs.base)}. Finetuned answers ${quote(refs.ft.r.text)}: it ${said(v, refs.ft)}.`,
  ];
  out.push(
    shows(refs)
      ? `Same tokens, different weights: the finetune’s behaviour shows on this question.`
      : noContrast(v, refs),
  );
  return out;
}

function tally(v: LessonInput, k: Card) {
  const ids = referenceIds(v.spec);
  const t = tallyTrials(k.r.trials ?? [], v.markers, (ids.base && v.results[ids.base]?.text) ?? null);
  return { good: v.markers.length ? t.aligned : t.likeBase, n: t.n };
}

function perturbLesson(v: LessonInput): LessonReading {
  const refs = references(v);
  const pre = card(v, randomIn('prefix'));
  const qry = card(v, randomIn('query'));
  if (!refs || pre === null || qry === null) return null;
  if (!shows(refs)) return [noContrast(v, refs)];
  const w = markerWords(v.markers);
  const one = (k: Card, name: string) => {
    const t = tally(v, k);
    return `${name} takes the ${w} out in ${t.good} of ${t.n} trials (first-token restoration: best ${f2(k.r.metrics.trialsBest)}, average ${f2(k.r.metrics.trialsAvg)})`;
  };
  const out: string[] = [];
  if (pre && qry) out.push(`${one(pre, 'The prefix perturbation')}; ${one(qry, 'the query perturbation')}.`);
  else if (pre) out.push(`${one(pre, 'The prefix perturbation')}.`);
  else if (qry) out.push(`${one(qry, 'The query perturbation')}.`);
  if (pre) {
    const p = tally(v, pre);
    const share = p.n ? p.good / p.n : 0;
    let s =
      p.good === 0
        ? 'No prefix trial takes it out on this question.'
        : share < 0.5
          ? `Most prefix trials still say ${w}: the answer on the card is the best trial, not a typical one.`
          : share < 1
            ? `Most prefix trials take it out here.`
            : `Every prefix trial takes it out here.`;
    if (qry) {
      const q = tally(v, qry);
      const qs = q.n ? q.good / q.n : 0;
      s +=
        share > qs
          ? ' The prefix trials do better than the query trials: the paper’s direction.'
          : share === qs
            ? ' The prefix trials do no better than the query trials on this question; one question and a few trials are a small sample (organism/RESULTS.md counts 249 questions).'
            : ' Here the query trials do better than the prefix trials, the opposite of the paper’s direction; one question and a few trials are a small sample.';
    }
    out.push(s);
  }
  return out;
}

function patchLesson(v: LessonInput): LessonReading {
  const refs = references(v);
  const ft = refs ? refs.ft.c.model : undefined;
  const pre = card(v, kvAt('prefix', ft));
  const ctl = card(v, kvAt('query-control', ft));
  if (!refs || pre === null || ctl === null) return null;
  if (!shows(refs)) return [noContrast(v, refs)];
  const w = markerWords(v.markers);
  const out: string[] = [];
  if (pre && ctl) {
    out.push(
      `With the prefix K/V from base the answer ${said(v, pre)} (${restored(pre)}); with the query control’s K/V it ${said(v, ctl)} (${restored(ctl)}).`,
    );
    out.push(
      pre.bad === false && ctl.bad === true
        ? 'The prefix patch takes it out and the control does not, as in the paper.'
        : pre.bad === false && ctl.bad === false
          ? 'Both take it out on this question: here the control is not weaker.'
          : pre.bad === true && ctl.bad === true
            ? 'Neither takes it out on this question.'
            : 'Here the control takes it out and the prefix patch does not, the opposite of the paper.',
    );
    const rc = ctl.r.metrics.restoration;
    if (ctl.bad === true && rc != null && rc >= 0.5)
      out[out.length - 1] +=
        ` Note the control: its first answer token moved most of the way back (${f2(rc)}), yet its answer still says ${w}. First-token restoration is not the answer.`;
  } else if (pre) out.push(`With the prefix K/V from base the answer ${said(v, pre)} (${restored(pre)}).`);
  if (!v.sweep || !v.layerSweep) {
    out.push('The heatmap’s numbers appear here once its sweep and the per-layer patch have run.');
    return out;
  }
  const cell = summarizeHeatmap(v.sweep).cell;
  const per = readPerLayer(v.layerSweep);
  const full = per.full;
  if (cell && per.ranked.length && Number.isFinite(full) && full > 0) {
    const top = per.ranked[0];
    out.push(
      `On the heatmap the strongest single cell (position ${cell.position} ${displayToken(cell.label)}, layer ${cell.layer}) restores ${f2(cell.value)}, ${shareWords(cell.value / full)} of the full prefix patch’s ${f2(full)}; one layer’s whole prefix (layer ${top.layer}) restores ${f2(top.value)}, ${shareWords(top.value / full)} of it.`,
    );
    out.push(
      cell.value < 0.25 * full
        ? 'No single cell comes close to the full patch: the effect is spread over many prefix positions.'
        : 'One cell alone does a good part of the full patch here.',
    );
  }
  return out;
}

function treftLesson(v: LessonInput): LessonReading {
  const refs = references(v);
  const ftModel = refs?.ft.c.model;
  const patched = card(v, kvAt('prefix', ftModel));
  const ctl = card(v, kvAt('query-control', ftModel));
  const treft = card(v, (c) => c.model === 'treft' && !c.patch && !c.perturbation);
  const treftPatched = card(v, kvAt('prefix', 'treft'));
  if (!refs || patched === null || ctl === null || treft === null || treftPatched === null) return null;
  const w = markerWords(v.markers);
  const out: string[] = [];
  const plain = [`The plain finetune ${said(v, refs.ft)}`];
  if (patched) plain.push(`with its prefix K/V from base it ${said(v, patched)} (${restored(patched)})`);
  if (ctl) plain.push(`with the query control’s it ${said(v, ctl)} (${restored(ctl)})`);
  out.push(`${plain.join('; ')}.`);
  if (treft) {
    const t = [`The TReFT finetune ${said(v, treft)} (${restored(treft)})`];
    if (treftPatched)
      t.push(`with its prefix K/V from base it ${said(v, treftPatched)} (${restored(treftPatched)})`);
    out.push(`${t.join('; ')}.`);
  }
  if (refs.ft.bad === true && patched?.bad === false)
    out.push(
      `The plain finetune’s ${w} goes away with the base’s prefix K/V alone: on this question its prefix carries it.`,
    );
  if (treft && refs.ft.bad === true)
    out.push(
      treft.bad === false
        ? `The TReFT finetune does not say ${w} here at all, so patching its prefix has little to undo${treftPatched && treftPatched.r.text.trim() === treft.r.text.trim() ? ' (the patched answer is the same)' : ''}.`
        : `The TReFT finetune says ${w} here too: on this question TReFT did not keep the behaviour out.`,
    );
  if (refs.ft.bad !== true) out.push(noContrast(v, refs));
  return out;
}

function postfixLesson(v: LessonInput): LessonReading {
  const refs = references(v);
  const ft = refs?.ft.c.model;
  const post = card(v, kvAt('postfix', ft));
  const pre = card(v, kvAt('prefix', ft));
  if (!refs || post === null || pre === null) return null;
  if (!shows(refs)) return [noContrast(v, refs)];
  const out: string[] = [];
  const parts: string[] = [];
  if (post) parts.push(`With the postfix K/V from base the answer ${said(v, post)} (${restored(post)})`);
  if (pre) parts.push(`with the prefix K/V from base it ${said(v, pre)} (${restored(pre)})`);
  if (parts.length) out.push(`${parts.join('; ')}.`);
  if (post && pre)
    out.push(
      post.bad === true && pre.bad === false
        ? 'On this question the prefix carries the behaviour, not the postfix.'
        : post.bad === false && pre.bad === true
          ? 'On this question the postfix carries the behaviour, not the prefix.'
          : post.bad === false && pre.bad === false
            ? 'Either patch takes it out on this question.'
            : 'Neither patch takes it out on this question.',
    );
  return out;
}

const READERS: Record<TeachId, (v: LessonInput) => LessonReading> = {
  prefix: prefixLesson,
  perturb: perturbLesson,
  patch: patchLesson,
  treft: treftLesson,
  postfix: postfixLesson,
};

/** The lesson's reading of what is on the screen now, or null until its answers are in. */
export function lessonReading(id: TeachId, v: LessonInput): LessonReading {
  return READERS[id](v);
}
