// Seeded tiny random decoders (ArchSpec + WeightMap + LoRA adapter) for engine tests: the graph and the
// reference can be compared on every architecture variant without fixture files.
// Test support only: must never be imported by production code, and never use Math.random.

import { LORA_TARGETS, loraKey, loraScaling, projectionDims } from './lora';
import type { ArchSpec, LoraAdapter, LoraTarget, Tensor, WeightMap } from './types';
import { requiredTensors } from './weights';

/** mulberry32: a 32-bit integer PRNG, identical on every JS engine. Returns floats in [0, 1). */
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
    vocabSize: 37,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 4,
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

function randomTensor(shape: number[], rand: () => number, scale: number, offset = 0): Tensor {
  const n = shape.reduce((a, d) => a * d, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = offset + (rand() * 2 - 1) * scale;
  return { shape, data };
}

/** Weights for every required tensor; norms near 1, matrices ~ U(−s, s) with s = 1/sqrt(fan_in). */
export function tinyWeights(spec: ArchSpec, seed = 1): WeightMap {
  const rand = prng(seed);
  const weights: WeightMap = new Map();
  for (const { name, shape } of requiredTensors(spec)) {
    if (name.endsWith('norm.weight') || name.endsWith('layernorm.weight')) {
      weights.set(name, randomTensor(shape, rand, 0.2, 1));
    } else if (name.endsWith('.bias')) {
      weights.set(name, randomTensor(shape, rand, 0.1));
    } else if (name === 'model.embed_tokens.weight') {
      weights.set(name, randomTensor(shape, rand, 1));
    } else {
      weights.set(name, randomTensor(shape, rand, 1 / Math.sqrt(shape[1])));
    }
  }
  return weights;
}

/** A LoRA adapter with non-zero A and B on the given targets of every layer. */
export function tinyLora(
  spec: ArchSpec,
  seed = 2,
  opts: { r?: number; alpha?: number; useRslora?: boolean; targets?: readonly LoraTarget[] } = {},
): LoraAdapter {
  const rand = prng(seed);
  const r = opts.r ?? 3;
  const alpha = opts.alpha ?? 6;
  const useRslora = opts.useRslora ?? false;
  const branches = new Map<string, { a: Tensor; b: Tensor }>();
  for (let l = 0; l < spec.numLayers; l++) {
    for (const t of opts.targets ?? LORA_TARGETS) {
      const { inFeatures, outFeatures } = projectionDims(spec, t);
      branches.set(loraKey(l, t), {
        a: randomTensor([r, inFeatures], rand, 1 / Math.sqrt(inFeatures)),
        b: randomTensor([outFeatures, r], rand, 0.3 / Math.sqrt(r)),
      });
    }
  }
  return { r, alpha, useRslora, scaling: loraScaling(r, alpha, useRslora), baseModel: null, branches };
}

/** [rows][len] token ids in [0, vocab). */
export function tinyTokens(spec: ArchSpec, rows: number, len: number, seed = 3): number[][] {
  const rand = prng(seed);
  return Array.from({ length: rows }, () =>
    Array.from({ length: len }, () => Math.floor(rand() * spec.vocabSize)),
  );
}
