// Test support: tiny ArchSpecs with seeded random weights and LoRA adapters, and tolerance helpers, so
// graph/model/generate tests run without fixture files. Test-only: app code must never import it, and it
// must stay deterministic (integer PRNG, no Math.random).

import type { ArchSpec, LoraAdapter, LoraTarget, Tensor, WeightMap } from '../types';

/** mulberry32: a 32-bit integer PRNG, identical on every JS engine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function tinySpec(overrides: Partial<ArchSpec> = {}): ArchSpec {
  return {
    modelType: 'llama',
    vocabSize: 61,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: { type: 'default' },
    maxPositionEmbeddings: 128,
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    qkNorm: false,
    bosTokenId: 1,
    eosTokenIds: [2],
    ...overrides,
  };
}

function randTensor(rand: () => number, shape: number[], scale: number, center = 0): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = center + (rand() * 2 - 1) * scale;
  return { shape, data };
}

/** Random weights with HF names for `spec`; projections scaled ~1/sqrt(fan-in). */
export function randomWeights(spec: ArchSpec, seed = 1): WeightMap {
  const rand = prng(seed);
  const {
    hiddenSize: H,
    intermediateSize: I,
    numHeads: nH,
    numKvHeads: kvH,
    headDim: hd,
    vocabSize: V,
  } = spec;
  const w: WeightMap = new Map();
  const lin = (name: string, out: number, inF: number, bias: boolean): void => {
    w.set(`${name}.weight`, randTensor(rand, [out, inF], 1.5 / Math.sqrt(inF)));
    if (bias) w.set(`${name}.bias`, randTensor(rand, [out], 0.3));
  };
  w.set('model.embed_tokens.weight', randTensor(rand, [V, H], 1));
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}`;
    w.set(`${p}.input_layernorm.weight`, randTensor(rand, [H], 0.2, 1));
    w.set(`${p}.post_attention_layernorm.weight`, randTensor(rand, [H], 0.2, 1));
    lin(`${p}.self_attn.q_proj`, nH * hd, H, spec.qkvBias);
    lin(`${p}.self_attn.k_proj`, kvH * hd, H, spec.qkvBias);
    lin(`${p}.self_attn.v_proj`, kvH * hd, H, spec.qkvBias);
    lin(`${p}.self_attn.o_proj`, H, nH * hd, spec.oBias);
    if (spec.qkNorm) {
      w.set(`${p}.self_attn.q_norm.weight`, randTensor(rand, [hd], 0.2, 1));
      w.set(`${p}.self_attn.k_norm.weight`, randTensor(rand, [hd], 0.2, 1));
    }
    lin(`${p}.mlp.gate_proj`, I, H, spec.mlpBias);
    lin(`${p}.mlp.up_proj`, I, H, spec.mlpBias);
    lin(`${p}.mlp.down_proj`, H, I, spec.mlpBias);
  }
  w.set('model.norm.weight', randTensor(rand, [H], 0.2, 1));
  if (!spec.tieWordEmbeddings) w.set('lm_head.weight', randTensor(rand, [V, H], 1 / Math.sqrt(H)));
  return w;
}

const TARGETS: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** A random adapter on every projection of every layer (r=4, alpha=8 unless told). */
export function randomLora(spec: ArchSpec, seed = 7, r = 4, alpha = 8): LoraAdapter {
  const rand = prng(seed);
  const { hiddenSize: H, intermediateSize: I, numHeads: nH, numKvHeads: kvH, headDim: hd } = spec;
  const dims: Record<LoraTarget, [number, number]> = {
    q_proj: [H, nH * hd],
    k_proj: [H, kvH * hd],
    v_proj: [H, kvH * hd],
    o_proj: [nH * hd, H],
    gate_proj: [H, I],
    up_proj: [H, I],
    down_proj: [I, H],
  };
  const branches = new Map<string, { a: Tensor; b: Tensor }>();
  for (let l = 0; l < spec.numLayers; l++) {
    for (const t of TARGETS) {
      const [inF, outF] = dims[t];
      branches.set(`${l}.${t}`, {
        a: randTensor(rand, [r, inF], 1 / Math.sqrt(inF)),
        b: randTensor(rand, [outF, r], 0.5 / Math.sqrt(r)),
      });
    }
  }
  return { r, alpha, useRslora: false, scaling: alpha / r, baseModel: null, branches };
}

/** max |a − b| / max |b| (relative to the reference's scale). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Token ids for B rows of T tokens. */
export function randomIds(spec: ArchSpec, B: number, T: number, seed = 3): number[][] {
  const rand = prng(seed);
  return Array.from({ length: B }, () =>
    Array.from({ length: T }, () => Math.floor(rand() * spec.vocabSize)),
  );
}
