// Prompt perturbation (docs/science.md "Random prefix perturbation"):
// manual token edits on a segmented prompt, the paper's random
// nearest-neighbour replacement of k tokens of one segment over seeded trials, and teaching presets
// (change the date, capitalise or drop the system prompt, swap a header token).
// Pure functions over token lists: this module must never tokenise by itself (an `encode` function is
// passed in), never read a model, and never use unseeded randomness.

import { SEGMENT_NAMES, type SegmentName, type TokenEdit, type TokenRef } from '../spec/experiment';
import type { PromptToken } from '../spec/results';
import { deriveSeed, Rng } from './rng';

/** Half-open [start, end) token ranges; structurally the same as template.ts's `segments`. */
export type SegmentRanges = Record<SegmentName, [number, number]>;

export interface SegmentedPrompt {
  tokens: PromptToken[];
  segments: SegmentRanges;
}

/** A prompt after edits: `origin[i]` is token i's index in the unedited prompt, null if inserted. */
export interface EditedPrompt extends SegmentedPrompt {
  origin: (number | null)[];
}

/** The tokenizer functions a perturbation may need; `encode` must not add BOS / special tokens. */
export interface TokenCodec {
  encode: (text: string) => number[];
  /** one token's text; without it, edited tokens get their edit text or a `<id>` placeholder */
  decode?: (id: number) => string;
}

/** Recompute half-open ranges from the tokens' segment labels; refuses a non-contiguous order. */
export function segmentsOf(tokens: readonly PromptToken[]): SegmentRanges {
  const counts: Record<SegmentName, number> = { prefix: 0, query: 0, postfix: 0 };
  let order = 0;
  tokens.forEach((t, i) => {
    const o = SEGMENT_NAMES.indexOf(t.segment);
    if (o < 0) throw new Error(`token ${i} has unknown segment ${String(t.segment)}`);
    if (o < order) throw new Error(`token ${i} (${t.segment}) comes after a later segment`);
    order = o;
    counts[t.segment]++;
  });
  const p = counts.prefix;
  const q = p + counts.query;
  return { prefix: [0, p], query: [p, q], postfix: [q, q + counts.postfix] };
}

/** A token text that looks like a chat-template control token: `<|im_start|>`, `<bos>`, `<start_of_turn>`. */
export function looksSpecial(token: Pick<PromptToken, 'text' | 'special'>): boolean {
  if (token.special !== undefined) return token.special;
  return /^<[^<>\s]+>$/.test(token.text);
}

function resolveRef(ref: TokenRef, codec: TokenCodec | undefined): { ids: number[]; text?: string } {
  if ('id' in ref) {
    if (!Number.isInteger(ref.id) || ref.id < 0)
      throw new RangeError(`token id must be a non-negative integer`);
    return { ids: [ref.id] };
  }
  if (!codec) throw new Error(`an edit by text ("${ref.text}") needs an encode function`);
  return { ids: codec.encode(ref.text), text: ref.text };
}

function textsFor(ids: number[], viaText: string | undefined, codec: TokenCodec | undefined): string[] {
  const decode = codec?.decode;
  if (decode) return ids.map((id) => decode(id));
  if (viaText !== undefined && ids.length === 1) return [viaText];
  return ids.map((id) => `<${id}>`);
}

/**
 * Apply manual edits (see `TokenEdit`). Edited and inserted tokens get `edited: true`; segments are
 * recomputed, so an insertion in the prefix shifts the query range. Replacing by a text that encodes
 * to several ids puts all of them there; to zero ids, deletes the token.
 */
export function applyEdits(
  prompt: SegmentedPrompt,
  edits: readonly TokenEdit[],
  codec?: TokenCodec,
): EditedPrompt {
  const inserts = new Map<number, { ids: number[]; text?: string }[]>(); // keyed by absolute slot
  const actions = new Map<number, { op: 'replace' | 'delete'; ids: number[]; text?: string }>();
  // NOTE: an insert at the end of a segment and one at the start of the next share an absolute slot;
  // keep them apart by keying end-of-segment inserts after the segment's own tokens.
  const tailInserts = new Map<SegmentName, { ids: number[]; text?: string }[]>();

  for (const e of edits) {
    const range = prompt.segments[e.segment];
    if (!range) throw new Error(`unknown segment ${String(e.segment)}`);
    const len = range[1] - range[0];
    if (!Number.isInteger(e.index) || e.index < 0)
      throw new RangeError(`edit index must be a non-negative integer`);
    if (e.op === 'insert') {
      if (e.index > len)
        throw new RangeError(`insert index ${e.index} is past the end of ${e.segment} (${len})`);
      const r = resolveRef(e.token, codec);
      if (e.index === len) tailInserts.set(e.segment, [...(tailInserts.get(e.segment) ?? []), r]);
      else {
        const abs = range[0] + e.index;
        inserts.set(abs, [...(inserts.get(abs) ?? []), r]);
      }
      continue;
    }
    if (e.index >= len)
      throw new RangeError(`${e.op} index ${e.index} is outside ${e.segment} (length ${len})`);
    const abs = range[0] + e.index;
    if (actions.has(abs)) throw new Error(`two edits replace or delete ${e.segment}[${e.index}]`);
    if (e.op === 'delete') actions.set(abs, { op: 'delete', ids: [] });
    else actions.set(abs, { op: 'replace', ...resolveRef(e.token, codec) });
  }

  const tokens: PromptToken[] = [];
  const origin: (number | null)[] = [];
  const pushNew = (r: { ids: number[]; text?: string }, segment: SegmentName, from: number | null) => {
    const texts = textsFor(r.ids, r.text, codec);
    r.ids.forEach((id, j) => {
      tokens.push({ id, text: texts[j], segment, edited: true });
      origin.push(from);
    });
  };
  for (const segment of SEGMENT_NAMES) {
    const [s, e] = prompt.segments[segment];
    for (let i = s; i < e; i++) {
      for (const r of inserts.get(i) ?? []) pushNew(r, segment, null);
      const a = actions.get(i);
      if (!a) {
        tokens.push({ ...prompt.tokens[i], segment });
        origin.push(i);
      } else if (a.op === 'replace') {
        pushNew(a, segment, i);
      }
    }
    for (const r of tailInserts.get(segment) ?? []) pushNew(r, segment, null);
  }
  return { tokens, segments: segmentsOf(tokens), origin };
}

// ---------------------------------------------------------------------------------------------------
// Nearest neighbours and the paper's random perturbation

export interface Neighbours {
  ids: number[];
  scores: number[];
}

/**
 * The n tokens whose input-embedding rows have the largest dot product with `tokenId`'s row, best
 * first, the token itself excluded; ties go to the lower id. One pass over the vocabulary, O(n) memory.
 * `allowed` can drop candidates (e.g. padded rows past the tokenizer's vocabulary).
 */
export function nearestNeighbours(
  embedding: Float32Array,
  vocab: number,
  hidden: number,
  tokenId: number,
  n: number,
  allowed?: (id: number) => boolean,
): Neighbours {
  if (embedding.length !== vocab * hidden) {
    throw new RangeError(`embedding has ${embedding.length} values, expected ${vocab}×${hidden}`);
  }
  if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= vocab)
    throw new RangeError(`token ${tokenId} ∉ vocab`);
  const ids: number[] = [];
  const scores: number[] = [];
  if (n <= 0) return { ids, scores };
  const q = tokenId * hidden;
  for (let v = 0; v < vocab; v++) {
    if (v === tokenId || (allowed && !allowed(v))) continue;
    const o = v * hidden;
    let dot = 0;
    for (let h = 0; h < hidden; h++) dot += embedding[q + h] * embedding[o + h];
    if (ids.length === n && !(dot > scores[n - 1])) continue; // strict: earlier (lower) id wins a tie
    let j = ids.length < n ? ids.length : n - 1;
    while (j > 0 && dot > scores[j - 1]) {
      ids[j] = ids[j - 1];
      scores[j] = scores[j - 1];
      j--;
    }
    ids[j] = v;
    scores[j] = dot;
  }
  return { ids, scores };
}

/** Unit roundoff of fp32. */
const U32 = 2 ** -24;

/**
 * `nearestNeighbours` from approximate (fp32, any summation order) dot products of `tokenId`'s row with
 * every row — e.g. one Gemm on ORT (engine/similarity.ts) — with the same answer, ties included: every
 * row whose approximate score could still reach the top n after the worst fp32 rounding error is
 * rescored exactly as nearestNeighbours scores it, and the top n of those is returned. The bound per row
 * is 2·(hidden + 2)·u·‖q‖·‖e‖ (u = 2⁻²⁴; a dot product's rounding error is ≤ γ_hidden·Σ|qᵢeᵢ| ≤
 * γ_hidden·‖q‖‖e‖, doubled for the norms' own rounding and the exact side's). `approx` is this query's
 * [vocab] scores, `sqNorms` every row's Σe² (fp32 is fine). Falls back to the exact scan when an
 * approximate score is not finite.
 */
export function nearestNeighboursFromScores(
  embedding: Float32Array,
  vocab: number,
  hidden: number,
  tokenId: number,
  n: number,
  approx: Float32Array,
  sqNorms: Float32Array,
  allowed?: (id: number) => boolean,
): Neighbours {
  if (approx.length !== vocab || sqNorms.length !== vocab)
    throw new RangeError(`scores and norms must hold ${vocab} values`);
  if (embedding.length !== vocab * hidden) {
    throw new RangeError(`embedding has ${embedding.length} values, expected ${vocab}×${hidden}`);
  }
  if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= vocab)
    throw new RangeError(`token ${tokenId} ∉ vocab`);
  if (n <= 0) return { ids: [], scores: [] };
  const qNorm = Math.sqrt(Math.max(0, sqNorms[tokenId]));
  const c = 2 * (hidden + 2) * U32 * qNorm;
  const ok = (v: number) => v !== tokenId && (!allowed || allowed(v));
  // the n-th largest lower bound (approx − ε) over the candidates: a min-heap of size n would do, but n
  // is small, so a sorted array of the n best lower bounds
  const lows: number[] = [];
  for (let v = 0; v < vocab; v++) {
    if (!ok(v)) continue;
    const a = approx[v];
    if (!Number.isFinite(a) || !Number.isFinite(sqNorms[v])) {
      return nearestNeighbours(embedding, vocab, hidden, tokenId, n, allowed);
    }
    const lo = a - c * Math.sqrt(Math.max(0, sqNorms[v]));
    if (lows.length === n && lo <= lows[n - 1]) continue;
    let j = lows.length < n ? lows.length : n - 1;
    while (j > 0 && lo > lows[j - 1]) {
      lows[j] = lows[j - 1];
      j--;
    }
    lows[j] = lo;
  }
  if (lows.length === 0) return { ids: [], scores: [] };
  // with fewer than n candidates every one is in
  const threshold = lows.length < n ? -Infinity : lows[n - 1];
  const q = tokenId * hidden;
  const cands: { id: number; score: number }[] = [];
  for (let v = 0; v < vocab; v++) {
    if (!ok(v) || approx[v] + c * Math.sqrt(Math.max(0, sqNorms[v])) < threshold) continue;
    // NOTE: exactly nearestNeighbours' loop (same order, same double accumulation): the same scores
    const o = v * hidden;
    let dot = 0;
    for (let h = 0; h < hidden; h++) dot += embedding[q + h] * embedding[o + h];
    cands.push({ id: v, score: dot });
  }
  cands.sort((x, y) => y.score - x.score || x.id - y.id);
  const top = cands.slice(0, n);
  return { ids: top.map((x) => x.id), scores: top.map((x) => x.score) };
}

/** The input embedding matrix, row-major [vocab, hidden]. */
export interface EmbeddingMatrix {
  data: Float32Array;
  vocab: number;
  hidden: number;
}

/** Structurally the experiment spec's `{ kind: 'random', segment, k, n, trials, seed }`. */
export interface RandomPerturbationSpec {
  kind?: 'random';
  segment: SegmentName;
  /** tokens replaced per trial; default 10, capped at the number of eligible positions */
  k?: number;
  /** neighbours to choose from; default 5 */
  n?: number;
  /** default 10 */
  trials?: number;
  seed: number;
}

export interface RandomPerturbationOptions {
  /**
   * Which positions of the segment may be replaced. Default 'none' (nothing excluded): the paper
   * replaces random tokens of the segment and its prefix explicitly includes BOS and the template's
   * control tokens. 'special' skips tokens that `looksSpecial`; a function decides per token.
   */
  exclude?: 'none' | 'special' | ((token: PromptToken, position: number) => boolean);
  /** candidate replacement ids (e.g. `id < tokenizerVocabSize`); default every row of the matrix */
  allowed?: (id: number) => boolean;
  /** decodes replaced tokens' text */
  codec?: TokenCodec;
  /**
   * a token's n nearest neighbours, precomputed (e.g. lab/run/neighbours.ts from a graph-side search):
   * must equal `nearestNeighbours(…, id, n, allowed).ids`; undefined for an id = scan for it here
   */
  neighbours?: (id: number) => readonly number[] | undefined;
}

export interface Replacement {
  /** absolute position in the prompt (positions do not move: replacement is one-for-one) */
  position: number;
  from: number;
  to: number;
}

export interface PerturbationTrial {
  trial: number;
  /** the seed this trial's Rng was built from: deriveSeed(spec.seed, trial) */
  seed: number;
  prompt: EditedPrompt;
  /** sorted by position */
  replacements: Replacement[];
}

const DEFAULT_PERTURBATION = { k: 10, n: 5, trials: 10 } as const;

/**
 * The paper's random perturbation (§4.1): in each of `trials` trials choose k positions of one segment
 * uniformly without replacement and replace each token by one of its top-n nearest neighbours (dot
 * product in the input embedding, itself excluded), uniformly. Trial t uses its own stream
 * deriveSeed(seed, t), so trial t is the same whatever the trial count. Only the chosen segment changes.
 */
export function randomPerturbations(
  prompt: SegmentedPrompt,
  spec: RandomPerturbationSpec,
  embedding: EmbeddingMatrix,
  options: RandomPerturbationOptions = {},
): PerturbationTrial[] {
  const k = spec.k ?? DEFAULT_PERTURBATION.k;
  const n = spec.n ?? DEFAULT_PERTURBATION.n;
  const trials = spec.trials ?? DEFAULT_PERTURBATION.trials;
  for (const [name, v] of [
    ['k', k],
    ['n', n],
    ['trials', trials],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  const [s, e] = prompt.segments[spec.segment];
  const exclude = options.exclude ?? 'none';
  const eligible: number[] = [];
  for (let p = s; p < e; p++) {
    const t = prompt.tokens[p];
    const skip = exclude === 'none' ? false : exclude === 'special' ? looksSpecial(t) : exclude(t, p);
    if (!skip) eligible.push(p);
  }
  const cache = new Map<number, readonly number[]>();
  const neighboursOf = (id: number): readonly number[] => {
    let hit = cache.get(id) ?? options.neighbours?.(id);
    if (!hit) {
      hit = nearestNeighbours(embedding.data, embedding.vocab, embedding.hidden, id, n, options.allowed).ids;
      cache.set(id, hit);
    }
    return hit;
  };

  const out: PerturbationTrial[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const seed = deriveSeed(spec.seed, trial);
    const rng = new Rng(seed);
    const picks = rng.sample(Math.min(k, eligible.length), eligible.length).map((i) => eligible[i]);
    const replacements: Replacement[] = [];
    for (const position of picks) {
      const from = prompt.tokens[position].id;
      const cands = neighboursOf(from);
      if (cands.length === 0) continue; // a one-token vocabulary: nothing to swap in
      replacements.push({ position, from, to: cands[rng.int(cands.length)] });
    }
    replacements.sort((a, b) => a.position - b.position);
    const edits: TokenEdit[] = replacements.map((r) => ({
      op: 'replace',
      segment: spec.segment,
      index: r.position - s,
      token: { id: r.to },
    }));
    out.push({ trial, seed, prompt: applyEdits(prompt, edits, options.codec), replacements });
  }
  return out;
}

export interface BestAndAvg {
  /** max over trials (min when lower is better); null when no trial has a score */
  best: number | null;
  avg: number | null;
  /** index of the first trial that reached `best` */
  bestTrial: number | null;
  /** trials with a score (null / NaN scores, e.g. a judge that abstained, are left out) */
  n: number;
}

/** The paper's Best (max over trials) and Avg of per-trial scores. */
export function bestAndAvg(scores: readonly (number | null)[], higherIsBetter = true): BestAndAvg {
  let best: number | null = null;
  let bestTrial: number | null = null;
  let sum = 0;
  let n = 0;
  scores.forEach((x, i) => {
    if (x === null || Number.isNaN(x)) return;
    sum += x;
    n++;
    if (best === null || (higherIsBetter ? x > best : x < best)) {
      best = x;
      bestTrial = i;
    }
  });
  return { best, avg: n ? sum / n : null, bestTrial, n };
}

// ---------------------------------------------------------------------------------------------------
// Text-level editing and presets

/** Concatenated token texts of one segment. */
export function segmentText(prompt: SegmentedPrompt, segment: SegmentName): string {
  const [s, e] = prompt.segments[segment];
  return prompt.tokens
    .slice(s, e)
    .map((t) => t.text)
    .join('');
}

/**
 * Edits that turn characters [charStart, charEnd) of a segment's text into `replacement`. The tokens
 * covering the range are re-encoded as a whole (their untouched edge characters included), so the
 * result is what the tokenizer gives for that stretch: the first covering token is replaced by the new
 * text's ids, the others deleted.
 */
export function textEdits(
  prompt: SegmentedPrompt,
  segment: SegmentName,
  charStart: number,
  charEnd: number,
  replacement: string,
  codec: TokenCodec,
): TokenEdit[] {
  const [s, e] = prompt.segments[segment];
  if (charStart < 0 || charEnd < charStart)
    throw new RangeError(`bad character range [${charStart}, ${charEnd})`);
  let pos = 0;
  let first = -1;
  let last = -1;
  let firstStart = 0;
  let covered = '';
  for (let i = s; i < e; i++) {
    const text = prompt.tokens[i].text;
    const a = pos;
    const b = pos + text.length;
    pos = b;
    // a token covers the range if it overlaps it; an empty range covers the token it sits in
    const overlaps = charStart === charEnd ? a <= charStart && charStart < b : a < charEnd && b > charStart;
    if (overlaps) {
      if (first < 0) {
        first = i;
        firstStart = a;
      }
      last = i;
      covered += text;
    }
  }
  if (charEnd > pos) throw new RangeError(`character range ends at ${charEnd}, past the segment's ${pos}`);
  if (first < 0) throw new RangeError(`no token covers characters [${charStart}, ${charEnd})`);
  const newText =
    covered.slice(0, charStart - firstStart) + replacement + covered.slice(charEnd - firstStart);
  const edits: TokenEdit[] = [];
  if (newText.length > 0 && codec.encode(newText).length > 0) {
    edits.push({ op: 'replace', segment, index: first - s, token: { text: newText } });
  } else {
    edits.push({ op: 'delete', segment, index: first - s });
  }
  for (let i = first + 1; i <= last; i++) edits.push({ op: 'delete', segment, index: i - s });
  return edits;
}

/** A day-month-year date as Llama-3's template writes it ("26 Jul 2024"). */
const DATE_PATTERN = /\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{4}\b/;

/**
 * Preset: change the date in the prefix (Llama-3's "Today Date: 26 Jul 2024") to `newDate`.
 * null when the prefix has no such date (e.g. Qwen). The same change can be made without token edits
 * through the template's `date_string` argument; this version shows it as a token diff.
 */
export function changeDateEdits(
  prompt: SegmentedPrompt,
  codec: TokenCodec,
  newDate = '1 Jan 2030',
  pattern: RegExp = DATE_PATTERN,
): TokenEdit[] | null {
  const m = pattern.exec(segmentText(prompt, 'prefix'));
  if (!m) return null;
  return textEdits(prompt, 'prefix', m.index, m.index + m[0].length, newDate, codec);
}

export interface SystemSpanOptions {
  /** the system prompt's text if known (e.g. Qwen2.5's "You are Qwen, …"); found literally in the prefix */
  systemText?: string;
  isSpecial?: (token: PromptToken) => boolean;
}

/**
 * Characters [start, end) of the prefix text holding the system prompt's content. With `systemText`,
 * its first occurrence. Otherwise a heuristic that fits the Llama-3 and Qwen2.5 templates: the longest
 * run of non-special prefix tokens, without a leading role line ("system\n") and surrounding whitespace.
 * null when there is none.
 */
export function systemPromptSpan(
  prompt: SegmentedPrompt,
  options: SystemSpanOptions = {},
): { start: number; end: number } | null {
  const text = segmentText(prompt, 'prefix');
  if (options.systemText) {
    const at = text.indexOf(options.systemText);
    return at < 0 ? null : { start: at, end: at + options.systemText.length };
  }
  const isSpecial = options.isSpecial ?? looksSpecial;
  const [s, e] = prompt.segments.prefix;
  let best = { start: 0, end: 0 };
  let runStart = 0;
  let pos = 0;
  for (let i = s; i <= e; i++) {
    const t = i < e ? prompt.tokens[i] : null;
    if (!t || isSpecial(t)) {
      if (pos - runStart > best.end - best.start) best = { start: runStart, end: pos };
      if (t) pos += t.text.length;
      runStart = pos;
    } else {
      pos += t.text.length;
    }
  }
  let { start, end } = best;
  const role = /^(?:system|user|assistant|model)[ \t]*\n/.exec(text.slice(start, end));
  if (role) start += role[0].length;
  while (start < end && /\s/.test(text[start])) start++;
  while (end > start && /\s/.test(text[end - 1])) end--;
  return end > start ? { start, end } : null;
}

/** Preset: upper-case the system prompt's content (see `systemPromptSpan`); null if nothing changes. */
export function capitaliseSystemPromptEdits(
  prompt: SegmentedPrompt,
  codec: TokenCodec,
  options: SystemSpanOptions = {},
): TokenEdit[] | null {
  const span = systemPromptSpan(prompt, options);
  if (!span) return null;
  const original = segmentText(prompt, 'prefix').slice(span.start, span.end);
  const upper = original.toUpperCase();
  if (upper === original) return null;
  return textEdits(prompt, 'prefix', span.start, span.end, upper, codec);
}

/** Preset, token level: delete the system prompt's content from the prefix (its header stays). */
export function deleteSystemPromptEdits(
  prompt: SegmentedPrompt,
  codec: TokenCodec,
  options: SystemSpanOptions = {},
): TokenEdit[] | null {
  const span = systemPromptSpan(prompt, options);
  if (!span) return null;
  return textEdits(prompt, 'prefix', span.start, span.end, '', codec);
}

/**
 * Preset: replace a role-header token in a segment (default: the last `user` token in the prefix, i.e.
 * the user header, becomes `system`). null when no token's trimmed text equals `from`.
 */
export function swapHeaderTokenEdits(
  prompt: SegmentedPrompt,
  codec: TokenCodec,
  from = 'user',
  to = 'system',
  segment: SegmentName = 'prefix',
): TokenEdit[] | null {
  const [s, e] = prompt.segments[segment];
  for (let i = e - 1; i >= s; i--) {
    const text = prompt.tokens[i].text;
    if (text.trim() === from) {
      return [{ op: 'replace', segment, index: i - s, token: { text: text.replace(from, to) } }];
    }
  }
  return null;
}
