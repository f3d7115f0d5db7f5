// Metrics for perturbation and patching results: softmax / log-softmax, next-token distributions,
// KL(P_base ‖ P_condition), teacher-forced log-probabilities and the aligned − misaligned margin,
// normalised restoration, logit difference, TReFT's prefix K/V drift
// (docs/science.md "TReFT"), and misbehaviour rates
// with seeded bootstrap and Wilson intervals.
// Pure functions over arrays (accumulation in fp64): this module must never run a model or sample
// without a seed. Logarithms are natural (nats).

import type { Tensor } from '../../engine/types';
import { bootstrapProportion, wilsonInterval, zFor, type BootstrapOptions } from '../eval/stats';

/** log-softmax of one logit row, numerically stable (max subtracted), accumulated in fp64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length;
  if (n === 0) throw new RangeError('logSoftmax of an empty row');
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  if (!Number.isFinite(max)) throw new RangeError(`logSoftmax: largest logit is ${max}`);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logits[i] - lse;
  return out;
}

/** softmax of one logit row, numerically stable, fp64 (exp(x − max) / Σ, not exp(logSoftmax): exact on ties). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length;
  if (n === 0) throw new RangeError('softmax of an empty row');
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  if (!Number.isFinite(max)) throw new RangeError(`softmax: largest logit is ${max}`);
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    out[i] = Math.exp(logits[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < n; i++) out[i] /= sum;
  return out;
}

/** The logit row at (batch row, position) of a [B, T, V] tensor (a view, not a copy). */
export function logitsAt(logits: Tensor, row: number, position: number): Float32Array {
  if (logits.shape.length !== 3)
    throw new RangeError(`logits must be [B, T, V], got [${logits.shape.join(', ')}]`);
  const [B, T, V] = logits.shape;
  if (row < 0 || row >= B || !Number.isInteger(row)) throw new RangeError(`row ${row} ∉ 0..${B - 1}`);
  // NOTE: a negative position counts from the end, so −1 is the last position (useful with logits: 'last').
  const t = position < 0 ? T + position : position;
  if (t < 0 || t >= T || !Number.isInteger(t)) throw new RangeError(`position ${position} ∉ 0..${T - 1}`);
  const o = (row * T + t) * V;
  return logits.data.subarray(o, o + V);
}

export interface TopK {
  ids: number[];
  probs: number[];
  logprobs: number[];
}

/** The k most likely tokens of one logit row, most likely first (ties: lower id first). */
export function topK(logits: ArrayLike<number>, k: number): TopK {
  const lp = logSoftmax(logits);
  const ids: number[] = [];
  const m = Math.min(k, lp.length);
  for (let v = 0; v < lp.length; v++) {
    if (ids.length === m && !(lp[v] > lp[ids[m - 1]])) continue;
    let j = ids.length < m ? ids.length : m - 1;
    while (j > 0 && lp[v] > lp[ids[j - 1]]) {
      ids[j] = ids[j - 1];
      j--;
    }
    ids[j] = v;
  }
  return { ids, logprobs: ids.map((i) => lp[i]), probs: ids.map((i) => Math.exp(lp[i])) };
}

/** KL(P ‖ Q) = Σ p (log p − log q) for probability vectors; terms with p = 0 contribute 0. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length) throw new RangeError(`KL: lengths differ (${p.length} vs ${q.length})`);
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    if (q[i] === 0) return Infinity;
    kl += p[i] * (Math.log(p[i]) - Math.log(q[i]));
  }
  return kl;
}

/** KL(P ‖ Q) from two logit rows — e.g. P = base, Q = a condition (the patching convention KL(P_clean ‖ P_patched)). */
export function klFromLogits(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  if (pLogits.length !== qLogits.length) throw new RangeError(`KL: lengths differ`);
  const lp = logSoftmax(pLogits);
  const lq = logSoftmax(qLogits);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) {
    const p = Math.exp(lp[i]);
    if (p > 0) kl += p * (lp[i] - lq[i]);
  }
  return Math.max(0, kl); // NOTE: rounding can give −1e−17 for identical rows
}

export interface ContinuationLogProb {
  /** Σ log p(token_j | …) */
  total: number;
  perToken: number[];
  /** total / number of tokens */
  mean: number;
}

/**
 * Teacher-forced log-probability of a reference continuation. `firstLogitPosition` is the position
 * whose logits predict continuation[0]: for a forward over prompt + continuation with all logits,
 * that is promptLength − 1; continuation[j] is read from position firstLogitPosition + j.
 */
export function continuationLogProb(
  logits: Tensor,
  row: number,
  firstLogitPosition: number,
  continuation: readonly number[],
): ContinuationLogProb {
  if (continuation.length === 0) throw new RangeError('empty continuation');
  const perToken = continuation.map((id, j) => {
    const lp = logSoftmax(logitsAt(logits, row, firstLogitPosition + j));
    if (!Number.isInteger(id) || id < 0 || id >= lp.length) throw new RangeError(`token ${id} ∉ vocab`);
    return lp[id];
  });
  const total = perToken.reduce((a, b) => a + b, 0);
  return { total, perToken, mean: total / perToken.length };
}

/** The preference margin: mean log-prob of aligned references − mean of misaligned ones. */
export function logProbMargin(aligned: readonly number[], misaligned: readonly number[]): number {
  if (aligned.length === 0 || misaligned.length === 0)
    throw new RangeError('margin needs references on both sides');
  const avg = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return avg(aligned) - avg(misaligned);
}

/**
 * Normalised restoration (m − m_ft) / (m_base − m_ft): 0 = still finetuned, 1 = fully base. null when
 * base and finetuned are indistinguishable (|m_base − m_ft| ≤ tol · max(1, |m_base|, |m_ft|)).
 */
export function normalizedRestoration(m: number, mFt: number, mBase: number, tol = 1e-9): number | null {
  const den = mBase - mFt;
  if (!Number.isFinite(den) || Math.abs(den) <= tol * Math.max(1, Math.abs(mBase), Math.abs(mFt)))
    return null;
  return (m - mFt) / den;
}

export interface KvTaps {
  k: Map<number, Tensor>;
  v: Map<number, Tensor>;
}

export interface PrefixDrift {
  layers: number[];
  /** L_K^l per layer, in `layers` order */
  lK: number[];
  lV: number[];
  /** L_KV = 1/L Σ_l (L_K^l + L_V^l) */
  lKV: number;
}

/** [B, T, …] or [T, width] → T, width, row 0's offset. */
function rowsOf(t: Tensor, what: string): { T: number; width: number } {
  const T = t.shape.length === 2 ? t.shape[0] : t.shape[1];
  const B = t.shape.length === 2 ? 1 : t.shape[0];
  if (t.shape.length < 2 || !T || t.data.length % (B * T) !== 0) {
    throw new RangeError(`${what}: cannot read shape [${t.shape.join(', ')}] as [B, T, width]`);
  }
  return { T, width: t.data.length / (B * T) };
}

/** ‖a − b‖² / ‖b‖², with 0/0 = 0 and x/0 = ∞. */
function relSq(a: Float32Array, ao: number, b: Float32Array, bo: number, w: number): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < w; i++) {
    const d = a[ao + i] - b[bo + i];
    num += d * d;
    den += b[bo + i] * b[bo + i];
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return num / den;
}

/**
 * Prefix drift exactly as TReFT's loss (docs/science.md "TReFT"):
 * L_K^l = 1/|T| Σ_{t∈T} ‖k_t − k_t^init‖² / ‖k_t^init‖²
 * over the positions T, with k the k_proj output (pre-RoPE) of the finetuned model and k^init the base
 * model's; the same for V; L_KV = 1/L Σ_l (L_K^l + L_V^l) over the layers present in `base`.
 * `basePositions` maps each position to the base taps' position (default the same), for base taps
 * taken from another prompt such as the empty-query one.
 * NOTE: the paper's code feeds k_proj the residual WITHOUT the input RMSNorm; the engine's taps are the
 * real k_proj outputs (after the norm), which is what attention sees. Pass whichever taps you mean.
 */
export function prefixDrift(
  finetuned: KvTaps,
  base: KvTaps,
  positions: readonly number[],
  basePositions: readonly number[] = positions,
): PrefixDrift {
  if (positions.length === 0) throw new RangeError('prefix drift needs at least one position');
  if (basePositions.length !== positions.length) throw new RangeError('basePositions must match positions');
  const layers = [...base.k.keys()].sort((a, b) => a - b);
  if (layers.length === 0) throw new RangeError('no base K taps');
  const term = (ft: Tensor | undefined, b: Tensor | undefined, what: string): number => {
    if (!ft || !b) throw new Error(`missing ${what} taps`);
    const f = rowsOf(ft, `finetuned ${what}`);
    const r = rowsOf(b, `base ${what}`);
    if (f.width !== r.width) throw new RangeError(`${what}: widths differ (${f.width} vs ${r.width})`);
    let s = 0;
    positions.forEach((p, i) => {
      const q = basePositions[i];
      if (p < 0 || p >= f.T || q < 0 || q >= r.T)
        throw new RangeError(`${what}: position ${p}/${q} out of range`);
      s += relSq(ft.data, p * f.width, b.data, q * r.width, f.width);
    });
    return s / positions.length;
  };
  const lK = layers.map((l) => term(finetuned.k.get(l), base.k.get(l), `k.${l}`));
  const lV = layers.map((l) => term(finetuned.v.get(l), base.v.get(l), `v.${l}`));
  const lKV = layers.reduce((acc, _l, i) => acc + lK[i] + lV[i], 0) / layers.length;
  return { layers, lK, lV, lKV };
}

export interface MisbehaviourRate {
  /** misbehaving / n, null when nothing was scored */
  rate: number | null;
  misbehaving: number;
  /** answers the predicate scored (true or false) */
  n: number;
  /** answers the predicate excluded (null: e.g. a refusal or an incoherent answer) */
  excluded: number;
  bootstrap: [number, number] | null;
  wilson: [number, number] | null;
}

/**
 * Share of answers for which `predicate` is true (misbehaving), answers with a null verdict left out,
 * with a seeded percentile bootstrap interval and a Wilson interval at the same confidence
 * (0.9, 0.95 or 0.99; default 0.95).
 */
export function misbehaviourRate<T>(
  answers: readonly T[],
  predicate: (answer: T) => boolean | null,
  options: BootstrapOptions = {},
): MisbehaviourRate {
  const outcomes: boolean[] = [];
  let excluded = 0;
  for (const a of answers) {
    const v = predicate(a);
    if (v === null) excluded++;
    else outcomes.push(v);
  }
  const n = outcomes.length;
  const misbehaving = outcomes.filter(Boolean).length;
  const confidence = options.confidence ?? 0.95;
  return {
    rate: n ? misbehaving / n : null,
    misbehaving,
    n,
    excluded,
    bootstrap: bootstrapProportion(outcomes, { ...options, confidence }),
    wilson: wilsonInterval(misbehaving, n, zFor(confidence)),
  };
}

/** One projection as a module computes it: y = W x (+ bias) (+ dose · scaling · B(A x)). */
export interface Projection {
  /** [out, in] */
  w: Tensor;
  bias?: Float32Array;
  /** a LoRA branch on it: A [r, in], B [out, r], its adapter's scaling */
  lora?: { a: Tensor; b: Tensor; scaling: number };
}

/** Per layer, the k_proj and v_proj modules. */
export type KvProjections = Map<number, { k: Projection; v: Projection }>;

/** `p` applied to the rows `positions` of x [1, T, in] (other rows stay 0); fp64 accumulation. */
function projectRows(p: Projection, x: Tensor, positions: readonly number[], dose: number): Tensor {
  const [out, inDim] = p.w.shape;
  const T = x.data.length / inDim;
  if (!Number.isInteger(T)) throw new RangeError(`input width is not ${inDim}`);
  const y = new Float32Array(T * out);
  const r = p.lora ? p.lora.a.shape[0] : 0;
  const ax = new Float64Array(r);
  for (const t of positions) {
    const xo = t * inDim;
    if (p.lora) {
      for (let i = 0; i < r; i++) {
        let s = 0;
        for (let j = 0; j < inDim; j++) s += p.lora.a.data[i * inDim + j] * x.data[xo + j];
        ax[i] = s;
      }
    }
    for (let o = 0; o < out; o++) {
      let s = p.bias ? p.bias[o] : 0;
      const wo = o * inDim;
      for (let j = 0; j < inDim; j++) s += p.w.data[wo + j] * x.data[xo + j];
      if (p.lora && dose !== 0) {
        let d = 0;
        for (let i = 0; i < r; i++) d += p.lora.b.data[o * r + i] * ax[i];
        s += dose * p.lora.scaling * d;
      }
      y[t * out + o] = s;
    }
  }
  return { shape: [1, T, out], data: y };
}

/**
 * K/V as the paper's released TReFT trainer computes them for its drift: `k_proj` / `v_proj` applied to
 * the residual stream entering the layer, *before* the input RMSNorm (attention never sees these
 * values: the engine's K/V taps are after the norm). `resid` are residual taps [1, T, hidden] per layer;
 * only `positions` are computed (the rest stay 0). `dose` scales the LoRA branches (0 = base).
 */
export function codeProxyKv(
  resid: Map<number, Tensor>,
  proj: KvProjections,
  positions: readonly number[],
  dose: number,
): KvTaps {
  const k = new Map<number, Tensor>();
  const v = new Map<number, Tensor>();
  for (const [l, p] of [...proj].sort((a, b) => a[0] - b[0])) {
    const x = resid.get(l);
    if (!x) throw new Error(`missing resid.${l} taps`);
    k.set(l, projectRows(p.k, x, positions, dose));
    v.set(l, projectRows(p.v, x, positions, dose));
  }
  return { k, v };
}
