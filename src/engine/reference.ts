// The oracle: a plain TypeScript decoder forward in fp64 with exactly the hook semantics the ONNX graph
// implements (taps and patches at residual and pre-RoPE K/V sites, per-row LoRA scale, KV cache).
// Engine tests compare against this, so it must stay simple and obviously correct: never optimise it
// at the cost of clarity, never share code with the graph builder, never import ORT, DOM or Node.
//
// Semantics, per call (B rows, T new tokens, P cached). "norm(x; w)" is RMSNorm x/√(mean(x²)+eps)·(c + w),
// c = spec.normWeightOffset (Gemma 1, else 0):
//   h = embed(input_ids)·embedScale   (Gemma: √hidden in the checkpoint dtype; else 1)
//   for l in 0..L-1:
//     [resid site l] tap h, then h = h + m·(p − h)
//     x = norm(h; w_in); q,k,v = proj(x) + bias + loraScale[b]·scaling·B(Ax)
//     [kv site l] tap k,v, then k = k + m·(pk − k), v = v + m·(pv − v)   (before k_norm and RoPE)
//     Qwen3 / Gemma-3: q,k = per-head norm(q; q_norm), norm(k; k_norm)
//     q,k = RoPE(q,k; position_ids)   (default P..P+T−1; rotate-half; a local layer's own RoPE on Gemma-3)
//     score(t, j) = q·k · attnScale (default headDim^-½), then tanh(score/c)·c with attnSoftcap c
//     key j is visible from query t iff j ≤ P+t, attention_mask[b][j] = 1 and, on a local layer with
//     window w, j > P+t − w (slot indices, as transformers' cache positions);
//     a query that sees no key gets probabilities 0 and attention output 0 (never NaN)
//     a = o_proj(attention); sandwich norms (Gemma): a = norm(a; w_post_attn)
//     h = h + a
//     x = norm(h; w_post_attn), or norm(h; w_pre_ffn) with sandwich norms
//     f = down(act(gate(x))·up(x)), act = silu or tanh-GELU; sandwich norms: f = norm(f; w_post_ffn)
//     h = h + f
//   [resid site L] tap, then patch; logits = lm_head(norm(h; w_final))   (lm_head = embed if tied),
//   then tanh(z/c)·c with finalSoftcap c
// Taps: resid [B,T,hidden]; k, v [B,T,kvHeads·headDim] (pre-patch, pre-norm, pre-RoPE);
// attn [B,heads,T,P+T]; logits [B,T,V] ('all') or [B,1,V] ('last' = position T−1 of every row).
// present: per layer [B,kvHeads,P+T,headDim], post-RoPE, past first.

import { EngineError } from './errors';
import { loraKey } from './lora';
import { ropeTables64, rotateHalf } from './rope';
import type {
  ArchSpec,
  ForwardInput,
  ForwardResult,
  KvCacheData,
  LoraAdapter,
  LoraTarget,
  Tensor,
  WeightMap,
} from './types';

export interface Tensor64 {
  shape: number[];
  data: Float64Array;
}

export interface KvCache64 {
  length: number;
  keys: Float64Array[];
  values: Float64Array[];
}

export interface ForwardResult64 {
  logits: Tensor64;
  resid: Map<number, Tensor64>;
  k: Map<number, Tensor64>;
  v: Map<number, Tensor64>;
  attn: Map<number, Tensor64>;
  present: KvCache64;
}

export interface ReferenceOptions {
  lora?: LoraAdapter;
  /** a cache from an earlier call (fp32 from `referenceForward`, or fp64 from `referenceForward64`) */
  past?: KvCacheData | KvCache64;
  /**
   * Mimic the int8 graph's run-time activation quantization: the input of every base matmul (the
   * projections and the head, not the LoRA branches) becomes uint8 codes per tensor, as ORT's
   * DynamicQuantizeLinear makes them (see `quantizeActivations`); default false
   */
  quantizeActivations?: boolean;
}

/**
 * x as DynamicQuantizeLinear sees it, dequantized: range [min(0, x), max(0, x)], scale = range/255 in
 * fp32, zero point round(−min/scale) in 0…255, code = clamp(round(x/scale) + zp, 0, 255), ties to even
 * (ONNX's rounding); the value (code − zp)·scale.
 */
export function quantizeActivations(x: Float64Array): Float64Array {
  let lo = 0;
  let hi = 0;
  for (const v of x) {
    const f = Math.fround(v);
    if (f < lo) lo = f;
    if (f > hi) hi = f;
  }
  const scale = Math.fround((hi - lo) / 255);
  if (scale === 0) return new Float64Array(x.length);
  const roundEven = (v: number): number => {
    const r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const zp = Math.min(255, Math.max(0, roundEven(Math.fround(-lo / scale))));
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const q = Math.min(255, Math.max(0, roundEven(Math.fround(Math.fround(x[i]) / scale)) + zp));
    out[i] = (q - zp) * scale;
  }
  return out;
}

// NOTE: `referenceForward` returns fp32 caches; feeding one back would round the keys to fp32 and
// spoil fp64 invariants (prefill + steps == full run to 1e-9). So each fp32 cache it returns remembers
// its fp64 original here, and is used instead when the same object comes back as `past`.
const exactPast = new WeakMap<KvCacheData, KvCache64>();

function badInput(message: string, details: Record<string, unknown> = {}): EngineError {
  return new EngineError('bad_input', message, details);
}

function weight(weights: WeightMap, name: string): Tensor {
  const t = weights.get(name);
  if (!t) throw new EngineError('missing_tensor', `weights lack ${name}`, { tensor: name });
  return t;
}

/** y[rows, out] = x[rows, in] · Wᵀ + bias (W stored [out, in], as in HF). */
function linear(x: Float64Array, rows: number, w: Tensor, bias?: Tensor): Float64Array {
  const [outF, inF] = w.shape;
  const y = new Float64Array(rows * outF);
  const wd = w.data;
  for (let r = 0; r < rows; r++) {
    const xo = r * inF;
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias.data[o] : 0;
      const wo = o * inF;
      for (let i = 0; i < inF; i++) s += x[xo + i] * wd[wo + i];
      y[r * outF + o] = s;
    }
  }
  return y;
}

/** y += rowScale[r] · B(A x) for each row with a non-zero scale. */
function addLora(
  y: Float64Array,
  x: Float64Array,
  rows: number,
  a: Tensor,
  b: Tensor,
  rowScale: Float64Array,
): void {
  const [rank, inF] = a.shape;
  const outF = b.shape[0];
  const ax = new Float64Array(rank);
  for (let r = 0; r < rows; r++) {
    const k = rowScale[r];
    if (k === 0) continue;
    for (let j = 0; j < rank; j++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += a.data[j * inF + i] * x[r * inF + i];
      ax[j] = s;
    }
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let j = 0; j < rank; j++) s += b.data[o * rank + j] * ax[j];
      y[r * outF + o] += k * s;
    }
  }
}

/** RMSNorm over consecutive groups of `dim` values: x / sqrt(mean(x²) + eps) · (offset + w). */
function rmsNorm(x: Float64Array, dim: number, w: Tensor, eps: number, offset: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let off = 0; off < x.length; off += dim) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[off + i] * x[off + i];
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[off + i] = x[off + i] * inv * (offset + w.data[i]);
  }
  return y;
}

/** tanh(x / cap) · cap: Gemma's soft-capping. */
function softcap(x: number, cap: number): number {
  return Math.tanh(x / cap) * cap;
}

/** GELU with the tanh approximation (PyTorch `gelu(approximate='tanh')`, HF `gelu_pytorch_tanh`). */
function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** h = h + m·(p − h), m per (row, token). */
function applyPatch(h: Float64Array, width: number, mask: Float32Array, value: Float32Array): void {
  for (let r = 0; r < mask.length; r++) {
    const m = mask[r];
    if (m === 0) continue;
    for (let i = 0; i < width; i++) {
      const j = r * width + i;
      h[j] += m * (value[j] - h[j]);
    }
  }
}

function toPast64(past: KvCacheData | KvCache64): KvCache64 {
  if (
    past.keys.every((k) => k instanceof Float64Array) &&
    past.values.every((v) => v instanceof Float64Array)
  ) {
    return past as KvCache64;
  }
  const exact = exactPast.get(past as KvCacheData);
  if (exact) return exact;
  return {
    length: past.length,
    keys: past.keys.map((k) => Float64Array.from(k)),
    values: past.values.map((v) => Float64Array.from(v)),
  };
}

interface Checked {
  B: number;
  T: number;
  P: number;
  mask: number[][];
  positions: number[][];
  loraScale: number[];
}

function checkInput(spec: ArchSpec, input: ForwardInput, past: KvCache64 | null): Checked {
  const B = input.inputIds.length;
  if (B === 0) throw badInput('inputIds has no rows');
  const T = input.inputIds[0].length;
  if (T === 0) throw badInput('inputIds rows are empty');
  const P = past ? past.length : 0;
  const kvDim = spec.numKvHeads * spec.headDim;
  input.inputIds.forEach((row, b) => {
    if (row.length !== T)
      throw badInput(`inputIds row ${b} has ${row.length} tokens, row 0 has ${T}`, { row: b });
    row.forEach((id) => {
      if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) {
        throw badInput(`token id ${id} outside the vocabulary (${spec.vocabSize})`, { row: b, value: id });
      }
    });
  });
  if (past) {
    if (past.keys.length !== spec.numLayers || past.values.length !== spec.numLayers) {
      throw badInput(`past has ${past.keys.length} layers, the model ${spec.numLayers}`);
    }
    const want = B * kvDim * P;
    for (let l = 0; l < spec.numLayers; l++) {
      if (past.keys[l].length !== want || past.values[l].length !== want) {
        throw badInput(
          `past layer ${l} holds ${past.keys[l].length} values, expected B·kvHeads·P·headDim = ${want}`,
          {
            layer: l,
          },
        );
      }
    }
  }
  const mask = input.attentionMask ?? Array.from({ length: B }, () => new Array<number>(P + T).fill(1));
  if (mask.length !== B || mask.some((r) => r.length !== P + T)) {
    throw badInput(`attentionMask must be [${B}][${P + T}] (past + new tokens)`);
  }
  const positions =
    input.positionIds ?? Array.from({ length: B }, () => Array.from({ length: T }, (_, t) => P + t));
  if (
    positions.length !== B ||
    positions.some((r) => r.length !== T || r.some((p) => !Number.isInteger(p) || p < 0))
  ) {
    throw badInput(`positionIds must be [${B}][${T}] non-negative integers`);
  }
  const loraScale = input.loraScale ?? new Array<number>(B).fill(1);
  if (loraScale.length !== B) throw badInput(`loraScale has ${loraScale.length} entries for ${B} rows`);

  const patches = input.patches;
  for (const [site, p] of patches?.resid ?? []) {
    if (!Number.isInteger(site) || site < 0 || site > spec.numLayers)
      throw badInput(`resid patch site ${site} out of range`);
    if (p.mask.length !== B * T || p.value.length !== B * T * spec.hiddenSize) {
      throw badInput(`resid patch ${site}: mask must hold B·T and value B·T·hidden values`, { site });
    }
  }
  for (const [layer, p] of patches?.kv ?? []) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= spec.numLayers)
      throw badInput(`kv patch layer ${layer} out of range`);
    if (p.mask.length !== B * T || p.k.length !== B * T * kvDim || p.v.length !== B * T * kvDim) {
      throw badInput(`kv patch ${layer}: mask must hold B·T, k and v B·T·kvHeads·headDim values`, { layer });
    }
  }
  const taps = input.taps;
  for (const s of taps?.resid ?? [])
    if (!(s >= 0 && s <= spec.numLayers)) throw badInput(`resid tap ${s} out of range`);
  for (const s of [...(taps?.kv ?? []), ...(taps?.attn ?? [])]) {
    if (!(s >= 0 && s < spec.numLayers)) throw badInput(`layer tap ${s} out of range`);
  }
  return { B, T, P, mask, positions, loraScale };
}

/** The fp64 forward; `referenceForward` rounds its result to fp32. */
export function referenceForward64(
  spec: ArchSpec,
  weights: WeightMap,
  input: ForwardInput,
  opts: ReferenceOptions = {},
): ForwardResult64 {
  const past = opts.past ? toPast64(opts.past) : null;
  const { B, T, P, mask, positions, loraScale } = checkInput(spec, input, past);
  const { hiddenSize: H, numHeads, numKvHeads, headDim: hd, numLayers: L, rmsNormEps: eps } = spec;
  const S = P + T;
  const rows = B * T;
  const qDim = numHeads * hd;
  const kvDim = numKvHeads * hd;
  const group = numHeads / numKvHeads;
  const taps = input.taps ?? {};
  const patches = input.patches ?? {};
  const lora = opts.lora;
  const rowScale = new Float64Array(rows);
  if (lora) for (let r = 0; r < rows; r++) rowScale[r] = loraScale[Math.floor(r / T)] * lora.scaling;

  let maxPos = 0;
  for (const row of positions) for (const p of row) maxPos = Math.max(maxPos, p);
  const rope = ropeTables64(spec, maxPos + 1);
  const localRope = spec.localRope ? ropeTables64({ headDim: hd, ...spec.localRope }, maxPos + 1) : rope;
  const normOffset = spec.normWeightOffset ?? 0;
  const norm = (x: Float64Array, dim: number, name: string): Float64Array =>
    rmsNorm(x, dim, weight(weights, name), eps, normOffset);

  const project = (
    x: Float64Array,
    layer: number,
    target: LoraTarget,
    prefix: string,
    withBias: boolean,
  ): Float64Array => {
    const y = linear(
      opts.quantizeActivations ? quantizeActivations(x) : x,
      rows,
      weight(weights, `${prefix}.${target}.weight`),
      withBias ? weight(weights, `${prefix}.${target}.bias`) : undefined,
    );
    const br = lora?.branches.get(loraKey(layer, target));
    if (br) addLora(y, x, rows, br.a, br.b, rowScale);
    return y;
  };

  const out: ForwardResult64 = {
    logits: { shape: [], data: new Float64Array(0) },
    resid: new Map(),
    k: new Map(),
    v: new Map(),
    attn: new Map(),
    present: { length: S, keys: [], values: [] },
  };

  const embed = weight(weights, 'model.embed_tokens.weight');
  const embedScale = spec.embedScale ?? 1;
  const h = new Float64Array(rows * H);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const id = input.inputIds[b][t];
      for (let i = 0; i < H; i++) h[(b * T + t) * H + i] = embed.data[id * H + i] * embedScale;
    }
  }

  const residSite = (site: number): void => {
    if (taps.resid?.includes(site)) out.resid.set(site, { shape: [B, T, H], data: h.slice() });
    const p = patches.resid?.get(site);
    if (p) applyPatch(h, H, p.mask, p.value);
  };

  for (let l = 0; l < L; l++) {
    residSite(l);
    const pre = `model.layers.${l}`;
    const window = spec.layerWindows?.[l] ?? null;
    const x = norm(h, H, `${pre}.input_layernorm.weight`);
    const q = project(x, l, 'q_proj', `${pre}.self_attn`, spec.qkvBias);
    let k = project(x, l, 'k_proj', `${pre}.self_attn`, spec.qkvBias);
    const v = project(x, l, 'v_proj', `${pre}.self_attn`, spec.qkvBias);

    if (taps.kv?.includes(l)) {
      out.k.set(l, { shape: [B, T, kvDim], data: k.slice() });
      out.v.set(l, { shape: [B, T, kvDim], data: v.slice() });
    }
    const kvp = patches.kv?.get(l);
    if (kvp) {
      applyPatch(k, kvDim, kvp.mask, kvp.k);
      applyPatch(v, kvDim, kvp.mask, kvp.v);
    }

    let qr = q;
    if (spec.qkNorm) {
      qr = norm(q, hd, `${pre}.self_attn.q_norm.weight`);
      k = norm(k, hd, `${pre}.self_attn.k_norm.weight`);
    }
    const layerRope = window !== null ? localRope : rope;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const r = b * T + t;
        const pos = positions[b][t];
        for (let hh = 0; hh < numHeads; hh++) rotateHalf(qr, r * qDim + hh * hd, pos, layerRope);
        for (let hh = 0; hh < numKvHeads; hh++) rotateHalf(k, r * kvDim + hh * hd, pos, layerRope);
      }
    }

    // present: [B, kvHeads, S, hd], past first
    const keys = new Float64Array(B * numKvHeads * S * hd);
    const values = new Float64Array(B * numKvHeads * S * hd);
    for (let b = 0; b < B; b++) {
      for (let kh = 0; kh < numKvHeads; kh++) {
        const dst = (b * numKvHeads + kh) * S * hd;
        if (past) {
          const src = (b * numKvHeads + kh) * P * hd;
          keys.set(past.keys[l].subarray(src, src + P * hd), dst);
          values.set(past.values[l].subarray(src, src + P * hd), dst);
        }
        for (let t = 0; t < T; t++) {
          const src = (b * T + t) * kvDim + kh * hd;
          keys.set(k.subarray(src, src + hd), dst + (P + t) * hd);
          values.set(v.subarray(src, src + hd), dst + (P + t) * hd);
        }
      }
    }
    out.present.keys.push(keys);
    out.present.values.push(values);

    const wantAttn = taps.attn?.includes(l) ?? false;
    const probsOut = wantAttn ? new Float64Array(B * numHeads * T * S) : null;
    const ctx = new Float64Array(rows * qDim);
    const scale = spec.attnScale ?? 1 / Math.sqrt(hd);
    const cap = spec.attnSoftcap;
    const scores = new Float64Array(S);
    const visible = new Uint8Array(S);
    for (let b = 0; b < B; b++) {
      for (let hh = 0; hh < numHeads; hh++) {
        const kvBase = (b * numKvHeads + Math.floor(hh / group)) * S * hd;
        for (let t = 0; t < T; t++) {
          const qo = (b * T + t) * qDim + hh * hd;
          let max = -Infinity;
          for (let j = 0; j < S; j++) {
            const inWindow = window === null || j > P + t - window;
            visible[j] = j <= P + t && inWindow && mask[b][j] !== 0 ? 1 : 0;
            if (!visible[j]) continue;
            let s = 0;
            for (let i = 0; i < hd; i++) s += qr[qo + i] * keys[kvBase + j * hd + i];
            scores[j] = cap === undefined ? s * scale : softcap(s * scale, cap);
            if (scores[j] > max) max = scores[j];
          }
          let sum = 0;
          for (let j = 0; j < S; j++) {
            scores[j] = visible[j] ? Math.exp(scores[j] - max) : 0;
            sum += scores[j];
          }
          const po = ((b * numHeads + hh) * T + t) * S;
          for (let j = 0; j < S; j++) {
            const p = sum > 0 ? scores[j] / sum : 0;
            if (probsOut) probsOut[po + j] = p;
            if (p === 0) continue;
            for (let i = 0; i < hd; i++) ctx[qo + i] += p * values[kvBase + j * hd + i];
          }
        }
      }
    }
    if (probsOut) out.attn.set(l, { shape: [B, numHeads, T, S], data: probsOut });

    let attnOut = project(ctx, l, 'o_proj', `${pre}.self_attn`, spec.oBias);
    if (spec.sandwichNorms) attnOut = norm(attnOut, H, `${pre}.post_attention_layernorm.weight`);
    for (let i = 0; i < h.length; i++) h[i] += attnOut[i];

    const x2 = norm(
      h,
      H,
      spec.sandwichNorms
        ? `${pre}.pre_feedforward_layernorm.weight`
        : `${pre}.post_attention_layernorm.weight`,
    );
    const gate = project(x2, l, 'gate_proj', `${pre}.mlp`, spec.mlpBias);
    const up = project(x2, l, 'up_proj', `${pre}.mlp`, spec.mlpBias);
    const gelu = spec.mlpActivation === 'gelu_tanh';
    for (let i = 0; i < gate.length; i++) {
      const g = gate[i];
      gate[i] = (gelu ? geluTanh(g) : g / (1 + Math.exp(-g))) * up[i];
    }
    let down = project(gate, l, 'down_proj', `${pre}.mlp`, spec.mlpBias);
    if (spec.sandwichNorms) down = norm(down, H, `${pre}.post_feedforward_layernorm.weight`);
    for (let i = 0; i < h.length; i++) h[i] += down[i];
  }
  residSite(L);

  const last = taps.logits === 'last';
  const tOut = last ? 1 : T;
  const sel = new Float64Array(B * tOut * H);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < tOut; t++) {
      const src = (b * T + (last ? T - 1 : t)) * H;
      sel.set(h.subarray(src, src + H), (b * tOut + t) * H);
    }
  }
  const xf = norm(sel, H, 'model.norm.weight');
  const head = spec.tieWordEmbeddings ? embed : weight(weights, 'lm_head.weight');
  const logits = linear(opts.quantizeActivations ? quantizeActivations(xf) : xf, B * tOut, head);
  const finalCap = spec.finalSoftcap;
  if (finalCap !== undefined)
    for (let i = 0; i < logits.length; i++) logits[i] = softcap(logits[i], finalCap);
  out.logits = { shape: [B, tOut, spec.vocabSize], data: logits };
  return out;
}

function to32(t: Tensor64): Tensor {
  return { shape: [...t.shape], data: Float32Array.from(t.data) };
}

function mapTo32(m: Map<number, Tensor64>): Map<number, Tensor> {
  return new Map([...m].map(([k, t]) => [k, to32(t)]));
}

/** The oracle's forward with the engine's fp32 result types. */
export function referenceForward(
  spec: ArchSpec,
  weights: WeightMap,
  input: ForwardInput,
  opts: ReferenceOptions = {},
): ForwardResult {
  const r = referenceForward64(spec, weights, input, opts);
  const present: KvCacheData = {
    length: r.present.length,
    keys: r.present.keys.map((k) => Float32Array.from(k)),
    values: r.present.values.map((v) => Float32Array.from(v)),
  };
  exactPast.set(present, r.present);
  return {
    logits: to32(r.logits),
    resid: mapTo32(r.resid),
    k: mapTo32(r.k),
    v: mapTo32(r.v),
    attn: mapTo32(r.attn),
    present,
  };
}
